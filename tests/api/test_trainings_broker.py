"""A training run on the broker (`--jobs redis://...`): it runs on a real `python -m svc_core worker` process (a
real redis-server), which registers and publishes the new voice; the API server then lists it and a conversion
with it runs on the worker."""
from __future__ import annotations

import io
import json

import pytest
import soundfile as sf

from api_support import JOB_GUARD_SECONDS, wait_final
from train_job_factories import SPEAKERS, TINY, make_dataset

pytest.importorskip("svc_core.jobs.broker")
worker_stack = pytest.importorskip("worker_stack")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = worker_stack.start_stack(tmp_path_factory.mktemp("broker-train"), workers=1)
    yield stack
    stack.stop()


def test_training_on_a_queue_worker_gives_a_voice_the_server_lists(stack, make_api, tmp_path, clip):
    dataset = make_dataset(tmp_path / "voices.zip")
    server = make_api(tmp_path / "work", jobs=stack.redis.url, job_store=str(stack.blobs_dir))
    try:
        with server.client() as c:
            submitted = c.post("/trainings", files={"dataset": ("voices.zip", dataset.read_bytes())},
                               data={"options": json.dumps({"steps": 2, "eval_interval": 2, **TINY})})
            assert submitted.status_code == 202, submitted.text
            job = wait_final(c, submitted.json()["id"])
            assert job["status"] == "done", job
            assert job["worker"].split(":")[1] == str(stack.workers[0].pid)
            voice = c.get(f"/jobs/{job['id']}/results/voice.json").json()
            listed = {v["key"]: v for v in c.get("/voices").json()["voices"]}
            assert voice["voice"] in listed and sorted(listed[voice["voice"]]["speakers"]) == list(SPEAKERS)
            options = {"model": voice["voice"], "speaker": SPEAKERS[0]}
            converted = c.post("/conversions", files={"audio": ("clip.wav", clip.read_bytes())},
                               data={"options": json.dumps(options)})
            assert converted.status_code == 202, converted.text
            done = wait_final(c, converted.json()["id"])
            assert done["status"] == "done", done
            audio, rate = sf.read(io.BytesIO(c.get(f"/jobs/{done['id']}/results/{done['results'][0]['name']}").content))
            assert len(audio) > 0
    finally:
        server.stop()
