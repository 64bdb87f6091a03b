"""Conversions end to end on a real API server with the real engine and the starter voice: submit -> server-sent
events until done -> the result downloads as audio of the input's length; cancel (queued and running); the
Idempotency-Key; jobs are their owner's."""
from __future__ import annotations

import io
import json
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
from api_support import CLIP_SECONDS, JOB_GUARD_SECONDS, SPEAKER, STARTER_KEY, error_of, submit, wait_final

from svc_core.api.tokens import TokenStore

LONG_SECONDS = 90.0  # a clip long enough that its job is still running when the test cancels it


def iter_events(client, job_id: str) -> Iterator[dict]:
    """Each `event: job` of the stream as it arrives, until the server ends it."""
    with client.stream("GET", f"/jobs/{job_id}/events", timeout=JOB_GUARD_SECONDS) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in r.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "job":
                yield json.loads(line.split(":", 1)[1])


def read_events(client, job_id: str) -> list[dict]:
    return list(iter_events(client, job_id))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory, clip):
    audio, rate = sf.read(clip, dtype="float32")
    path = tmp_path_factory.mktemp("long") / "long.wav"
    sf.write(path, np.tile(audio, int(np.ceil(LONG_SECONDS / CLIP_SECONDS))), rate, subtype="PCM_16")
    return path


def test_conversion_end_to_end(api, clip):
    with api.client() as c:
        r = submit(c, clip, {"model": STARTER_KEY, "speaker": SPEAKER, "transpose": 2})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"jobs/{job['id']}"
        assert job["status"] in ("queued", "running") and job["kind"] == "convert" and job["owner"] == "local"
        assert "inputs" not in job and "idempotency_key" not in job

        events = read_events(c, job["id"])
        assert events and events[-1]["status"] == "done", events[-1:]
        assert all(e["id"] == job["id"] for e in events)
        progress = [e["progress"] for e in events]
        assert progress == sorted(progress) and progress[-1] == 1.0
        assert len({(e["stage"], e["progress"], e["message"]) for e in events}) == len(events)  # only changes

        final = c.get(f"/jobs/{job['id']}").json()
        assert final["status"] == "done" and final["error"] is None
        assert final["timings"]["total"] > 0 and "queue_wait" in final["timings"]
        assert final["params"]["transpose"] == 2
        (result,) = [res for res in final["results"] if res["media_type"].startswith("audio/")]
        download = c.get(f"/jobs/{job['id']}/results/{result['name']}")
        assert download.status_code == 200
        assert download.headers["content-type"] == result["media_type"]
        assert len(download.content) == result["size"]
        audio, rate = sf.read(io.BytesIO(download.content))
        assert abs(len(audio) / rate - CLIP_SECONDS) < 0.05
        assert np.abs(audio).max() > 0.01  # sound, not silence

        r = c.get(f"/jobs/{job['id']}/results/nothing.wav")
        assert r.status_code == 404 and error_of(r) == "result_not_found"
        assert job["id"] in [j["id"] for j in c.get("/jobs").json()["jobs"]]


def test_cancel_queued_and_running(api, long_clip, clip):
    with api.client() as c:
        running = submit(c, long_clip).json()  # the server runs one job at a time: this one first
        queued = submit(c, clip).json()
        cancelled = c.post(f"/jobs/{queued['id']}/cancel").json()
        assert cancelled["status"] == "cancelled"  # a queued job is cancelled at once
        for event in iter_events(c, running["id"]):  # wait until it runs, then cancel it
            if event["status"] == "running":
                assert c.post(f"/jobs/{running['id']}/cancel").json()["cancel_requested"] is True
                break
        final = wait_final(c, running["id"])
        assert final["status"] == "cancelled", final
        assert final["results"] == []
        r = c.get(f"/jobs/{running['id']}/results/out.wav")
        assert r.status_code == 404 and error_of(r) == "result_not_found"
        assert wait_final(c, queued["id"])["started_at"] is None  # it never ran


def test_idempotency_key(api, clip):
    with api.client() as c:
        before = len(c.get("/jobs").json()["jobs"])
        first = submit(c, clip, headers={"Idempotency-Key": "take-1"}).json()
        again = submit(c, clip, headers={"Idempotency-Key": "take-1"}).json()
        other = submit(c, clip, headers={"Idempotency-Key": "take-2"}).json()
        assert again["id"] == first["id"] and other["id"] != first["id"]
        assert len(c.get("/jobs").json()["jobs"]) == before + 2
        r = submit(c, clip, headers={"Idempotency-Key": "x" * 300})
        assert r.status_code == 400 and error_of(r) == "bad_request"
        for job in (first, other):
            assert wait_final(c, job["id"])["status"] == "done"


def test_jobs_are_their_owners(make_api, tmp_path_factory, clip):
    server = make_api(tmp_path_factory.mktemp("owners") / "work")
    try:
        tokens = TokenStore.in_work_dir(server.work_dir)
        alice, bob = tokens.create("alice", ["read", "convert"]), tokens.create("bob", ["read", "convert"])
        admin = tokens.create("root", ["admin"])
        with server.client(alice) as a, server.client(bob) as b, server.client(admin) as root:
            job = submit(a, clip, headers={"Idempotency-Key": "same"}).json()
            assert job["owner"] == "alice"
            theirs = submit(b, clip, headers={"Idempotency-Key": "same"}).json()
            assert theirs["id"] != job["id"]  # keys are per caller
            for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/events"):
                r = b.get(path)
                assert r.status_code == 404 and error_of(r) == "job_not_found"
            r = b.post(f"/jobs/{job['id']}/cancel")
            assert r.status_code == 404 and error_of(r) == "job_not_found"
            assert [j["id"] for j in b.get("/jobs").json()["jobs"]] == [theirs["id"]]
            assert {j["id"] for j in root.get("/jobs").json()["jobs"]} == {job["id"], theirs["id"]}
            done = wait_final(a, job["id"])
            name = done["results"][0]["name"]
            assert b.get(f"/jobs/{job['id']}/results/{name}").status_code == 404
            assert a.get(f"/jobs/{job['id']}/results/{name}").status_code == 200
            wait_final(b, theirs["id"])
    finally:
        server.stop()


def test_cover_end_to_end(api, tmp_path):
    import zipfile

    from web.cover_songs import SEPARATOR, write_song

    song = write_song(tmp_path / "song.wav", seconds=2.0)
    with api.client() as c:
        r = submit(c, song, {"model": STARTER_KEY, "speaker": SPEAKER, "separator": SEPARATOR, "make_zip": True},
                   field="song", path="/covers")
        assert r.status_code == 202, r.text
        job = wait_final(c, r.json()["id"])
        assert job["status"] == "done" and job["kind"] == "cover", job
        kinds = {res["media_type"] for res in job["results"]}
        assert "application/zip" in kinds and any(k.startswith("audio/") for k in kinds), kinds
        for res in job["results"]:
            download = c.get(f"/jobs/{job['id']}/results/{res['name']}")
            assert download.status_code == 200 and download.headers["content-type"] == res["media_type"]
            assert len(download.content) == res["size"]
            if res["media_type"] == "application/zip":
                assert zipfile.ZipFile(io.BytesIO(download.content)).namelist()
            elif res["media_type"].startswith("audio/"):
                audio, rate = sf.read(io.BytesIO(download.content))
                assert abs(len(audio) / rate - 2.0) < 0.05
        r = submit(c, song, {"model": STARTER_KEY}, field="audio", path="/covers")  # wrong file field
        assert r.status_code == 400 and error_of(r) == "unknown_field"
