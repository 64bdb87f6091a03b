"""The job system's limits on real stores (FileJobStore, and RedisJobStore on a real redis-server): the claim guard
(a fresh heartbeat is not taken over, a stale one is, a known-dead runner's is), admission caps (per caller and in
all: `busy`, nothing stored), retention (old finished jobs go with their files; fresh and unfinished ones stay),
inputs removed when a job ends. Shutdown and the REST API's 429 are in test_shutdown.py and tests/api."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from redis_support import RedisServer
from svc_core.jobs import errors
from svc_core.jobs.blobs import LocalBlobStore
from svc_core.jobs.embedded import EmbeddedPool
from svc_core.jobs.limits import Busy, QueueLimits
from svc_core.jobs.model import DONE, FAILED, QUEUED, RUNNING, STALE_SECONDS, JobRecord, ResultFile, new_job_id
from svc_core.jobs.redis_store import RedisJobStore
from svc_core.jobs.retention import prune
from svc_core.jobs.service import JobService
from svc_core.jobs.store import FileJobStore
from jobs.conftest import FAST

DAY = 24 * 3600.0
GUARD_SECONDS = 600.0  # hang guard of a real job (a loaded CI box); never asserted on


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(params=["file", "redis"])
def store(request, tmp_path, redis_url):
    if request.param == "file":
        return FileJobStore(tmp_path / "jobs")
    return RedisJobStore(redis_url, prefix=f"test:{new_job_id()}")  # a fresh key space per test


def record(owner: str = "alice", **extra) -> JobRecord:
    job_id = new_job_id()
    return JobRecord(job_id, "convert", owner, {"model": "starter"}, {"audio": f"inputs/{job_id}/clip.wav"},
                     **extra)


def age(store, job_id: str, seconds: float) -> None:
    """Make a finished job look `seconds` old: its finished_at, and (FileJobStore) its file's time."""
    past = time.time() - seconds
    store.update(job_id, finished_at=past)
    if isinstance(store, FileJobStore):
        os.utime(store.folder / f"{job_id}.json", (past, past))


# ----------------------------------------------------------------------------- the claim guard
def test_a_running_job_with_a_fresh_heartbeat_is_not_taken_over_but_a_stale_one_is(store):
    job = store.create(record())
    first = store.claim(job.id, "host:1:a")
    assert first.status == RUNNING and first.attempts == 1
    assert store.claim(job.id, "host:2:b") is None  # a second delivery while the first runner is alive
    same = store.get(job.id)
    assert same.worker == "host:1:a" and same.attempts == 1 and same.status == RUNNING  # nothing changed
    store.update(job.id, heartbeat_at=time.time() - STALE_SECONDS - 1)  # the first runner stopped beating
    taken = store.claim(job.id, "host:2:b")
    assert taken is not None and taken.worker == "host:2:b" and taken.attempts == 2
    known_dead = store.claim(job.id, "host:3:c", previous_dead=True)  # fresh, but its runner is known gone
    assert known_dead is not None and known_dead.worker == "host:3:c" and known_dead.attempts == 3
    assert store.claim(job.id, "host:4:d", previous_dead=True) is None  # out of attempts
    assert store.get(job.id).error["code"] == errors.WORKER_LOST


# ----------------------------------------------------------------------------- store indexes
def test_unfinished_counts_per_owner_and_old_finished_jobs_are_found(store):
    a1, a2, b1 = store.create(record("alice")), store.create(record("alice")), store.create(record("bob"))
    old, fresh = store.create(record("alice")), store.create(record("alice"))
    for job in (old, fresh):
        store.update(job.id, status=DONE, finished_at=time.time())
    store.claim(a2.id, "w")  # running counts as unfinished too
    assert store.count_unfinished("alice") == 2 and store.count_unfinished("bob") == 1
    assert store.count_unfinished("carol") == 0 and store.count_unfinished() == 3
    age(store, old.id, 8 * DAY)
    assert store.finished_before(time.time() - 7 * DAY) == [old.id]
    assert store.finished_before(time.time() + 1) == [old.id, fresh.id]  # oldest first
    store.update(a1.id, status=FAILED, finished_at=time.time())
    assert store.count_unfinished("alice") == 1 and {r.id for r in store.unfinished()} == {a2.id, b1.id}
    store.delete(old.id)
    assert store.finished_before(time.time() - 7 * DAY) == []


