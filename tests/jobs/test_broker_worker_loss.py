"""A worker killed by its PID mid-job (SIGKILL: no goodbye): its jobs (the running one and any it had fetched) go
back on the queue once its heartbeat stops, and the other worker runs them (attempt 2) or they fail with
"worker_lost"; none is lost. And a Redis outage while a worker reads a job is retried, not the job's failure.
Real redis-servers, real worker processes, the starter voice."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest
import soundfile as sf

from svc_core.jobs.model import DONE, FAILED, RUNNING
from redis_support import RedisServer
from worker_stack import Stack, start_stack, worker_pid, write_clip

JOB_GUARD_SECONDS = 600  # a guard against a hang, not a timing assertion
CLIP_SECONDS = (30.0, 31.0, 32.0)  # long enough to kill a worker while it converts; lengths tell results apart


@pytest.fixture
def stack(tmp_path):
    stack = start_stack(tmp_path / "stack", workers=2)
    yield stack
    stack.stop()


def test_a_job_on_a_killed_worker_is_rerun_elsewhere_or_fails_as_worker_lost(stack, tmp_path):
    service = stack.service
    jobs = {}
    for i, seconds in enumerate(CLIP_SECONDS):
        clip = write_clip(tmp_path / f"clip{i}.wav", seconds, seed=i)
        record = service.submit("convert", f"owner{i}", {"model": "starter", "speaker": ""}, {"audio": clip})
        jobs[record.id] = (f"owner{i}", seconds)

    deadline = time.monotonic() + JOB_GUARD_SECONDS
    while True:  # the first job seen running: kill its worker
        running = [r for r in (service.get(i) for i in jobs) if r.status == RUNNING and r.stage != "starting"]
        if running:
            victim_job = running[0]
            break
        assert time.monotonic() < deadline, "no job started"
        time.sleep(0.05)
    victim = next(w for w in stack.workers if w.pid == worker_pid(victim_job))
    survivor = next(w for w in stack.workers if w is not victim)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.proc.wait(30) == -signal.SIGKILL

    finals = {job_id: service.wait(job_id, JOB_GUARD_SECONDS) for job_id in jobs}
    assert all(r.finished for r in finals.values()), {i: r.status for i, r in finals.items()}  # none is lost
    killed = finals[victim_job.id]
    if killed.status == DONE:
        assert killed.attempts == 2 and worker_pid(killed) == survivor.pid
    else:
        assert killed.status == FAILED and killed.error["code"] == "worker_lost"
    for job_id, record in finals.items():
        owner, seconds = jobs[job_id]
        if record.status == DONE:  # every result is its own clip's, fetched as its owner
            result, blobs = service.result(job_id, record.results[0].name, owner=owner)
            info = sf.info(blobs.get_file(result.key, tmp_path / "out" / f"{job_id}.wav"))
            assert abs(info.frames / info.samplerate - seconds) < 0.5
        else:
            assert record.error["code"] == "worker_lost"
    assert survivor.proc.poll() is None  # the other worker carried on


def test_a_job_delivered_while_its_records_redis_is_down_runs_once_it_is_back(tmp_path):
    """The job records on their own Redis (--records), down when the worker gets the message: the delivery is
    retried with backoff (an outage, not the job's error) and the job runs when that Redis is back."""
    from svc_core.jobs.blobs import LocalBlobStore
    from svc_core.jobs.broker import NAMESPACE, BrokerQueue, enqueue
    from svc_core.jobs.redis_store import RedisJobStore
    from svc_core.jobs.service import JobService

    records = RedisServer(tmp_path / "records", persist=True).start()  # its records survive the restart
    stack = Stack(tmp_path, RedisServer(tmp_path / "queue").start(), tmp_path / "blobs", tmp_path / "models")
    stack.models_dir.mkdir()
    try:
        worker = stack.start_worker("worker1", extra=("--records", records.url))
        stack.wait_ready(worker)
        queue = BrokerQueue(stack.redis.url)
        later: list = []  # the job is stored now and handed to the broker by hand below
        service = JobService(RedisJobStore(records.url), LocalBlobStore(stack.blobs_dir),
                             SimpleNamespace(submit=later.append), None)
        job = service.submit("convert", "alice", {"model": "starter", "speaker": "flite_slt"},
                             {"audio": write_clip(tmp_path / "clip.wav", 2.0)})
        records.stop()  # the records' Redis goes away ...
        enqueue(queue.broker, job.id, job.queue)  # ... and then the worker gets the job
        client = queue.broker.client
        deadline = time.monotonic() + JOB_GUARD_SECONDS
        while not client.hlen(f"{NAMESPACE}:cpu.DQ.msgs"):  # the failed delivery is scheduled again
            assert worker.proc.poll() is None and time.monotonic() < deadline, worker.output()
            assert not client.zcard(f"{NAMESPACE}:cpu.XQ"), "dead-lettered: the job would never run"
            time.sleep(0.05)
        records.start(same_port=True)
        final = service.wait(job.id, JOB_GUARD_SECONDS)
        assert final.status == DONE and final.attempts == 1, (final.status, final.error, worker.output())
        assert later == [job]
    finally:
        stack.stop()
        records.stop()
