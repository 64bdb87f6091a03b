"""The job record: what was asked, where it stands, what came out. JSON-able, the same in every store."""
from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from typing import Any

KINDS = ("convert", "cover", "train")
QUEUES = ("cpu", "gpu")
QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINAL = (DONE, FAILED, CANCELLED)
DEFAULT_MAX_ATTEMPTS = 3  # starts of one job (a worker lost mid-job counts one); then failed with "worker_lost"
LOG_LINES = 200  # the record keeps the newest lines of the job's log
HEARTBEAT_SECONDS = 5.0  # a running job's heartbeat_at is refreshed this often (runner._Monitor)
STALE_HEARTBEATS = 3  # a running job whose heartbeat is this many heartbeats old has lost its worker
STALE_SECONDS = STALE_HEARTBEATS * HEARTBEAT_SECONDS  # claim takes over a RUNNING job only past this (store.py)


def new_job_id() -> str:
    """A fresh job id: 32 hex digits (uuid4)."""
    return uuid.uuid4().hex


@dataclass
class ResultFile:
    """One output of a finished job: its name in the API, its blob key, size in bytes and media type."""

    name: str
    key: str  # "results/<job id>/<name>"
    size: int
    media_type: str


@dataclass
class JobRecord:
    """One job. `params` are the checked options (svc_core.jobs.requests); `inputs` map an input's name ("audio",
    "song") to its blob key ("inputs/<job id>/<file name>"). Times are unix seconds (time.time())."""

    id: str
    kind: str
    owner: str  # who submitted it: an API token's name, "local" (no auth), or "page:<client>"
    params: dict[str, Any]
    inputs: dict[str, str]
    status: str = QUEUED
    stage: str = "queued"
    progress: float = 0.0  # 0..1
    eta_seconds: float | None = None
    message: str = ""  # the newest log line
    log: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, plus "queue_wait" and "total"
    results: list[ResultFile] = field(default_factory=list)
    error: dict[str, str] | None = None  # {"code": stable code (errors.py), "message": readable}
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    worker: str | None = None  # "<host>:<pid>:<thread>" of the worker running it
    heartbeat_at: float | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    queue: str = "cpu"

    @property
    def finished(self) -> bool:
        return self.status in FINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobRecord":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["results"] = [r if isinstance(r, ResultFile) else ResultFile(**r) for r in values.get("results", [])]
        return cls(**values)

    def public(self) -> dict[str, Any]:
        """What clients see: everything but the blob keys and the idempotency key."""
        data = self.to_dict()
        data.pop("inputs")
        data.pop("idempotency_key")
        data["results"] = [{"name": r.name, "size": r.size, "media_type": r.media_type} for r in self.results]
        return data

    def with_log(self, line: str) -> list[str]:
        """The log with `line` appended, bounded to LOG_LINES."""
        return (self.log + [line])[-LOG_LINES:]