def test_a_job_folder_of_an_older_version_gets_its_unfinished_index(tmp_path):
    folder = tmp_path / "jobs"
    store = FileJobStore(folder)
    queued, done = store.create(record("alice")), store.create(record("alice", status=DONE))
    for marker in (folder / "unfinished").iterdir():
        marker.unlink()
    (folder / "unfinished").rmdir()  # as a store written before the index existed
    again = FileJobStore(folder)
    assert again.count_unfinished("alice") == 1 and [r.id for r in again.unfinished()] == [queued.id]
    assert done.id not in {p.name for p in (folder / "unfinished").iterdir()}


# ----------------------------------------------------------------------------- admission and retention
def idle_service(store, root: Path, limits: QueueLimits, jobs) -> JobService:
    """A JobService whose pool never runs anything (not started): submitted jobs stay queued."""
    pool = EmbeddedPool(jobs.env)  # never started
    return JobService(store, LocalBlobStore(root / "blobs"), pool, jobs.env.jobs.library, limits=limits)


def stored(service: JobService) -> tuple[list[str], list[str]]:
    return sorted(r.id for r in service.list(limit=1000)), sorted(service.blobs.list_keys())


def test_submits_beyond_the_caps_are_busy_and_store_nothing(store, tmp_path, jobs, clip):
    service = idle_service(store, tmp_path, QueueLimits(max_per_owner=2, max_total=3), jobs)
    first = service.submit("convert", "alice", dict(FAST), {"audio": clip}, idempotency_key="k1")
    service.submit("convert", "alice", dict(FAST), {"audio": clip})
    before = stored(service)
    with pytest.raises(Busy) as caught:
        service.submit("convert", "alice", dict(FAST), {"audio": clip})
    assert caught.value.code == errors.BUSY and caught.value.status == 429 and caught.value.retry_after > 0
    assert "limit is 2" in str(caught.value)
    assert stored(service) == before  # no record, no input file
    again = service.submit("convert", "alice", dict(FAST), {"audio": clip}, idempotency_key="k1")
    assert again.id == first.id  # a repeat of a submit is answered at the cap too
    service.submit("convert", "bob", dict(FAST), {"audio": clip})  # the third of the server's three
    with pytest.raises(Busy, match="server has 3 jobs"):
        service.submit("convert", "carol", dict(FAST), {"audio": clip})
    assert len(stored(service)[0]) == 3
    cancelled = service.cancel(first.id, owner="alice")  # one of alice's ends: room again
    assert cancelled.status == "cancelled" and not service.blobs.list_keys(f"inputs/{first.id}/")
    assert service.submit("convert", "alice", dict(FAST), {"audio": clip}).status == QUEUED


def test_no_caps_when_the_limits_are_zero(store, tmp_path, jobs, clip):
    service = idle_service(store, tmp_path, QueueLimits(max_per_owner=0, max_total=0), jobs)
    for _ in range(25):  # beyond the default caps' per-caller 20
        service.submit("convert", "alice", dict(FAST), {"audio": clip})
    assert store.count_unfinished("alice") == 25


def finish(service: JobService, job_id: str, tmp_path: Path) -> None:
    """End a queued job as done with one result file (as a runner does)."""
    out = tmp_path / f"{job_id}.wav"
    out.write_bytes(b"RIFF" + bytes(40))
    key = f"results/{job_id}/out.wav"
    size = service.blobs.put_file(key, out)
    service.store.update(job_id, status=DONE, finished_at=time.time(),
                         results=[ResultFile("out.wav", key, size, "audio/wav")])


