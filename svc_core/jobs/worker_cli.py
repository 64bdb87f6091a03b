"""`python -m svc_core worker`: run conversion and cover jobs from the Redis queue (Dramatiq) on this machine.

    python -m svc_core worker --redis redis://queue-host:6379/0 --store /shared/blobs \\
        --models-dir models --work-dir /tmp/svc-worker --queues cpu --worker-threads 1

The worker runs in this process (no fork): its PID is the worker's, SIGTERM/Ctrl-C finish the running jobs and hand
the fetched ones back to the queue, SIGKILL leaves them to the other workers (after --heartbeat-seconds). It needs the
same job records (default: the Redis server) and files (--store: the server's --job-store, a shared folder or
s3://bucket/prefix) as the API server, and the voices: --models-dir and the uploaded voices' folder
(<work-dir>/uploads, shared with the server).
A GPU worker (`--queues gpu` or `--device cuda`) takes the jobs submitted to the "gpu" queue.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from ..errors import SvcError
from .broker import (DEFAULT_HEARTBEAT_MS, DEFAULT_MAINTENANCE_CHANCE, MAINTENANCE_SCALE, declare_actor, make_broker,
                     ping)
from .model import QUEUES

DEFAULT_WORKER_THREADS = 1  # jobs run at once by one worker process (each uses --threads CPU threads)
STOP_TIMEOUT_MS = 10 * 60 * 1000  # how long a graceful stop waits for the running jobs
PREFETCH_PER_THREAD = 1  # messages fetched per job slot: a busy worker holds no queued job another idle worker
# could run (Dramatiq's default, 2 per thread, lets a worker sit on a second long cover while its neighbour idles)
IDLE_POLL_MS = 100  # an idle worker asks Redis for work at least this often (Dramatiq's default 1000 ms backs off
# up to a second: a job submitted to an idle queue then waits ~0.5 s on average before it starts)


class WorkerSettingsError(SvcError):
    """A worker option that cannot work (named in the message)."""


@dataclass(frozen=True)
class WorkerSettings:
    """What `python -m svc_core worker` was asked for (paths absolute)."""

    redis_url: str
    blob_store: str
    job_store: str
    models_dir: Path
    work_dir: Path
    queues: tuple[str, ...]
    device: str
    threads: str | None
    worker_threads: int
    heartbeat_seconds: float
    maintenance_chance: int
    starter_voices: bool = True
    name: str = ""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis", required=True, metavar="URL", help="the queue's Redis server, redis://host:6379/0")
    p.add_argument("--store", "--job-store", dest="store", required=True, metavar="SPEC",
                   help="the jobs' input and result files, shared with the API server (its --job-store): a folder, "
                        "or s3://bucket/prefix ($SVC_S3_ENDPOINT for MinIO and the like)")
    p.add_argument("--records", default=None, metavar="SPEC",
                   help="where job records are, shared with the API server (default: the --redis server)")
    p.add_argument("--models-dir", default="models", help="folder of voices (default ./models)")
    p.add_argument("--no-starter-voices", action="store_true", help="do not offer the shipped starter voices")
    p.add_argument("--work-dir", required=True, metavar="DIR",
                   help="this worker's scratch space and caches; voices uploaded to the API server are fetched "
                        "from the --store into <work-dir>/uploads when a job names one")
    p.add_argument("--queues", default=None, metavar="NAMES",
                   help="queues to take jobs from, comma-separated: cpu, gpu (default cpu; gpu with --device cuda)")
    p.add_argument("--device", default=None, help="torch device: cpu or cuda (default cuda for --queues gpu)")
    p.add_argument("--threads", default=None, help="CPU threads per job: auto (default, or $SVC_THREADS) or a count")
    p.add_argument("--worker-threads", type=int, default=DEFAULT_WORKER_THREADS, metavar="K",
                   help=f"jobs this process runs at once (default {DEFAULT_WORKER_THREADS})")
    p.add_argument("--heartbeat-seconds", type=float, default=DEFAULT_HEARTBEAT_MS / 1000, metavar="S",
                   help="a worker silent this long counts as dead and its jobs go to the others (default "
                        "%(default)g; every worker of one queue should use the same value)")
    p.add_argument("--maintenance-chance", type=int, default=DEFAULT_MAINTENANCE_CHANCE, metavar="N",
                   help=f"broker commands in {MAINTENANCE_SCALE:,} that look for dead workers (default %(default)d)")
    p.add_argument("--name", default="", help="this worker's name in job records (default host:pid)")
    p.add_argument("--verbose", action="store_true", help="Dramatiq's own log lines too")


def parse_queues(text: str) -> tuple[str, ...]:
    """"cpu,gpu" -> ("cpu", "gpu"); an unknown or empty name -> WorkerSettingsError naming the choices."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",")))
    if not names or any(not n for n in names):
        raise WorkerSettingsError(f"--queues {text!r}: give one or more of {', '.join(QUEUES)}, comma-separated")
    for name in names:
        if name not in QUEUES:
            raise WorkerSettingsError(f"--queues: unknown queue {name!r}; choose from {', '.join(QUEUES)}")
    return names


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    """Checked settings; WorkerSettingsError names the bad option."""
    device = args.device
    queues = parse_queues(args.queues) if args.queues else ("gpu",) if device == "cuda" else ("cpu",)
    if device is None:
        device = "cuda" if "gpu" in queues else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise WorkerSettingsError(f"--device {device!r}: use cpu or cuda (cuda:N)")
    if args.worker_threads < 1:
        raise WorkerSettingsError("--worker-threads must be 1 or more")
    if not args.heartbeat_seconds > 0:
        raise WorkerSettingsError(f"--heartbeat-seconds must be more than 0; got {args.heartbeat_seconds}")
    if not 0 <= args.maintenance_chance <= MAINTENANCE_SCALE:
        raise WorkerSettingsError(f"--maintenance-chance must be 0..{MAINTENANCE_SCALE}")
    if not args.redis.startswith(("redis://", "rediss://", "unix://")):
        raise WorkerSettingsError(f"--redis {args.redis!r}: give a redis://host:port/db URL")
    if args.threads is not None:
        from ..errors import OptionError
        from ..threads import parse_threads

        try:
            parse_threads(args.threads)
        except OptionError as err:
            raise WorkerSettingsError(f"--threads: {err}") from err
    work_dir = Path(args.work_dir).expanduser().resolve()
    return WorkerSettings(
        redis_url=args.redis, blob_store=args.store, job_store=args.records or args.redis,
        models_dir=Path(args.models_dir).expanduser().resolve(), work_dir=work_dir,
        queues=queues, device=device, threads=args.threads, worker_threads=args.worker_threads,
        heartbeat_seconds=args.heartbeat_seconds, maintenance_chance=args.maintenance_chance,
        starter_voices=not args.no_starter_voices,
        name=args.name or f"{socket.gethostname()}:{os.getpid()}")


