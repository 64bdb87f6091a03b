"""The submit side of the broker against a real redis-server (no worker): the broker's settings, messages on the
record's queue, a duplicate of a job still running elsewhere put back with a delay (not run twice side by side),
and a Redis that is down failing the submit with a clear "busy" instead of leaving a job queued forever."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest
import redis

from redis_support import RedisServer, redis_server  # noqa: F401 - the fixture
from svc_core.jobs import errors
from svc_core.jobs.blobs import LocalBlobStore
from svc_core.jobs.broker import (ACTOR_NAME, NAMESPACE, OUTAGE_RETRIES, STALE_HEARTBEATS, TIME_LIMIT_MS,
                                  BrokerQueue, make_broker, run_message)
from svc_core.jobs.errors import JobError
from svc_core.jobs.model import FAILED, RUNNING, JobRecord, new_job_id
from svc_core.jobs.redis_store import JobStoreUnavailable, RedisJobStore
from svc_core.jobs.runner import HEARTBEAT_SECONDS
from svc_core.jobs.service import JobService
from svc_core.jobs.store import FileJobStore
from worker_stack import write_clip


def queued_job_ids(client, queue: str) -> list[str]:
    """Job ids of the messages waiting on `queue` (Dramatiq keeps message bodies in a hash beside the list)."""
    bodies = client.hvals(f"{NAMESPACE}:{queue}.msgs")
    return [json.loads(body)["args"][0] for body in bodies]


def test_the_broker_has_our_settings_and_the_actor_never_retries(redis_server):  # noqa: F811
    broker = make_broker(redis_server.url, heartbeat_ms=3000, maintenance_chance=1_000_000)
    assert broker.heartbeat_timeout == 3000 and broker.maintenance_chance == 1_000_000
    assert broker.namespace == NAMESPACE
    queue = BrokerQueue(redis_server.url)
    actor = queue.broker.get_actor(ACTOR_NAME)
    assert actor.options["max_retries"] == 0 and actor.options["time_limit"] == TIME_LIMIT_MS
    retry = actor.options["retry_when"]  # only an outage is delivered again, never a job's own error
    assert retry(0, JobStoreUnavailable("Redis did not answer")) and retry(0, redis.ConnectionError())
    assert not retry(0, ValueError("a bug")) and not retry(0, JobError("bad request"))
    assert not retry(OUTAGE_RETRIES, JobStoreUnavailable("still down"))
    assert {"cpu", "gpu"} <= queue.broker.get_declared_queues()
    with pytest.raises(JobError, match="not a Redis URL"):
        make_broker("redis://host:notaport/0")


def test_each_record_goes_to_its_own_queue(redis_server):  # noqa: F811
    queue = BrokerQueue(redis_server.url)
    queue.start()
    cpu = JobRecord(new_job_id(), "convert", "a", {}, {})
    gpu = JobRecord(new_job_id(), "convert", "a", {}, {}, queue="gpu")
    queue.submit(cpu)
    queue.submit(gpu)
    client = queue.broker.client
    assert queued_job_ids(client, "cpu") == [cpu.id] and queued_job_ids(client, "gpu") == [gpu.id]


def test_a_duplicate_of_a_job_running_elsewhere_is_put_back_with_a_delay(redis_server):  # noqa: F811
    queue = BrokerQueue(redis_server.url)
    store = RedisJobStore(redis_server.url)
    job = store.create(JobRecord(new_job_id(), "convert", "a", {}, {}))
    store.claim(job.id, "other-host:1:t")  # running on another worker, heartbeat just now
    env = SimpleNamespace(store=store)  # run_message reads only the store on this path
    run_message(job.id, env, queue.broker)
    again = store.get(job.id)
    assert again.status == RUNNING and again.attempts == 1 and again.worker == "other-host:1:t"  # not taken over
    delayed = queued_job_ids(queue.broker.client, "cpu.DQ")
    assert delayed == [job.id]  # back on the queue, for when the heartbeat would be stale
    body = json.loads(queue.broker.client.hvals(f"{NAMESPACE}:cpu.DQ.msgs")[0])
    wait_ms = body["options"]["eta"] - time.time() * 1000
    assert 0 < wait_ms <= STALE_HEARTBEATS * HEARTBEAT_SECONDS * 1000 + 50


def test_a_submit_while_redis_is_down_fails_as_busy_and_the_job_is_not_left_queued(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    queue = BrokerQueue(server.url)
    server.stop()
    store = FileJobStore(tmp_path / "jobs")
    service = JobService(store, LocalBlobStore(tmp_path / "blobs"), queue, None)
    clip = write_clip(tmp_path / "clip.wav", 0.5)
    with pytest.raises(JobError) as caught:
        service.submit("convert", "alice", {"model": "starter", "speaker": ""}, {"audio": clip})
    assert caught.value.code == errors.BUSY and caught.value.status == 503
    [record] = store.list()
    assert record.status == FAILED and record.error["code"] == errors.BUSY
    with pytest.raises(JobError, match=f"cannot reach Redis at {server.url}"):
        queue.start()