def test_pruning_removes_old_finished_jobs_with_their_files_and_keeps_the_rest(store, tmp_path, jobs, clip):
    service = idle_service(store, tmp_path, QueueLimits(max_per_owner=0, max_total=0), jobs)
    old, fresh, waiting = (service.submit("convert", "alice", dict(FAST), {"audio": clip}) for _ in range(3))
    for job in (old, fresh):
        finish(service, job.id, tmp_path)
    store.update(waiting.id, created_at=time.time() - 30 * DAY)  # queued for a month: not finished, kept
    age(store, old.id, 8 * DAY)
    assert prune(store, service.blobs, 7 * DAY) == 1
    ids, keys = stored(service)
    assert ids == sorted([fresh.id, waiting.id])
    assert not [k for k in keys if old.id in k]  # its input and result are gone
    assert f"results/{fresh.id}/out.wav" in keys and f"inputs/{waiting.id}/speech_slt.flac" in keys
    assert prune(store, service.blobs, 0) == 0  # 0: keep everything
    assert prune(store, service.blobs, 7 * DAY) == 0


def test_a_job_ends_without_its_inputs_and_the_server_prunes_at_start(tmp_path, clip):
    from svc_core.jobs.service import service_from_settings
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    (tmp_path / "models").mkdir()
    settings = AppSettings(models_dir=tmp_path / "models", work_dir=tmp_path / "work", threads="1",
                           shipped_voices=(STARTER_VOICES,), job_max_age_days=7)
    service = service_from_settings(settings)
    try:
        done = service.wait(service.submit("convert", "local", dict(FAST), {"audio": clip}).id, GUARD_SECONDS)
        assert done.status == DONE, done.error
        # removed when it ended (just after its final status is stored: a worker lost in between re-runs it)
        guard = time.monotonic() + GUARD_SECONDS
        while service.blobs.list_keys(f"inputs/{done.id}/") and time.monotonic() < guard:
            time.sleep(0.05)
        assert service.blobs.list_keys(f"inputs/{done.id}/") == []
        assert [r.name for r in done.results] and service.blobs.list_keys(f"results/{done.id}/")
        age(service.store, done.id, 8 * DAY)
    finally:
        service.close()
    restarted = service_from_settings(settings)  # prunes at start, in its background thread
    try:
        deadline = time.monotonic() + GUARD_SECONDS
        while restarted.store.list():
            assert time.monotonic() < deadline, "the restarted server did not prune the old job"
            time.sleep(0.1)
        assert restarted.blobs.list_keys(f"results/{done.id}/") == []
    finally:
        restarted.close()


# ----------------------------------------------------------------------------- the broker's side of the guard
class _BeatBeforeClaim(RedisJobStore):
    """A real RedisJobStore where the job's first runner writes a heartbeat just before this worker's claim: the
    interleaving of a slow but live runner (run_message saw a stale heartbeat, the claim sees a fresh one)."""

    def claim(self, job_id, worker, previous_dead=False):
        self.update(job_id, heartbeat_at=time.time())
        return super().claim(job_id, worker, previous_dead)


def test_a_delivery_refused_by_the_claim_is_put_back_with_a_delay(redis_url, tmp_path):
    from types import SimpleNamespace

    from svc_core.jobs.broker import NAMESPACE, BrokerQueue, run_message

    prefix = f"test:{new_job_id()}"
    store = _BeatBeforeClaim(redis_url, prefix=prefix)
    queue = BrokerQueue(redis_url)
    queue.broker.client.flushdb()
    job = store.create(record())
    RedisJobStore(redis_url, prefix=prefix).claim(job.id, "other-host:1:t")
    store.update(job.id, heartbeat_at=time.time() - STALE_SECONDS - 1)  # looks lost to run_message's first look
    env = SimpleNamespace(store=store, blobs=LocalBlobStore(tmp_path / "blobs"), worker_id=lambda: "me:2:t")
    run_message(job.id, env, queue.broker)
    again = store.get(job.id)
    assert again.worker == "other-host:1:t" and again.attempts == 1  # not taken over
    bodies = queue.broker.client.hvals(f"{NAMESPACE}:cpu.DQ.msgs")  # back on the delay queue, not dropped
    assert [json.loads(b)["args"][0] for b in bodies] == [job.id]
