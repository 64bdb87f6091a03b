"""The job system's limits: how many unfinished jobs a caller and the whole server may have (admission), and how
long finished jobs are kept (retention, svc_core.jobs.retention).

Disk bound of the job store (records + blobs), with U = `max_unfinished_total`, S = the upload limit per file
(`--max-file-size`, 200 MB), A = `max_age_seconds`, R = the largest result set of one job and F = the jobs that
finish within A (at most what the workers can run in A):

    inputs  <= U x S              inputs exist only while a job is queued or running (removed when it ends)
    results <= F x R              a finished job's results are removed with its record after A
    records <= (U + F) x ~60 kB   one JSON each, its log capped at model.LOG_LINES lines

With the defaults (U = 200, S = 200 MB): inputs stay under 40 GB, in practice far less (a clip is a few MB). R is
bounded by the audio length limits (30 min for a conversion: ~160 MB as 16-bit WAV at 44.1 kHz; a 10 min cover's
stems + zip: ~0.5 GB), F by the throughput: a box converting a 1 min job per minute for 7 days finishes ~10 000
jobs (~50 GB of 5 MB results). Lower `--job-max-age-days` to keep less.
"""
from __future__ import annotations

import threading
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from . import errors
from .errors import JobError

if TYPE_CHECKING:
    from .store import JobStore

from ..ui.settings import DEFAULT_JOB_MAX_AGE_DAYS, DEFAULT_MAX_QUEUED_JOBS, DEFAULT_MAX_QUEUED_TOTAL

DEFAULT_MAX_PER_OWNER = DEFAULT_MAX_QUEUED_JOBS  # unfinished (queued + running) jobs one caller may have: 20
DEFAULT_MAX_TOTAL = DEFAULT_MAX_QUEUED_TOTAL  # unfinished jobs of all callers together: 200
DEFAULT_MAX_AGE_DAYS = DEFAULT_JOB_MAX_AGE_DAYS  # finished jobs (record, results) are removed after this: 7 days
DAY_SECONDS = 24 * 3600.0
PRUNE_INTERVAL_SECONDS = 3600.0  # retention runs at start and then this often
RETRY_AFTER_SECONDS = 30  # what a `busy` answer suggests waiting (HTTP Retry-After)


class Busy(JobError):
    """Too many unfinished jobs (the caller's or the server's): nothing was stored; try again later."""

    code, status = errors.BUSY, 429

    def __init__(self, message: str, retry_after: int = RETRY_AFTER_SECONDS) -> None:
        super().__init__(message)
        self.retry_after = int(retry_after)


@dataclass(frozen=True)
class QueueLimits:
    """Admission caps (0: no limit) and the retention of finished jobs (seconds; 0: keep forever)."""

    max_per_owner: int = DEFAULT_MAX_PER_OWNER
    max_total: int = DEFAULT_MAX_TOTAL
    max_age_seconds: float = DEFAULT_MAX_AGE_DAYS * DAY_SECONDS
    prune_interval_seconds: float = PRUNE_INTERVAL_SECONDS

    @classmethod
    def from_settings(cls, settings) -> "QueueLimits":
        """From AppSettings (max_queued_jobs, max_queued_jobs_total, job_max_age_days)."""
        return cls(max_per_owner=settings.max_queued_jobs, max_total=settings.max_queued_jobs_total,
                   max_age_seconds=settings.job_max_age_days * DAY_SECONDS)


class Admission:
    """Counts a submit against the caps, including the submits of this process still uploading their inputs (so
    concurrent submits cannot pass the cap together; across several API servers on one Redis it is approximate by
    the submits in flight)."""

    def __init__(self, store: "JobStore", limits: QueueLimits) -> None:
        self.store = store
        self.limits = limits
        self._lock = threading.Lock()
        self._reserved: Counter[str] = Counter()

    @contextmanager
    def admit(self, owner: str) -> Iterator[None]:
        """Hold a place for one job of `owner` while it is stored; Busy when a cap is reached."""
        limits = self.limits
        with self._lock:
            if limits.max_per_owner > 0:
                mine = self.store.count_unfinished(owner) + self._reserved[owner]
                if mine >= limits.max_per_owner:
                    raise Busy(f"You have {mine} jobs queued or running; the limit is {limits.max_per_owner}. "
                               "Wait for one to finish (or cancel one) and submit again.")
            if limits.max_total > 0:
                total = self.store.count_unfinished() + sum(self._reserved.values())
                if total >= limits.max_total:
                    raise Busy(f"The server has {total} jobs queued or running, its limit; submit again in a "
                               "little while.")
            self._reserved[owner] += 1
        try:
            yield
        finally:
            with self._lock:
                self._reserved[owner] -= 1
                if self._reserved[owner] <= 0:
                    del self._reserved[owner]
