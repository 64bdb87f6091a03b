"""Jobs scaled out on Dramatiq + Redis with real components: a redis-server, two `python -m svc_core worker`
processes (torch threads 1), the starter voice, and a JobService submitting through BrokerQueue as the API server
does. 50 jobs from 10 client threads all end with their own result for their own client; a cancel reaches a job
running on a worker; a second delivery of a finished job changes nothing."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import soundfile as sf

from svc_core.jobs.broker import enqueue
from svc_core.jobs.model import CANCELLED, DONE, QUEUED, RUNNING
from worker_stack import start_stack, worker_pid, write_clip

CLIENTS, JOBS_PER_CLIENT = 10, 5
JOB_GUARD_SECONDS = 600  # a guard against a hang, not a timing assertion
BASE_SECONDS, STEP_SECONDS = 1.0, 0.04  # job k converts a clip of BASE + k * STEP seconds: every length differs
LONG_CLIP_SECONDS = 90.0  # long enough to be cancelled while it runs (the starter voice does ~4 s of audio a second)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("broker"), workers=2)
    yield stack
    stack.stop()


def wait_until(predicate, what: str, guard: float = JOB_GUARD_SECONDS, poll: float = 0.05):
    deadline = time.monotonic() + guard
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {guard:.0f} s")
        time.sleep(poll)


def result_seconds(stack, record, owner: str, dest: Path) -> float:
    """Duration of the job's converted audio, fetched through the service as its owner."""
    result, blobs = stack.service.result(record.id, record.results[0].name, owner=owner)
    info = sf.info(blobs.get_file(result.key, dest))
    return info.frames / info.samplerate


def test_fifty_jobs_from_ten_clients_each_get_their_own_result(stack, tmp_path):
    service = stack.service
    submitted: dict[str, tuple[str, float, float]] = {}  # job id -> (owner, input seconds, transpose)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def client(c: int) -> None:
        owner = f"client{c}"
        try:
            for j in range(JOBS_PER_CLIENT):
                k = c * JOBS_PER_CLIENT + j
                seconds, transpose = BASE_SECONDS + k * STEP_SECONDS, float(k % 13 - 6)
                clip = write_clip(tmp_path / f"in_{k}.wav", seconds, seed=k)
                record = service.submit("convert", owner, {"model": "starter", "speaker": "", "transpose": transpose},
                                        {"audio": clip})
                with lock:
                    submitted[record.id] = (owner, seconds, transpose)
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    assert len(submitted) == CLIENTS * JOBS_PER_CLIENT

    finished = {job_id: service.wait(job_id, JOB_GUARD_SECONDS) for job_id in submitted}
    not_done = {i: (r.status, r.error) for i, r in finished.items() if r.status != DONE}
    assert not not_done, not_done
    pids = set()
    for job_id, record in finished.items():
        owner, seconds, transpose = submitted[job_id]
        assert record.owner == owner and record.params["transpose"] == transpose
        assert record.attempts == 1 and len(record.results) == 1
        assert f"{transpose:+g}" in record.results[0].name  # the result is named after its own options
        got = result_seconds(stack, record, owner, tmp_path / "out" / f"{job_id}.wav")
        assert abs(got - seconds) < STEP_SECONDS / 2, (job_id, got, seconds)  # its own clip, not a neighbour's
        assert record.timings["queue_wait"] >= 0 and record.started_at >= record.created_at
        pids.add(worker_pid(record))
    assert pids == {w.pid for w in stack.workers}  # both workers took jobs
    for c in range(CLIENTS):  # each client sees exactly its own jobs
        mine = {r.id for r in service.list(owner=f"client{c}")}
        assert mine == {i for i, (o, _, _) in submitted.items() if o == f"client{c}"}


def test_a_job_cancelled_while_running_on_a_worker_ends_cancelled(stack, tmp_path):
    service = stack.service
    clip = write_clip(tmp_path / "long.wav", LONG_CLIP_SECONDS)
    record = service.submit("convert", "canceller", {"model": "starter", "speaker": ""}, {"audio": clip})
    running = wait_until(lambda: (r := service.get(record.id)).status == RUNNING and r, "the job to start")
    assert worker_pid(running) in {w.pid for w in stack.workers}
    service.cancel(record.id, owner="canceller")
    final = service.wait(record.id, JOB_GUARD_SECONDS)
    assert final.status == CANCELLED and final.results == [] and final.attempts == 1
    assert final.finished_at is not None and final.error["code"] == "cancelled"
    # the worker is free again: a new job still runs
    after = service.submit("convert", "canceller", {"model": "starter", "speaker": ""},
                           {"audio": write_clip(tmp_path / "short.wav", 1.0)})
    assert service.wait(after.id, JOB_GUARD_SECONDS).status == DONE


def test_a_second_delivery_of_a_finished_job_is_skipped(stack, tmp_path):
    service = stack.service
    record = service.submit("convert", "dup", {"model": "starter", "speaker": ""},
                            {"audio": write_clip(tmp_path / "clip.wav", 1.0)})
    done = service.wait(record.id, JOB_GUARD_SECONDS)
    assert done.status == DONE and done.attempts == 1
    queue = service.queue
    for _ in range(3):  # the broker delivers it again (at-least-once delivery)
        enqueue(queue.broker, record.id, record.queue)
    client = queue.broker.client
    wait_until(lambda: client.hlen("svc:queue:cpu.msgs") == 0, "the duplicates to be consumed and acked")
    again = service.get(record.id)
    assert again.status == DONE and again.attempts == 1 and again.finished_at == done.finished_at
    assert again.results == done.results and again.worker == done.worker


def test_a_gpu_job_waits_for_a_gpu_worker_and_a_gpu_worker_takes_it(stack, tmp_path):
    service = stack.service
    record = service.submit("convert", "gpu-user", {"model": "starter", "speaker": ""},
                            {"audio": write_clip(tmp_path / "g.wav", 1.0)}, queue="gpu")
    cpu_job = service.submit("convert", "gpu-user", {"model": "starter", "speaker": ""},
                             {"audio": write_clip(tmp_path / "c.wav", 1.0)})
    assert service.wait(cpu_job.id, JOB_GUARD_SECONDS).status == DONE  # the cpu workers are working...
    assert service.get(record.id).status == QUEUED  # ... and left the gpu job alone
    # a "GPU" worker (the gpu queue, on the CPU here: this machine has no CUDA)
    gpu = stack.start_worker("gpu-worker", queues="gpu", extra=("--device", "cpu"))
    stack.wait_ready(gpu)
    final = service.wait(record.id, JOB_GUARD_SECONDS)
    assert final.status == DONE and worker_pid(final) == gpu.pid


def test_two_long_jobs_run_side_by_side_on_the_two_workers(stack, tmp_path):
    """A worker fetches only as many jobs as it runs at once: it never sits on a second job while the other
    worker is idle."""
    service = stack.service
    clips = [write_clip(tmp_path / f"long{i}.wav", 24.0 + i) for i in range(2)]
    jobs = [service.submit("convert", "pair", {"model": "starter", "speaker": ""}, {"audio": clip})
            for clip in clips]  # back to back: both are queued when the next idle worker asks
    def both_running():
        records = [service.get(j.id) for j in jobs]
        if any(r.finished for r in records):
            pytest.fail(f"a job ended before the other started (one worker held both): {records}")
        return all(r.status == RUNNING for r in records) and records

    both = wait_until(both_running, "both jobs running at once", poll=0.02)
    assert {worker_pid(r) for r in both} == {w.pid for w in stack.workers[:2]}
    assert all(service.wait(j.id, JOB_GUARD_SECONDS).status == DONE for j in jobs)
