"""FileJobStore: records survive a new store object over the same folder, claims are exclusive, cancels follow the
contract (queued: at once; running: a flag), attempts run out as "worker_lost", idempotency keys are per owner."""
from __future__ import annotations

import json
import threading

import pytest

from svc_core.jobs import errors
from svc_core.jobs.errors import JobNotFound
from svc_core.jobs.model import (CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobRecord, ResultFile, new_job_id)
from svc_core.jobs.store import FileJobStore, open_job_store


def record(owner: str = "alice", key: str | None = None, **extra) -> JobRecord:
    job_id = new_job_id()
    return JobRecord(job_id, "convert", owner, {"model": "starter", "speaker": "flite_slt"},
                     {"audio": f"inputs/{job_id}/clip.wav"}, idempotency_key=key, **extra)


@pytest.fixture
def store(tmp_path) -> FileJobStore:
    return FileJobStore(tmp_path / "jobs")


def test_a_record_round_trips_through_json_and_a_new_store_object(store, tmp_path):
    job = store.create(record())
    store.update(job.id, results=[ResultFile("out.wav", f"results/{job.id}/out.wav", 10, "audio/wav")],
                 timings={"f0": 0.5}, log=["a", "b"])
    again = FileJobStore(tmp_path / "jobs").get(job.id)  # a restarted server
    assert again.results == [ResultFile("out.wav", f"results/{job.id}/out.wav", 10, "audio/wav")]
    assert again.timings == {"f0": 0.5} and again.log == ["a", "b"] and again.params == job.params
    on_disk = json.loads((tmp_path / "jobs" / f"{job.id}.json").read_text())
    assert on_disk["id"] == job.id and on_disk["status"] == QUEUED
    assert not list((tmp_path / "jobs").glob("*.tmp"))  # written through a temporary file, moved into place


def test_unknown_ids_and_fields_are_refused(store):
    with pytest.raises(JobNotFound):
        store.get(new_job_id())
    with pytest.raises(JobNotFound):
        store.get("../../etc/passwd")  # never a path
    job = store.create(record())
    with pytest.raises(ValueError, match="progres"):
        store.update(job.id, progres=0.5)


def test_a_job_is_claimed_once_and_a_duplicate_delivery_of_a_finished_one_is_skipped(store):
    job = store.create(record())
    first = store.claim(job.id, "host:1:a")
    assert first is not None and first.status == RUNNING and first.attempts == 1 and first.worker == "host:1:a"
    assert first.started_at is not None and first.heartbeat_at is not None
    store.update(job.id, status=DONE)
    assert store.claim(job.id, "host:2:b") is None  # redelivered after it finished: nothing to do
    assert store.get(job.id).status == DONE and store.get(job.id).attempts == 1


def test_concurrent_claims_of_a_queued_job_start_it_once_per_attempt(store):
    job = store.create(record(max_attempts=1))
    won: list[str] = []

    def claim(name: str) -> None:
        if store.claim(job.id, name) is not None:
            won.append(name)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1  # the others found it running with a fresh heartbeat: not taken over, nothing changed
    final = store.get(job.id)
    assert final.attempts == 1 and final.status == RUNNING and final.worker == won[0] and final.error is None


def test_a_lost_worker_counts_an_attempt_and_the_last_one_fails_as_worker_lost(store):
    job = store.create(record())  # DEFAULT_MAX_ATTEMPTS = 3
    for attempt in (1, 2, 3):
        claimed = store.claim(job.id, f"w{attempt}", previous_dead=True)  # RUNNING again: its worker died
        assert claimed is not None and claimed.attempts == attempt
    assert store.claim(job.id, "w4", previous_dead=True) is None
    lost = store.get(job.id)
    assert lost.status == FAILED and lost.error["code"] == errors.WORKER_LOST and "3 times" in lost.error["message"]
    assert lost.finished_at is not None


def test_cancel_of_a_queued_job_is_at_once_and_of_a_running_one_a_flag(store):
    queued = store.create(record())
    cancelled = store.request_cancel(queued.id)
    assert cancelled.status == CANCELLED and cancelled.cancel_requested and cancelled.finished_at is not None
    assert cancelled.error["code"] == errors.CANCELLED
    assert store.claim(queued.id, "w") is None and store.get(queued.id).status == CANCELLED

    running = store.create(record())
    store.claim(running.id, "w")
    flagged = store.request_cancel(running.id)
    assert flagged.status == RUNNING and flagged.cancel_requested  # its worker stops it
    assert store.claim(running.id, "w2", previous_dead=True) is None  # died before it saw the flag: not rerun
    assert store.get(running.id).status == CANCELLED

    done = store.create(record(status=DONE))
    assert store.request_cancel(done.id).status == DONE and not store.get(done.id).cancel_requested


def test_idempotency_keys_return_the_first_job_of_the_same_owner_only(store, tmp_path):
    first = store.create(record("alice", key="k1"))
    again = store.create(record("alice", key="k1"))
    assert again.id == first.id
    other_owner = store.create(record("bob", key="k1"))
    assert other_owner.id != first.id
    assert FileJobStore(tmp_path / "jobs").create(record("alice", key="k1")).id == first.id  # after a restart
    assert len(store.list()) == 2
    store.delete(first.id)
    assert store.create(record("alice", key="k1")).id != first.id  # a deleted job frees its key


def test_list_is_newest_first_per_owner_and_unfinished_oldest_first(store):
    jobs = [store.create(record("alice" if i % 2 else "bob", created_at=1000.0 + i)) for i in range(6)]
    store.update(jobs[5].id, status=DONE)
    assert [r.id for r in store.list()] == [j.id for j in reversed(jobs)]
    assert [r.id for r in store.list("alice", limit=2)] == [jobs[5].id, jobs[3].id]
    assert [r.id for r in store.unfinished()] == [j.id for j in jobs[:5]]
    store.delete(jobs[0].id)
    store.delete(jobs[0].id)  # twice: no error
    assert jobs[0].id not in {r.id for r in store.list()}


def test_open_job_store_takes_a_folder(tmp_path):
    store = open_job_store(str(tmp_path / "somewhere"))
    assert isinstance(store, FileJobStore) and (tmp_path / "somewhere").is_dir()


def test_public_view_hides_blob_keys_and_the_idempotency_key(store):
    job = store.create(record(key="secret"))
    store.update(job.id, results=[ResultFile("out.wav", f"results/{job.id}/out.wav", 10, "audio/wav")])
    public = store.get(job.id).public()
    assert "inputs" not in public and "idempotency_key" not in public
    assert public["results"] == [{"name": "out.wav", "size": 10, "media_type": "audio/wav"}]
    json.dumps(public)
