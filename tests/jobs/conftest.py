"""A JobService on the shipped WORLD starter voice (voices/starter) in a temporary folder: records in a
FileJobStore, files in a LocalBlobStore, an EmbeddedPool of one thread running the real engine (torch at 1 thread).
The example clip is a short spoken one from examples/ (the starter voices were made from such speakers)."""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "examples" / "speech_slt.flac"  # 3.4 s
VOICE = "starter"
FAST = {"model": VOICE, "f0_predictor": "pm"}  # pm: weightless and fast


@dataclass
class Jobs:
    """The service and what it is made of."""

    service: object  # svc_core.jobs.service.JobService
    env: object  # svc_core.jobs.runner.WorkerEnv
    pool: object  # svc_core.jobs.embedded.EmbeddedPool
    root: Path


def make_jobs(root: Path, workers: int = 1, start: bool = True, context=None, limits=None) -> Jobs:
    """A JobService over `root` (jobs/, blobs/, work/); a second one over the same root is a restarted server."""
    from svc_core.jobs.embedded import EmbeddedPool
    from svc_core.jobs.runner import make_worker_env
    from svc_core.jobs.service import JobService
    from svc_core.ui.settings import STARTER_VOICES

    (root / "models").mkdir(parents=True, exist_ok=True)
    env = make_worker_env(root / "models", root / "work", str(root / "jobs"), str(root / "blobs"), threads=1,
                          shipped=(STARTER_VOICES,), separation_dir=root / "separation_models", context=context,
                          concurrency=workers, limits=limits)
    pool = EmbeddedPool(env, workers)
    if start:
        pool.start()
    return Jobs(JobService(env.store, env.blobs, pool, env.jobs.library, max_file_size=50 * 2**20), env, pool, root)


@pytest.fixture(scope="session")
def jobs(tmp_path_factory):
    """One service for the module's tests (the loaded voice stays cached between them)."""
    made = make_jobs(tmp_path_factory.mktemp("jobs"))
    yield made
    made.pool.stop(wait=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible HTTP server (moto), with test credentials in the AWS variables."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "SVC_S3_ENDPOINT")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      SVC_S3_ENDPOINT=f"http://127.0.0.1:{port}")
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def make_jobs_at():
    return make_jobs


@pytest.fixture(scope="session")
def clip() -> Path:
    return CLIP
