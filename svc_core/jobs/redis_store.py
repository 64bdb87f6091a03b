"""Job records in Redis: the JobStore the API server and every Dramatiq worker share (scale-out).

Keys under `prefix` (default "svc:jobs"):
  <prefix>:job:<id>            the record as JSON
  <prefix>:all                 sorted set id -> created_at (newest first listing)
  <prefix>:owner:<owner>       the same, per owner
  <prefix>:unfinished          set of ids that are queued or running
  <prefix>:finished            sorted set id -> finished_at (retention finds old ones with one ZRANGEBYSCORE)
  <prefix>:idem:<sha256>        the job id an (owner, idempotency key) made (store.idempotency_digest)

Every change of one record is a WATCH/MULTI transaction on its key (optimistic, retried on a concurrent write), so
`claim` is atomic across workers: of two workers handed the same job, exactly one gets it.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .errors import BUSY, JobError, JobNotFound
from .model import QUEUED, RUNNING, JobRecord
from .store import JOB_ID, cancel_decision, check_fields, claim_decision, idempotency_digest

DEFAULT_PREFIX = "svc:jobs"
MAX_TRANSACTION_TRIES = 100  # optimistic retries of one record change under contention
CONNECT_TIMEOUT_SECONDS = 5.0
UNFINISHED = (QUEUED, RUNNING)


class JobStoreUnavailable(JobError):
    """Redis did not answer (down, wrong address, refused)."""

    code, status = BUSY, 503


class RedisJobStore:
    """JobStore on a Redis server (redis://host:port/db). Thread-safe: redis-py pools its connections."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        import redis

        self.url = url
        self.prefix = prefix.rstrip(":")
        self._redis = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS)
        self._errors = (redis.ConnectionError, redis.TimeoutError)
        self._watch_error = redis.WatchError

    # ------------------------------------------------------------------ keys
    def _job_key(self, job_id: str) -> str:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise JobNotFound(f"There is no job '{job_id}'.")
        return f"{self.prefix}:job:{job_id}"

    def _owner_key(self, owner: str) -> str:
        return f"{self.prefix}:owner:{owner}"

    def _idem_key(self, owner: str, key: str) -> str:
        return f"{self.prefix}:idem:{idempotency_digest(owner, key)}"

    @property
    def _all_key(self) -> str:
        return f"{self.prefix}:all"

    @property
    def _unfinished_key(self) -> str:
        return f"{self.prefix}:unfinished"

    @property
    def _finished_key(self) -> str:
        return f"{self.prefix}:finished"

    def _index_status(self, pipe: Any, record: JobRecord) -> None:
        """Queue the index changes of `record`'s status on `pipe` (inside MULTI)."""
        if record.status in UNFINISHED:
            pipe.sadd(self._unfinished_key, record.id)
            pipe.zrem(self._finished_key, record.id)
        else:
            pipe.srem(self._unfinished_key, record.id)
            pipe.zadd(self._finished_key, {record.id: record.finished_at or record.created_at})

    # ------------------------------------------------------------------ plumbing
    def _call(self, action: Callable[[], Any]) -> Any:
        try:
            return action()
        except self._errors as exc:
            raise JobStoreUnavailable(f"the job store at {self.url} did not answer: {exc}") from None

    def _transaction(self, attempt: Callable[[], Any], gave_up: str) -> Any:
        """Run a WATCH/MULTI `attempt` (None: a watched key changed) until it goes through, at most
        MAX_TRANSACTION_TRIES times; then JobStoreUnavailable(`gave_up`)."""
        for _ in range(MAX_TRANSACTION_TRIES):
            result = self._call(attempt)
            if result is not None:
                return result
        raise JobStoreUnavailable(gave_up)

    def ping(self) -> None:
        """JobStoreUnavailable unless the server answers."""
        self._call(self._redis.ping)

    @staticmethod
    def _decode(raw: bytes | None) -> JobRecord | None:
        return None if raw is None else JobRecord.from_dict(json.loads(raw))

    def _transact(self, job_id: str, change: Callable[[JobRecord], dict[str, Any]]) -> tuple[JobRecord, dict]:
        """Apply `change(record) -> fields` to the stored record atomically -> (new record, the fields set)."""
        key = self._job_key(job_id)

        def attempt() -> tuple[JobRecord, dict] | None:
            with self._redis.pipeline() as pipe:
                try:
                    pipe.watch(key)
                    record = self._decode(pipe.get(key))
                    if record is None:
                        raise JobNotFound(f"There is no job '{job_id}'.")
                    fields = change(record)
                    if not fields:
                        pipe.unwatch()
                        return record, fields
                    updated = JobRecord.from_dict({**record.to_dict(), **fields})
                    pipe.multi()
                    pipe.set(key, json.dumps(updated.to_dict()))
                    self._index_status(pipe, updated)
                    pipe.execute()
                    return updated, fields
                except self._watch_error:
                    return None

        return self._transaction(attempt, f"job {job_id} changed {MAX_TRANSACTION_TRIES} times while being updated")

    # ------------------------------------------------------------------ JobStore
    def create(self, record: JobRecord) -> JobRecord:
        """Store a new record; with an idempotency key already used by the same owner -> that earlier job."""
        idem = self._idem_key(record.owner, record.idempotency_key) if record.idempotency_key else None

        def attempt() -> JobRecord | None:
            with self._redis.pipeline() as pipe:
                try:
                    if idem:
                        pipe.watch(idem)
                        earlier = pipe.get(idem)
                        if earlier is not None:
                            found = self._decode(pipe.get(self._job_key(earlier.decode())))
                            if found is not None:
                                pipe.unwatch()
                                return found
                    pipe.multi()
                    if idem:
                        pipe.set(idem, record.id)
                    pipe.set(self._job_key(record.id), json.dumps(record.to_dict()))
                    pipe.zadd(self._all_key, {record.id: record.created_at})
                    pipe.zadd(self._owner_key(record.owner), {record.id: record.created_at})
                    self._index_status(pipe, record)
                    pipe.execute()
                    return record
                except self._watch_error:
                    return None

        return self._transaction(attempt, "the idempotency key kept changing while the job was created")

    def get(self, job_id: str) -> JobRecord:
        record = self._decode(self._call(lambda: self._redis.get(self._job_key(job_id))))
        if record is None:
            raise JobNotFound(f"There is no job '{job_id}'.")
        return record

    def update(self, job_id: str, **fields: Any) -> JobRecord:
        """Merge `fields` into the record (atomic per job)."""
        check_fields(fields)
        return self._transact(job_id, lambda record: dict(fields))[0]

    def claim(self, job_id: str, worker: str, previous_dead: bool = False) -> JobRecord | None:
        """The record, now running on `worker`; None when the worker must skip it (store.claim_decision)."""
        taken: list[bool] = []

        def change(record: JobRecord) -> dict[str, Any]:
            fields, ok = claim_decision(record, worker, previous_dead=previous_dead)
            taken[:] = [ok]
            return fields

        record, _ = self._transact(job_id, change)
        return record if taken and taken[-1] else None

    def request_cancel(self, job_id: str) -> JobRecord:
        """Queued -> cancelled at once; running -> the flag its runner polls; finished -> unchanged."""

        return self._transact(job_id, cancel_decision)[0]

    def _records(self, ids: list[bytes]) -> list[JobRecord]:
        if not ids:
            return []
        raws = self._call(lambda: self._redis.mget([self._job_key(i.decode()) for i in ids]))
        return [r for r in (self._decode(raw) for raw in raws) if r is not None]

    def list(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Newest first (by created_at), at most `limit`."""
        if limit <= 0:
            return []
        index = self._owner_key(owner) if owner is not None else self._all_key
        return self._records(self._call(lambda: self._redis.zrevrange(index, 0, limit - 1)))

    def unfinished(self) -> list[JobRecord]:
        """Queued and running jobs, oldest first."""
        records = self._records(sorted(self._call(lambda: self._redis.smembers(self._unfinished_key))))
        return sorted((r for r in records if r.status in UNFINISHED), key=lambda r: r.created_at)

    def count_unfinished(self, owner: str | None = None) -> int:
        """Queued and running jobs (of `owner` when given): SCARD, or one MGET of the unfinished ones."""
        if owner is None:
            return int(self._call(lambda: self._redis.scard(self._unfinished_key)))
        return sum(1 for r in self.unfinished() if r.owner == owner)

    def finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Ids of finished jobs with finished_at before `cutoff` (unix seconds), oldest first, at most `limit`
        (one ZRANGEBYSCORE on the finished index; jobs finished before the index existed are added once)."""
        self._index_old_finished()
        ids = self._call(lambda: self._redis.zrangebyscore(self._finished_key, "-inf", f"({cutoff}", start=0,
                                                           num=max(0, int(limit))))
        return [i.decode() for i in ids]

    def _index_old_finished(self) -> None:
        """Once per store: add finished jobs stored by a version without the finished index."""
        flag = f"{self.prefix}:finished-indexed"
        if self._call(lambda: self._redis.exists(flag)):
            return
        ids = self._call(lambda: self._redis.zrange(self._all_key, 0, -1))
        for start in range(0, len(ids), 500):
            finished = {r.id: r.finished_at or r.created_at for r in self._records(ids[start:start + 500])
                        if r.finished}
            if finished:
                self._call(lambda: self._redis.zadd(self._finished_key, finished))
        self._call(lambda: self._redis.set(flag, "1"))

    def find_key(self, owner: str, key: str) -> JobRecord | None:
        """The job `owner` made with idempotency key `key`, if any."""
        earlier = self._call(lambda: self._redis.get(self._idem_key(owner, key)))
        if earlier is None:
            return None
        try:
            return self.get(earlier.decode())
        except JobNotFound:
            return None

    def delete(self, job_id: str) -> None:
        """Forget a job (its blobs are the caller's); absent -> nothing."""
        try:
            record = self.get(job_id)
        except JobNotFound:
            return

        def remove() -> None:
            with self._redis.pipeline() as pipe:
                pipe.delete(self._job_key(job_id))
                pipe.zrem(self._all_key, job_id)
                pipe.zrem(self._owner_key(record.owner), job_id)
                pipe.srem(self._unfinished_key, job_id)
                pipe.zrem(self._finished_key, job_id)
                if record.idempotency_key:
                    pipe.delete(self._idem_key(record.owner, record.idempotency_key))
                pipe.execute()

        self._call(remove)

    def close(self) -> None:
        self._redis.close()
