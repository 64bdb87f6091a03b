"""Helpers for tests that start `python app.py` (or another server) as a subprocess: a free loopback port, the
environment without Gradio/Hub variables (app.py sets its own), and a wait until the page answers."""
from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx
import pytest

START_GUARD_SECONDS = 180  # start-up guard (imports torch and gradio on a busy 2-core box), not a timing assertion


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(**extra: str) -> dict[str, str]:
    """This process's environment less GRADIO_* / HF_HUB_* (app.py sets its own), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRADIO_", "HF_HUB_"))}
    env.update(extra)
    return env


def wait_until_serving(proc: subprocess.Popen, url: str, guard: float = START_GUARD_SECONDS) -> None:
    """Poll `url` until it answers; fail with the process's output if it exits, or after `guard` seconds."""
    deadline = time.monotonic() + guard
    while True:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the server exited with {proc.returncode}:\n{out}\n{err}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the server did not answer at {url} within {guard:.0f} s")
            time.sleep(0.5)
