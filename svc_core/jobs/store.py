"""Where job records live: the JobStore protocol and its folder implementation, FileJobStore.

FileJobStore keeps one JSON file per job (`<folder>/<id>.json`), written to a temporary file and moved into place
with os.replace, so a reader never sees half a record and a crash leaves the previous one. Every read-modify-write
holds a threading.Lock and an fcntl lock on `<folder>/.lock`, so threads and processes sharing the folder do not
lose each other's changes. Idempotency keys are indexed in `<folder>/keys/<sha256 of owner and key>` (the job id);
unfinished jobs in `<folder>/unfinished/<id>` (holding the owner), so admission counts and the restart's re-queue
read only those.

Sizes: `list` reads every record (fine for a few thousand: about 1 ms each; retention keeps the folder at the jobs
of `--job-max-age-days`); `finished_before` looks at the files' modification times (one stat each, no reads) and
reads only the older ones; `count_unfinished` and `unfinished` read the unfinished index (at most the server's
total cap of unfinished jobs, svc_core.jobs.limits).

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
from .model import CANCELLED, FAILED, FINAL, QUEUED, RUNNING, STALE_SECONDS, JobRecord

try:  # POSIX: a lock shared with other processes on the same folder
    import fcntl
except ImportError:  # pragma: no cover - Windows: threads of one process only
    fcntl = None  # type: ignore[assignment]

JOB_ID = re.compile(r"^[0-9a-f]{32}$")  # model.new_job_id(): uuid4().hex
RECORD_FIELDS = frozenset(f.name for f in fields(JobRecord))
UNFINISHED_DIR = "unfinished"  # FileJobStore's index of queued and running jobs
CANCELLED_MESSAGE = "The job was cancelled."
LOST_MESSAGE = ("The job was started {attempts} times and its worker was lost each time (the process died or the "
                "machine went away); it is not retried again.")


class JobStore(Protocol):
    """Job records by id (see the module docstring of svc_core.jobs.store for the semantics)."""

    def create(self, record: JobRecord) -> JobRecord: ...

    def get(self, job_id: str) -> JobRecord: ...

    def update(self, job_id: str, **fields: Any) -> JobRecord: ...

    def claim(self, job_id: str, worker: str, previous_dead: bool = False) -> JobRecord | None: ...

    def request_cancel(self, job_id: str) -> JobRecord: ...

    def list(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]: ...

    def unfinished(self) -> list[JobRecord]: ...

    def delete(self, job_id: str) -> None: ...

    def count_unfinished(self, owner: str | None = None) -> int: ...

    def finished_before(self, cutoff: float, limit: int = 1000) -> list[str]: ...

    def find_key(self, owner: str, key: str) -> JobRecord | None: ...


# ----------------------------------------------------------------------------- the rules every store follows
def heartbeat_fresh(record: JobRecord, now: float | None = None) -> bool:
    """True for a RUNNING job whose heartbeat is younger than model.STALE_SECONDS: its worker is alive."""
    now = time.time() if now is None else now
    return (record.status == RUNNING and record.heartbeat_at is not None
            and now - record.heartbeat_at < STALE_SECONDS)


def claim_decision(record: JobRecord, worker: str, now: float | None = None,
                   previous_dead: bool = False) -> tuple[dict[str, Any], bool]:
    """What claiming `record` for `worker` changes -> (fields to set, claimed). Not claimed: a finished job
    (a duplicate delivery: nothing changes), a RUNNING job whose heartbeat is fresh (younger than
    model.STALE_SECONDS: its worker is alive, a second delivery must not run it too; nothing changes) unless
    `previous_dead` (the caller knows its previous runner is gone: the embedded pool at start, under the work
    folder's lock), a job whose cancel was asked (-> cancelled), a job started max_attempts times already
    (-> failed, "worker_lost"). Claimed: running, one more attempt, this worker."""
    now = time.time() if now is None else now
    if record.status in FINAL:
        return {}, False
    if not previous_dead and heartbeat_fresh(record, now):
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
        self._open_dir = self.folder / UNFINISHED_DIR
        if not self._open_dir.is_dir():  # a folder of an older version: index its unfinished jobs once
            with self._locked():
                self._open_dir.mkdir(exist_ok=True)
                for record in self._all():
                    if record.status not in FINAL:
                        _write_text(self._open_dir / record.id, record.owner)

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
        """The record, and its entry in the unfinished index (added before an unfinished record is written,
        removed after a finished one is: a crash in between leaves an entry that readers check and drop)."""
        marker = self._open_dir / record.id
        if record.status not in FINAL and not marker.is_file():
            _write_text(marker, record.owner)
        _write_json(self._path(record.id), record.to_dict())
        if record.status in FINAL:
            marker.unlink(missing_ok=True)

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

    def claim(self, job_id: str, worker: str, previous_dead: bool = False) -> JobRecord | None:
        with self._locked():
            record = self._read(job_id)
            changes, claimed = claim_decision(record, worker, previous_dead=previous_dead)
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

    def _unfinished_ids(self) -> list[str]:
        return [p.name for p in self._open_dir.iterdir() if JOB_ID.match(p.name)]

    def unfinished(self) -> list[JobRecord]:
        """Queued and running jobs, oldest first (the order to run them again); reads the unfinished index only."""
        out = []
        for job_id in self._unfinished_ids():
            try:
                record = self._read(job_id)
            except (JobNotFound, ValueError, TypeError):
                (self._open_dir / job_id).unlink(missing_ok=True)  # its record is gone: a stale entry
                continue
            if record.status in FINAL:
                (self._open_dir / job_id).unlink(missing_ok=True)
            else:
                out.append(record)
        return sorted(out, key=lambda r: r.created_at)

    def count_unfinished(self, owner: str | None = None) -> int:
        """Queued and running jobs (of `owner` when given), from the index (entries name their owner)."""
        if owner is None:
            return len(self._unfinished_ids())
        count = 0
        for job_id in self._unfinished_ids():
            try:
                count += (self._open_dir / job_id).read_text(encoding="utf-8") == owner
            except FileNotFoundError:
                continue
        return count

    def finished_before(self, cutoff: float, limit: int = 1000) -> list[str]:
        """Ids of finished jobs with finished_at before `cutoff` (unix seconds), oldest first, at most `limit`.
        Only records last written before `cutoff` are read (a finished record is written at its end)."""
        found: list[tuple[float, str]] = []
        with os.scandir(self.folder) as entries:
            for entry in entries:
                if not entry.name.endswith(".json") or not JOB_ID.match(entry.name[:-5]):
                    continue
                try:
                    if entry.stat().st_mtime >= cutoff:
                        continue
                    record = self._read(entry.name[:-5])
                except (OSError, JobNotFound, ValueError, TypeError):
                    continue
                if record.finished and (record.finished_at or 0.0) < cutoff:
                    found.append((record.finished_at or 0.0, record.id))
        return [job_id for _, job_id in sorted(found)[:max(0, int(limit))]]

    def find_key(self, owner: str, key: str) -> JobRecord | None:
        """The job `owner` made with idempotency key `key`, if any."""
        try:
            return self._read(self._key_path(owner, key).read_text(encoding="utf-8").strip())
        except (FileNotFoundError, JobNotFound):
            return None

    def delete(self, job_id: str) -> None:
        with self._locked():
            try:
                record = self._read(job_id)
            except JobNotFound:
                return
            if record.idempotency_key:
                self._key_path(record.owner, record.idempotency_key).unlink(missing_ok=True)
            self._path(job_id).unlink(missing_ok=True)
            (self._open_dir / job_id).unlink(missing_ok=True)


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
