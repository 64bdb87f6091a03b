"""What people read in the terminal: our own start-up line, not Gradio's "set `share=True`" (a public link is our
`--tunnel`), and no third-party chatter (torchfcpe prints "[INFO]" / "[WARN]" lines on every load) in a conversion.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from app_process import app_env, free_port
from svc_core.cli import main
from svc_core.ui.settings import REPO_ROOT

STARTER = REPO_ROOT / "voices" / "starter"
CHATTER = re.compile(r"^\s*\[(INFO|WARN|WARNING|INF0)\]", re.MULTILINE)
START_GUARD_S = 240  # start-up guard (imports torch and gradio on a shared 2-core box), not a timing assertion
LINE_GUARD_S = 30  # how long the line may follow the first answer (a guard too)


def _starter_files() -> tuple[Path, Path]:
    weights = sorted(STARTER.glob("W_*.pth"))
    if not weights:
        pytest.skip("the starter voice is not in this checkout (voices/starter)")
    return weights[-1], STARTER / "config.json"


def test_fcpe_conversion_prints_no_torchfcpe_chatter(tmp_path, capfd):
    weights, config = _starter_files()
    out = tmp_path / "out.wav"
    code = main(["infer", "-m", str(weights), "-c", str(config), "-i", str(REPO_ROOT / "examples" / "singing_slt.flac"),
                 "-o", str(out), "-s", "flite_awb", "--f0", "fcpe"])
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert code == 0, text
    assert out.is_file()
    assert "f0 predictor: fcpe" in text  # our own summary is still printed (the capture works)
    assert not CHATTER.search(text), text
    assert "call by" not in text, text


def test_fcpe_weights_file_loads_quietly(tmp_path, capfd):
    """The other load path: a torchfcpe-format weights file (built from the bundled model)."""
    from svc_core.f0 import get_predictor

    bundled = get_predictor("fcpe")
    path = tmp_path / "fcpe_torchfcpe.pt"
    torch.save({"config_dict": bundled.model.args_dict, "model": bundled.model.model.state_dict()}, path)
    capfd.readouterr()
    from_file = get_predictor("fcpe", weights_path=path)
    from_file.compute_raw_f0(torch.sin(torch.arange(8000) * 0.06).numpy().astype("float32"))
    text = "".join(capfd.readouterr())
    assert not CHATTER.search(text), text


def _serves(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _read_lines(stream, lines: list[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.append(line)


def test_app_start_up_prints_our_line_not_gradios_share_hint(tmp_path):
    port = free_port()
    env = app_env(PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port), "--models-dir", str(tmp_path / "models"),
         "--work-dir", str(tmp_path / "work"), "--no-starter-voices"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    ours = f"Running on http://127.0.0.1:{port} (public link: see --tunnel)"
    try:
        deadline = time.monotonic() + START_GUARD_S
        while not _serves(port):
            assert proc.poll() is None, f"app.py exited with {proc.returncode}:\n{''.join(lines)}"
            assert time.monotonic() < deadline, f"app.py did not start:\n{''.join(lines)}"
            time.sleep(0.5)
        deadline = time.monotonic() + LINE_GUARD_S  # the line follows Gradio's own start-up check
        while not any(ours in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    text = "".join(lines)
    assert "share=True" not in text, text
    assert "To create a public link" not in text, text
    assert "Running on local URL" not in text, text  # Gradio's own banner, replaced by ours
    assert ours in text, text
    assert text.count("Running on ") == 1, text