def check_device(device: str) -> None:
    """WorkerSettingsError when a CUDA device is asked for and torch sees none."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise WorkerSettingsError(f"--device {device}: torch sees no CUDA device here (a GPU worker needs the "
                                      "NVIDIA driver and a CUDA build of torch); use --device cpu")


def build_env(settings: WorkerSettings):
    """The WorkerEnv every job of this process runs with (runner.make_worker_env: the server's own recipe)."""
    from ..ui.settings import STARTER_SOVITS, STARTER_VOICES
    from .runner import make_worker_env
    from .store import open_job_store

    store = open_job_store(settings.job_store)
    if hasattr(store, "ping"):
        store.ping()  # JobStoreUnavailable: one readable line
    shipped = (STARTER_VOICES, STARTER_SOVITS) if settings.starter_voices else ()
    return make_worker_env(settings.models_dir, settings.work_dir, store, settings.blob_store, settings.threads,
                           name=settings.name, shipped=shipped, concurrency=settings.worker_threads,
                           device=settings.device)


def run(args: argparse.Namespace) -> int:
    """Start the worker and run until SIGTERM / SIGINT (then finish the running jobs) -> exit status."""
    import dramatiq

    settings = settings_from_args(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    check_device(settings.device)
    broker = make_broker(settings.redis_url, int(settings.heartbeat_seconds * 1000), settings.maintenance_chance)
    ping(broker, settings.redis_url)
    env = build_env(settings)
    declare_actor(broker, env)
    worker = dramatiq.Worker(broker, queues=set(settings.queues), worker_threads=settings.worker_threads,
                             worker_timeout=IDLE_POLL_MS)
    worker.queue_prefetch = PREFETCH_PER_THREAD * settings.worker_threads  # read when the consumers start
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    worker.start()
    print(f"worker {settings.name}: queues {','.join(settings.queues)}, {settings.worker_threads} job(s) at once, "
          f"device {settings.device}, threads {settings.threads or 'auto'}; redis {settings.redis_url}, "
          f"blobs {settings.blob_store}", flush=True)
    try:
        stop.wait()
        for sig, handler in previous.items():  # a second Ctrl-C ends at once
            signal.signal(sig, handler)
        print(f"worker {settings.name}: stopping (finishing the running jobs)", flush=True)
    finally:
        worker.stop(timeout=STOP_TIMEOUT_MS)
        broker.close()
    return 0
