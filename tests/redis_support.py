"""A real redis-server for tests: Debian's binary on a free loopback port, its files in a temp folder, stopped after.

    with RedisServer(tmp_path) as server:   # or the `redis_server` fixture of a conftest
        store = RedisJobStore(server.url)
"""
from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from app_process import free_port

START_GUARD_SECONDS = 30  # start-up guard, not a timing assertion
STOP_GUARD_SECONDS = 10


def redis_binary() -> str:
    """The redis-server path; skips the test when it is not installed (`apt-get install redis-server`)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    return binary


class RedisServer:
    """One redis-server process in `folder`: no RDB/AOF unless `persist`, no protected mode, loopback only."""

    def __init__(self, folder: Path, persist: bool = False) -> None:
        self.folder = Path(folder)
        self.persist = persist
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, same_port: bool = False) -> "RedisServer":
        """Start it (again, on its earlier port and folder with `same_port`: a restart)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (same_port and self.port):
            self.port = free_port()
        args = [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
                "--protected-mode", "no", "--daemonize", "no", "--logfile", str(self.folder / "redis.log")]
        args += ["--appendonly", "yes"] if self.persist else ["--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + START_GUARD_SECONDS
        try:
            while True:
                if self.proc.poll() is not None:
                    log = (self.folder / "redis.log")
                    pytest.fail(f"redis-server exited with {self.proc.returncode}: "
                                f"{log.read_text() if log.exists() else self.proc.stderr.read()}")
                try:
                    if client.ping():
                        return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        self.stop()
                        pytest.fail(f"redis-server did not answer on port {self.port} within "
                                    f"{START_GUARD_SECONDS} s")
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(STOP_GUARD_SECONDS)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "RedisServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def redis_server(tmp_path: Path):
    """A fresh redis-server for one test (import this fixture into a conftest or test module)."""
    with RedisServer(tmp_path / "redis") as server:
        yield server
