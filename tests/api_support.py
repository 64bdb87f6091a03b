"""Helpers of the REST API tests (tests/api): the standalone API (svc_core.api.standalone) served by uvicorn in a
thread on a free loopback port, on the shipped starter voice; the JSON error shape; submitting and waiting."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STARTER_KEY = "starter"  # voices/starter: the WORLD starter voice (fast)
SPEAKER = "flite_slt"
CLIP_SECONDS = 2.0
START_GUARD_SECONDS = 120  # hang guard for a server start on a busy 2-core box, not a timing
JOB_GUARD_SECONDS = 300  # hang guard for one job


def free_port() -> int:
    from app_process import free_port as port

    return port()


class ThreadServer:
    """uvicorn serving `app` on 127.0.0.1:`port` in a background thread."""

    def __init__(self, app, port: int) -> None:
        import uvicorn

        self.port = port
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off", timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{port}", daemon=True)

    def start(self) -> "ThreadServer":
        self.thread.start()
        deadline = time.monotonic() + START_GUARD_SECONDS
        while not self.server.started:
            assert self.thread.is_alive(), "the server thread ended before serving"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class ApiServer:
    url: str  # ".../api/v1"
    work_dir: Path
    standalone: object
    thread: ThreadServer

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60, **kwargs)

    def stop(self) -> None:
        self.thread.stop()
        self.standalone.close()


def start_api(work_dir: Path, **overrides) -> ApiServer:
    """The standalone API on the starter voice, work folder `work_dir`, served on a free port."""
    from svc_core.api.standalone import build_standalone
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    port = free_port()
    overrides.setdefault("models_dir", work_dir.parent / "models")
    # threads: the default ("auto"), as the rest of the suite runs in this process; a 1-thread job here left the
    # diffusion parity test that runs later one thread's float rounding (tests/diffusion/test_e2e_parity.py)
    settings = AppSettings(port=port, work_dir=work_dir, quiet=True, shipped_voices=(STARTER_VOICES,), **overrides)
    standalone = build_standalone(settings)
    thread = ThreadServer(standalone.app, port).start()
    return ApiServer(f"http://127.0.0.1:{port}/api/v1", work_dir, standalone, thread)


def error_of(response: httpx.Response) -> str:
    """The stable code of a JSON error answer (asserting the shape)."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return body["error"]["code"]


def wait_final(client: httpx.Client, job_id: str, guard: float = JOB_GUARD_SECONDS) -> dict:
    """Poll the job until it is finished (hang guard only)."""
    deadline = time.monotonic() + guard
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not finish: {job}"
        time.sleep(0.2)


def submit(client: httpx.Client, clip: Path, options: dict | None = None, headers: dict | None = None,
           field: str = "audio", path: str = "/conversions") -> httpx.Response:
    import json

    options = {"model": STARTER_KEY, "speaker": SPEAKER} if options is None else options
    with open(clip, "rb") as f:
        return client.post(path, files={field: (clip.name, f, "audio/wav")}, data={"options": json.dumps(options)},
                           headers=headers or {})
