"""`python -m svc_core api` as a real process: a finished conversion's result is still served after the server is
stopped (SIGTERM) and a new one is started on the same work folder."""
from __future__ import annotations

import signal
import subprocess
import sys

import httpx
from api_support import ROOT, submit, wait_final
from app_process import app_env, free_port, wait_until_serving

STOP_GUARD_SECONDS = 60  # hang guard for a graceful stop


def start(work_dir, models_dir, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "svc_core", "api", "--port", str(port), "--work-dir",
                             str(work_dir), "--models-dir", str(models_dir), "--threads", "1"], cwd=ROOT,
                            env=app_env(SVC_THREADS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_serving(proc, f"http://127.0.0.1:{port}/api/v1/health")
    return proc


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=STOP_GUARD_SECONDS)
    assert proc.returncode == 0, err


def test_results_survive_a_restart(tmp_path, clip):
    work, models = tmp_path / "work", tmp_path / "models"
    port = free_port()
    proc = start(work, models, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as c:
            job = wait_final(c, submit(c, clip).json()["id"])
            assert job["status"] == "done", job
            name = job["results"][0]["name"]
            first = c.get(f"/jobs/{job['id']}/results/{name}")
            assert first.status_code == 200
    finally:
        stop(proc)
    assert (work / "results").exists() is False or not any((work / "results").iterdir())  # the page's temp folder
    proc = start(work, models, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=60) as c:
            again = c.get(f"/jobs/{job['id']}")
            assert again.json()["status"] == "done"
            second = c.get(f"/jobs/{job['id']}/results/{name}")
            assert second.status_code == 200 and second.content == first.content
            assert second.headers["content-type"] == job["results"][0]["media_type"]
    finally:
        stop(proc)
