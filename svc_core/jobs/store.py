"""Where job records live: the JobStore protocol and its folder implementation, FileJobStore.

FileJobStore keeps one JSON file per job (`<folder>/<id>.json`), written to a temporary file and moved into place
with os.replace, so a reader never sees half a record and a crash leaves the previous one. Every read-modify-write
holds a threading.Lock and an fcntl lock on `<folder>/.lock`, so threads and processes sharing the folder do not
lose each other's changes. Idempotency keys are indexed in `<folder>/keys/<sha256 of owner and key>` (the job id).

The claim rules (one place, RedisJobStore follows them too): see `claim_decision`.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Iterator, Protocol

from . import errors
from .errors import JobNotFound
from .model import CANCELLED, FAILED, FINAL, QUEUED, RUNNING, JobRecord

try:  # POSIX: a lock shared with other processes on the same folder
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads of one process only
    fcntl = None  # type: ignore[assignment]

JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # model.new_job_id(): uuid4().hex
RECORD_FIELDS = frozenset(f.name for f in fields(JobRecord))
CANCELLED_MESSAGE = "The job was cancelled."
LOST_MESSAGE = ("The job was started {attempts} times and its worker was lost each time (the process died or the "
                "machine went away); it is not retried again.")


class JobStore(Protocol):
    """Job records by id (see the module docstring of svc_core.jobs.store for the semantics)."""

    def create(self, record: JobRecord) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord: ...

    def update(self, job_id: str, **fields: Any) -> JobRecord: ...

    def claim(self, job_id: str, worker: str) -> JobRecord | None: ...

    def request_cancel(self, job_id: str) -> JobRecord: ...

    def list(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]: ...

    def unfinished(self) -> list[JobRecord]: ...

    def delete(self, job_id: str) -> None: ...


# ----------------------------------------------------------------------------- the rules every store follows
def claim_decision(record: JobRecord, worker: str, now: float | None = None) -> tuple[dict[str, Any], bool]:
    """What claiming `record` for `worker` changes -> (fields to set, claimed). Not claimed: a finished job
    (a duplicate delivery: nothing changes), a job whose cancel was asked (-> cancelled), a job started
    max_attempts times already (-> failed, "worker_lost"). Claimed: running, one more attempt, this worker."""
    now = time.time() if now is None else now
    if record.status in FINAL:
        return {}, False
    if record.cancel_requested:
        return cancelled_fields(now), False
    if record.attempts >= record.max_attempts:
        return {"status": FAILED, "stage": "failed", "finished_at": now, "worker": None,
                "error": {"code": errors.WORKER_LOST, "message": LOST_MESSAGE.format(attempts=record.attempts)},
                "message": LOST_MESSAGE.format(attempts=record.attempts)}, False
    return {"status": RUNNING, "attempts": record.attempts + 1, "worker": worker, "started_at": now,
            "heartbeat_at": now, "stage": "starting"}, True


def cancel_decision(record: JobRecord, now: float | None = None) -> dict[str, Any]:
    """What a cancel request changes: a queued job is cancelled at once; a running one gets the flag (its worker
    stops it); a finished one is left as it is."""
    if record.status in FINAL:
        return {}
    if record.status == QUEUED:
        return {"cancel_requested": True, **cancelled_fields(time.time() if now is None else now)}
    return {"cancel_requested": True}


def cancelled_fields(now: float) -> dict[str, Any]:
    return {"status": CANCELLED, "stage": "cancelled", "finished_at": now, "message": CANCELLED_MESSAGE,
            "error": {"code": errors.CANCELLED, "message": CANCELLED_MESSAGE}}


def check_fields(values: dict[str, Any]) -> None:
    """Refuse names that are not JobRecord fields (a typo would otherwise be stored and never read)."""
    unknown = sorted(set(values) - RECORD_FIELDS)
    if unknown:
        raise ValueError(f"not job record fields: {', '.join(unknown)}")
    if "id" in values:
        raise ValueError("a job's id cannot change")


def idempotency_digest(owner: str, key: str) -> str:
    """The index name of (owner, idempotency key): sha256 hex of both (owners never see each other's keys)."""
    return hashlib.sha256(f"{owner}\0{key}".encode()).hexdigest()


# ----------------------------------------------------------------------------- one JSON file per job
class FileJobStore:
    """Job records as JSON files in `folder` (created if missing)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "keys").mkdir(exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file = self.folder / ".lock"

    def __repr__(self) -> str:
        return f"FileJobStore({str(self.folder)!r})"

    # ------------------------------------------------------------------ files
    def _path(self, job_id: str) -> Path:
        if not isinstance(job_id, str) or not JOB_ID.match(job_id):
            raise JobNotFound(f"There is no job '{job_id}'.")
        return self.folder / f"{job_id}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            if fcntl is None:
                yield
                return
            with open(self._lock_file, "a+") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def _read(self, job_id: str) -> JobRecord:
        path = self._path(job_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise JobNotFound(f"There is no job '{job_id}'.") from None
        return JobRecord.from_dict(data)

    def _write(self, record: JobRecord) -> None:
        _write_json(self._path(record.id), record.to_dict())

    def _key_path(self, owner: str, key: str) -> Path:
        return self.folder / "keys" / idempotency_digest(owner, key)

    # ------------------------------------------------------------------ JobStore
    def create(self, record: JobRecord) -> JobRecord:
        """Store a new record -> it; with an idempotency key already used by the same owner -> that job."""
        with self._locked():
            if record.idempotency_key:
                key_path = self._key_path(record.owner, record.idempotency_key)
                if key_path.is_file():
                    try:
                        return self._read(key_path.read_text(encoding="utf-8").strip())
                    except JobNotFound:
                        pass  # the job was deleted: the key is free again
                self._write(record)
                _write_text(key_path, record.id)
            else:
                self._write(record)
            return record

    def get(self, job_id: str) -> JobRecord:
        return self._read(job_id)

    def update(self, job_id: str, **values: Any) -> JobRecord:
        check_fields(values)
        with self._locked():
            record = self._read(job_id)
            merged = JobRecord.from_dict({**record.to_dict(), **values})
            self._write(merged)
            return merged

    def claim(self, job_id: str, worker: str) -> JobRecord | None:
        with self._locked():
            record = self._read(job_id)
            changes, claimed = claim_decision(record, worker)
            if changes:
                record = JobRecord.from_dict({**record.to_dict(), **changes})
                self._write(record)
            return record if claimed else None

    def request_cancel(self, job_id: str) -> JobRecord:
        with self._locked():
            record = self._read(job_id)
            changes = cancel_decision(record)
            if changes:
                record = JobRecord.from_dict({**record.to_dict(), **changes})
                self._write(record)
            return record

    def _all(self) -> list[JobRecord]:
        out = []
        for path in self.folder.glob("*.json"):
            try:
                out.append(self._read(path.stem))
            except (JobNotFound, ValueError, TypeError):  # removed meanwhile, or not a record
                continue
        return out

    def list(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]:
        """Newest first; only `owner`'s when given."""
        records = [r for r in self._all() if owner is None or r.owner == owner]
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[:max(0, int(limit))]

    def unfinished(self) -> list[JobRecord]:
        """Queued and running jobs, oldest first (the order to run them again)."""
        return sorted((r for r in self._all() if r.status not in FINAL), key=lambda r: r.created_at)

    def delete(self, job_id: str) -> None:
        with self._locked():
            try:
                record = self._read(job_id)
            except JobNotFound:
                return
            if record.idempotency_key:
                self._key_path(record.owner, record.idempotency_key).unlink(missing_ok=True)
            self._path(job_id).unlink(missing_ok=True)


def _write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (a temporary file in the same folder, then os.replace)."""
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path: Path, data: dict[str, Any]) -> None:
    _write_text(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def open_job_store(spec: str | Path) -> JobStore:
    """A store from its spec: "redis://..." (or rediss://) -> RedisJobStore; anything else is a folder."""
    text = str(spec)
    if text.startswith(("redis://", "rediss://", "unix://")):
        from .redis_store import RedisJobStore  # the broker's module (redis installed with dramatiq[redis])

        return RedisJobStore(text)
    return FileJobStore(Path(text).expanduser())
