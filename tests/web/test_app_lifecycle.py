"""`python app.py` started and stopped with SIGTERM, as docker/systemd do: the default work folder is the per-user
cache (a temp HOME / XDG_CACHE_HOME / TMPDIR here, so the real ones are not touched), nothing is left in the temp
folder, the run's temporaries are removed at exit, and leftovers of earlier runs and versions are cleaned at start.
A second `python app.py` on the same folder refuses with a message naming it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app_process import START_GUARD_SECONDS, app_env, free_port, wait_until_serving
from svc_core.ui.settings import REPO_ROOT

def _env(root: Path) -> dict[str, str]:
    env = app_env(HOME=str(root / "home"), XDG_CACHE_HOME=str(root / "cache"), TMPDIR=str(root / "tmp"),
                  SVC_PRETRAIN_DIR=str(root / "no-pretrain"))
    for name in ("home", "cache", "tmp"):
        (root / name).mkdir(exist_ok=True)
    return env


def _start(root: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--models-dir", str(root / "models"),
                             "--no-starter-voices"], cwd=REPO_ROOT, env=_env(root), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_start_and_sigterm_leave_nothing_temporary(tmp_path):
    work = tmp_path / "cache" / "svc-studio"  # where platformdirs puts it with this XDG_CACHE_HOME
    for leftover in ("results/0a1b2c/clip_voice.wav", "gradio-tmp/abc/upload.wav", "onnx/x.onnx.part"):
        (work / leftover).parent.mkdir(parents=True, exist_ok=True)
        (work / leftover).write_bytes(b"left by an earlier run")
    legacy = tmp_path / "tmp" / "svc-studio-a1b2c3d4"  # what earlier versions left in /tmp at every start
    (legacy / "results").mkdir(parents=True)
    hours_ago = time.time() - 2 * 3600
    for path in (legacy / "results", legacy):
        os.utime(path, (hours_ago, hours_ago))

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = _start(tmp_path, port)
    try:
        wait_until_serving(proc, url)
        assert not legacy.exists() and not (work / "onnx" / "x.onnx.part").exists()
        assert not list((work / "results").glob("*")) if (work / "results").exists() else True
        # a file sent to the page lands in Gradio's temporary folder, which is now inside the work folder
        sent = httpx.post(url + "gradio_api/upload", files=[("files", ("clip.wav", b"RIFF0000WAVE"))], timeout=30)
        assert Path(sent.json()[0]).is_relative_to(work / "gradio-tmp")
        second = _start(tmp_path, free_port())  # same work folder: refused, with the way out
        out, err = second.communicate(timeout=START_GUARD_SECONDS)
        assert second.returncode == 2 and f"work folder {work}" in err and "--work-dir" in err, err
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert _files(tmp_path / "tmp") == []  # no /tmp/svc-studio-*, no stray files at all
    kept = _files(work)
    assert "gradio-tmp" not in kept and "results" not in kept, kept
    # kept: uploads, ONNX exports, and the REST API's job store (records in jobs/ with its idempotency keys, its
    # index of unfinished jobs and its lock file; files in blobs/)
    assert set(kept) <= {"svc-studio.lock", "uploads", "uploads/.browser-keys.json", "onnx", "jobs", "jobs/keys",
                         "jobs/unfinished", "jobs/.lock", "blobs"}, kept
