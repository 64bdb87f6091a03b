"""RedisJobStore against a real redis-server: the FileJobStore contract tests run again on it (same rules), plus
what only Redis has: records shared by two store objects (an API server and a worker), atomic claims across them,
and a clear error when Redis is down."""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest

from redis_support import RedisServer, redis_server  # noqa: F401 - the fixture
from svc_core.jobs import errors
from svc_core.jobs.errors import JobNotFound
from svc_core.jobs.model import DONE, QUEUED, RUNNING, new_job_id
from svc_core.jobs.redis_store import JobStoreUnavailable, RedisJobStore
from svc_core.jobs.store import open_job_store

_spec = importlib.util.spec_from_file_location("file_store_contract", Path(__file__).with_name("test_store.py"))
_contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_contract)
record = _contract.record

# the store-independent contract tests, run here with the Redis `store` fixture below
test_a_job_is_claimed_once_and_a_duplicate_delivery_of_a_finished_one_is_skipped = \
    _contract.test_a_job_is_claimed_once_and_a_duplicate_delivery_of_a_finished_one_is_skipped
test_concurrent_claims_of_a_queued_job_start_it_once_per_attempt = \
    _contract.test_concurrent_claims_of_a_queued_job_start_it_once_per_attempt
test_a_lost_worker_counts_an_attempt_and_the_last_one_fails_as_worker_lost = \
    _contract.test_a_lost_worker_counts_an_attempt_and_the_last_one_fails_as_worker_lost
test_cancel_of_a_queued_job_is_at_once_and_of_a_running_one_a_flag = \
    _contract.test_cancel_of_a_queued_job_is_at_once_and_of_a_running_one_a_flag
test_list_is_newest_first_per_owner_and_unfinished_oldest_first = \
    _contract.test_list_is_newest_first_per_owner_and_unfinished_oldest_first
test_public_view_hides_blob_keys_and_the_idempotency_key = \
    _contract.test_public_view_hides_blob_keys_and_the_idempotency_key


@pytest.fixture
def store(redis_server) -> RedisJobStore:  # noqa: F811
    return RedisJobStore(redis_server.url)


def test_open_job_store_takes_a_redis_url(redis_server):  # noqa: F811
    store = open_job_store(redis_server.url)
    assert isinstance(store, RedisJobStore)
    job = store.create(record())
    assert RedisJobStore(redis_server.url).get(job.id).id == job.id  # another process's view
    assert RedisJobStore(redis_server.url, prefix="other").list() == []  # prefixes keep deployments apart


def test_unknown_ids_and_fields_are_refused(store):
    with pytest.raises(JobNotFound):
        store.get(new_job_id())
    with pytest.raises(JobNotFound):
        store.get("x:*")  # never part of a key pattern
    job = store.create(record())
    with pytest.raises(ValueError, match="progres"):
        store.update(job.id, progres=0.5)
    with pytest.raises(JobNotFound):
        store.update(new_job_id(), progress=0.5)


def test_idempotency_keys_return_the_first_job_of_the_same_owner_only(store, redis_server):  # noqa: F811
    first = store.create(record("alice", key="k1"))
    assert store.create(record("alice", key="k1")).id == first.id
    assert store.create(record("bob", key="k1")).id != first.id
    assert RedisJobStore(redis_server.url).create(record("alice", key="k1")).id == first.id  # another server
    assert len(store.list()) == 2
    store.delete(first.id)
    assert store.create(record("alice", key="k1")).id != first.id  # a deleted job frees its key


def test_concurrent_creates_with_one_key_make_one_job(redis_server):  # noqa: F811
    stores = [RedisJobStore(redis_server.url) for _ in range(6)]  # six API servers
    made: list[str] = []
    lock = threading.Lock()

    def create(store: RedisJobStore) -> None:
        job = store.create(record("alice", key="same"))
        with lock:
            made.append(job.id)

    threads = [threading.Thread(target=create, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 1 and len(stores[0].list()) == 1


def test_concurrent_updates_of_one_job_lose_nothing(store, redis_server):  # noqa: F811
    job = store.create(record())
    other = RedisJobStore(redis_server.url)

    def append(s: RedisJobStore, tag: str) -> None:
        for i in range(25):
            s._transact(job.id, lambda r: {"log": r.with_log(f"{tag}{i}")})

    threads = [threading.Thread(target=append, args=(s, t)) for s, t in ((store, "a"), (other, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.get(job.id).log) == 50  # every read-modify-write kept the other's lines


def test_unfinished_follows_status_changes(store):
    job = store.create(record())
    assert [r.id for r in store.unfinished()] == [job.id]
    assert store.claim(job.id, "w").status == RUNNING
    assert [r.id for r in store.unfinished()] == [job.id]
    store.update(job.id, status=DONE)
    assert store.unfinished() == []
    store.update(job.id, status=QUEUED)  # an operator re-queues it
    assert [r.id for r in store.unfinished()] == [job.id]


def test_a_stopped_redis_is_one_clear_error(tmp_path):
    server = RedisServer(tmp_path / "r").start()
    store = RedisJobStore(server.url)
    job = store.create(record())
    server.stop()
    with pytest.raises(JobStoreUnavailable, match="did not answer") as caught:
        store.get(job.id)
    assert caught.value.code == errors.BUSY and server.url in str(caught.value)
