"""Jobs on Dramatiq with its Redis broker (scale-out): the broker, the one actor, and the submit side.

A message carries only the job id; the record (options, inputs' blob keys, state) lives in the JobStore, so any
worker with the same store and blob store can run it. Dramatiq acks a message only after the actor returns; the
messages a worker fetched stay in its Redis "acks" set, and when that worker stops sending heartbeats for
`heartbeat_ms`, the next broker command of another worker that rolls queue maintenance (`maintenance_chance` in a
million) puts them back on the queue. Every broker command (an idle consumer polls at least once a second) is a
heartbeat, so a live worker busy with a long job is never declared dead.

The actor never raises for a job's own error (runner.run_job records it), so max_retries is 0; only an outage
(Redis not answering while the job was read or recorded) delivers the message again, with backoff. A message
delivered again is harmless: the store's claim skips finished jobs and counts the attempts of a job whose worker was lost.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .errors import BUSY, JobError
from .model import QUEUES, STALE_HEARTBEATS, STALE_SECONDS  # noqa: F401 - STALE_HEARTBEATS: kept for importers

if TYPE_CHECKING:
    from dramatiq import Actor
    from dramatiq.brokers.redis import RedisBroker

    from .model import JobRecord
    from .runner import WorkerEnv

ACTOR_NAME = "svc_run_job"
DEFAULT_QUEUE = "cpu"
NAMESPACE = "svc:queue"  # Redis key prefix of Dramatiq's lists and sets (the job store uses "svc:jobs")
DEFAULT_HEARTBEAT_MS = 15_000  # a worker silent this long is dead: its unacked messages go back on the queue
DEFAULT_MAINTENANCE_CHANCE = 100_000  # broker commands in a million that look for dead workers (10 %)
MAINTENANCE_SCALE = 1_000_000
TIME_LIMIT_MS = 24 * 3600 * 1000  # Dramatiq's own limit is a backstop; the job's time budget applies (ui.limits)
CONNECT_TIMEOUT_SECONDS = 5.0
OUTAGE_RETRIES = 30  # deliveries retried when Redis (records or queue) did not answer; a job's own error: never
OUTAGE_MIN_BACKOFF_MS, OUTAGE_MAX_BACKOFF_MS = 1_000, 60_000  # Dramatiq's exponential backoff between them


class BrokerUnavailable(JobError):
    """The Redis broker did not answer."""

    code, status = BUSY, 503


def check_queue(name: str) -> str:
    """`name` if it is a known queue ("cpu", "gpu"); else a JobError naming the choices."""
    if name not in QUEUES:
        raise JobError(f"unknown queue {name!r}: choose from {', '.join(QUEUES)}", code="invalid_option")
    return name


def make_broker(redis_url: str, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS,
                maintenance_chance: int = DEFAULT_MAINTENANCE_CHANCE) -> "RedisBroker":
    """A Dramatiq RedisBroker on `redis_url` with both queues declared (so a Worker can consume either)."""
    import redis
    from dramatiq.brokers.redis import RedisBroker

    if not 0 <= maintenance_chance <= MAINTENANCE_SCALE:
        raise JobError(f"maintenance chance {maintenance_chance} is not in 0..{MAINTENANCE_SCALE}")
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
    except ValueError as exc:
        raise JobError(f"{redis_url!r} is not a Redis URL (redis://host:6379/0): {exc}") from None
    return RedisBroker(client=client, namespace=NAMESPACE, heartbeat_timeout=int(heartbeat_ms),
                       maintenance_chance=int(maintenance_chance))


def ping(broker: "RedisBroker", redis_url: str) -> None:
    """BrokerUnavailable (one readable line) unless Redis answers."""
    import redis

    try:
        broker.client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BrokerUnavailable(f"cannot reach Redis at {redis_url}: {exc}") from None


def is_outage(exc: BaseException) -> bool:
    """True for an error of the infrastructure (Redis not answering), not of the job: worth delivering again."""
    import redis

    from .redis_store import JobStoreUnavailable

    return isinstance(exc, (JobStoreUnavailable, BrokerUnavailable, redis.ConnectionError, redis.TimeoutError))


def retry_on_outage(retries: int, exc: BaseException) -> bool:
    """Dramatiq's retry_when: deliver again (with backoff) after an outage, up to OUTAGE_RETRIES times; a message
    whose actor raised anything else is dead-lettered (run_job records job errors itself and does not raise)."""
    return retries < OUTAGE_RETRIES and is_outage(exc)


def declare_actor(broker: "RedisBroker", env: "WorkerEnv | None" = None) -> "Actor":
    """Bind the actor "svc_run_job"(job_id) to `broker`. `env`: the worker process's WorkerEnv (None on the
    submitting side, which only builds messages)."""
    import dramatiq

    def svc_run_job(job_id: str) -> None:
        if env is None:
            raise RuntimeError("this process submits jobs but has no WorkerEnv to run them")
        run_message(job_id, env, broker)

    for queue in QUEUES:
        broker.declare_queue(queue)
    return dramatiq.actor(svc_run_job, actor_name=ACTOR_NAME, queue_name=DEFAULT_QUEUE, broker=broker,
                          max_retries=0, retry_when=retry_on_outage, min_backoff=OUTAGE_MIN_BACKOFF_MS,
                          max_backoff=OUTAGE_MAX_BACKOFF_MS, time_limit=TIME_LIMIT_MS)


def enqueue(broker: "RedisBroker", job_id: str, queue: str, delay_ms: int | None = None) -> None:
    """Put one message for `job_id` on `queue` (after `delay_ms`, on Dramatiq's delay queue)."""
    actor = broker.get_actor(ACTOR_NAME)
    message = actor.message_with_options(args=(job_id,))
    if queue != message.queue_name:
        message = message.copy(queue_name=check_queue(queue))
    broker.enqueue(message, delay=delay_ms)


def _put_back_if_running(job_id: str, env: "WorkerEnv", broker: "RedisBroker") -> bool:
    """A job still running elsewhere (a fresh heartbeat: a duplicate message, not a lost worker) is put back
    with a delay (until its heartbeat would be stale) -> True; else False."""
    from .errors import JobNotFound
    from .store import heartbeat_fresh

    try:
        record = env.store.get(job_id)
    except JobNotFound:
        return True  # deleted meanwhile: nothing to do
    now = time.time()
    if not heartbeat_fresh(record, now):
        return False
    age = now - record.heartbeat_at
    enqueue(broker, job_id, record.queue, delay_ms=int((STALE_SECONDS - age) * 1000) + 1)
    return True


def run_message(job_id: str, env: "WorkerEnv", broker: "RedisBroker") -> None:
    """Run one delivered message. A job still running elsewhere is put back with a delay instead, so two
    workers never run it side by side (store.claim refuses it too, and a refusal there, a heartbeat written
    between this look and the claim, puts it back the same way: the message is never dropped while its job may
    still need a run); runner.run_job claims the rest (skips finished ones, retries after a lost worker, fails
    after max_attempts)."""
    from .runner import run_job

    if _put_back_if_running(job_id, env, broker):
        return
    if run_job(job_id, env) is None:
        _put_back_if_running(job_id, env, broker)


class BrokerQueue:
    """The submit side (API server, page, CLI): JobService hands it each new record."""

    def __init__(self, redis_url: str, heartbeat_ms: int = DEFAULT_HEARTBEAT_MS) -> None:
        self.redis_url = redis_url
        self.broker = make_broker(redis_url, heartbeat_ms)
        self.actor = declare_actor(self.broker)

    def start(self) -> None:
        """Check that Redis answers (BrokerUnavailable otherwise). Queued messages live in Redis: nothing to do."""
        ping(self.broker, self.redis_url)

    def submit(self, record: "JobRecord") -> None:
        """Queue the job on its record's queue ("cpu" or "gpu")."""
        import redis

        try:
            enqueue(self.broker, record.id, record.queue)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise BrokerUnavailable(f"cannot reach Redis at {self.redis_url}: {exc}") from None

    def stop(self, wait: bool = True) -> None:
        """Close the broker's connections (the workers keep running the queued jobs)."""
        self.broker.close()
