"""The API with `--jobs redis://...`: jobs run on a real `python -m svc_core worker` process (Dramatiq on a real
redis-server), not in the API's process; a voice uploaded through the API reaches the worker (voice_sync)."""
from __future__ import annotations

import io
import os

import pytest
import soundfile as sf
from api_support import CLIP_SECONDS, ROOT, SPEAKER, STARTER_KEY, submit, wait_final

pytest.importorskip("svc_core.jobs.broker")
pytest.importorskip("svc_core.jobs.voice_sync")
worker_stack = pytest.importorskip("worker_stack")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = worker_stack.start_stack(tmp_path_factory.mktemp("broker-api"), workers=1)
    yield stack
    stack.stop()


def test_jobs_run_on_queue_workers(stack, make_api, tmp_path, clip):
    server = make_api(tmp_path / "work", jobs=stack.redis.url, job_store=str(stack.blobs_dir))
    try:
        with server.client() as c:
            assert c.get("/health").json()["jobs"] == "broker"
            job = wait_final(c, submit(c, clip).json()["id"])
            assert job["status"] == "done", job
            assert job["worker"].split(":")[1] == str(stack.workers[0].pid)  # not this process
            assert int(job["worker"].split(":")[1]) != os.getpid()
            audio, rate = sf.read(io.BytesIO(c.get(f"/jobs/{job['id']}/results/{job['results'][0]['name']}").content))
            assert abs(len(audio) / rate - CLIP_SECONDS) < 0.05

            starter = ROOT / "voices" / "starter"
            files = [("files", (name, (starter / name).read_bytes(), "application/octet-stream"))
                     for name in ("W_5000.pth", "config.json")]
            voice = c.post("/voices", files=files)
            assert voice.status_code == 201, voice.text
            key = voice.json()["key"]
            job = wait_final(c, submit(c, clip, {"model": key, "speaker": SPEAKER}).json()["id"])
            assert job["status"] == "done", job
            assert c.delete(f"/voices/{key}").status_code == 200
            assert STARTER_KEY in [v["key"] for v in c.get("/voices").json()["voices"]]
    finally:
        server.stop()
