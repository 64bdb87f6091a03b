"""A scaled-out job stack for tests: a real redis-server, real `python -m svc_core worker` processes (torch threads 1)
and a JobService submitting through the Dramatiq broker, as an API server started with --jobs redis://... does."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import soundfile as sf

from audio_factories import sung_phrase
from redis_support import RedisServer

WORKER_START_GUARD_SECONDS = 180  # imports torch on a busy 2-core box; a guard, not a timing assertion
WORKER_STOP_GUARD_SECONDS = 60
TEST_HEARTBEAT_SECONDS = 5  # a killed worker's messages go back on the queue after this (default 15)
ALWAYS_MAINTAIN = 1_000_000  # every broker command looks for dead workers (tests: no waiting on chance)
SAMPLE_RATE = 44100


@dataclass
class Worker:
    proc: subprocess.Popen
    log: Path
    name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Stack:
    root: Path
    redis: RedisServer
    blobs_dir: Path
    models_dir: Path
    workers: list[Worker] = field(default_factory=list)
    service: object = None

    def start_worker(self, name: str, queues: str = "cpu", extra: tuple[str, ...] = ()) -> Worker:
        log = self.root / f"{name}.log"
        args = [sys.executable, "-m", "svc_core", "worker", "--redis", self.redis.url, "--store", str(self.blobs_dir),
                "--models-dir", str(self.models_dir), "--work-dir", str(self.root / name), "--queues", queues,
                "--threads", "1", "--worker-threads", "1", "--heartbeat-seconds", str(TEST_HEARTBEAT_SECONDS),
                "--maintenance-chance", str(ALWAYS_MAINTAIN), *extra]
        env = dict(os.environ, SVC_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        with open(log, "w") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=Path(__file__).parents[1])
        worker = Worker(proc, log, name)
        self.workers.append(worker)
        return worker

    def wait_ready(self, worker: Worker) -> None:
        """Until the worker printed its start line (it consumes from then on)."""
        deadline = time.monotonic() + WORKER_START_GUARD_SECONDS
        while "worker " not in worker.output():
            if worker.proc.poll() is not None:
                pytest.fail(f"worker {worker.name} exited with {worker.proc.returncode}:\n{worker.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"worker {worker.name} did not start within {WORKER_START_GUARD_SECONDS} s:\n"
                            f"{worker.output()}")
            time.sleep(0.2)

    def stop(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        for worker in self.workers:
            try:
                worker.proc.wait(WORKER_STOP_GUARD_SECONDS)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        if self.service is not None:
            self.service.close()
        self.redis.stop()


def start_stack(root: Path, workers: int = 2) -> Stack:
    """redis-server + `workers` worker processes + a JobService on the broker (records in Redis, files in a folder
    every process shares). Stop it with `stack.stop()`."""
    from svc_core.jobs.blobs import LocalBlobStore
    from svc_core.jobs.broker import BrokerQueue
    from svc_core.jobs.redis_store import RedisJobStore
    from svc_core.jobs.service import JobService
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.settings import STARTER_SOVITS, STARTER_VOICES

    redis = RedisServer(root / "redis").start()
    stack = Stack(root, redis, root / "blobs", root / "models")
    stack.models_dir.mkdir()
    try:
        for i in range(workers):
            stack.start_worker(f"worker{i + 1}")
        for worker in stack.workers:
            stack.wait_ready(worker)
        queue = BrokerQueue(redis.url)
        queue.start()
        library = ModelLibrary(stack.models_dir, root / "uploads", shipped=(STARTER_VOICES, STARTER_SOVITS))
        stack.service = JobService(RedisJobStore(redis.url), LocalBlobStore(stack.blobs_dir), queue, library)
    except BaseException:
        stack.stop()
        raise
    return stack


def write_clip(path: Path, seconds: float, seed: int = 0) -> Path:
    """A synthetic sung clip of `seconds` (44.1 kHz wav)."""
    sf.write(path, sung_phrase(seconds, SAMPLE_RATE, seed=seed), SAMPLE_RATE)
    return path


def worker_pid(record) -> int:
    """The PID in a record's worker field "<host>:<pid>:<thread>"."""
    return int(record.worker.split(":")[1])
