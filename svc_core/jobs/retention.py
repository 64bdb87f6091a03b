"""Retention: finished jobs older than the max age are removed with their files (records, "inputs/<id>/",
"results/<id>/"). `prune` runs once; `Pruner` runs it at start and then every PRUNE_INTERVAL_SECONDS in a daemon
thread (the JobService of the server owns it: the embedded server, or the API server in broker mode; workers do
not prune). Inputs of a job are removed as soon as it ends (runner / service); pruning removes any left by a crash.
"""
from __future__ import annotations

import logging
import threading
import time

from .blobs import BlobStore
from .store import JobStore

log = logging.getLogger("svc_core.jobs")

PRUNE_BATCH = 500  # jobs looked up per store call


def drop_files(blobs: BlobStore, job_id: str, results: bool = True) -> None:
    """Remove a job's inputs (and its results with `results`) from the blob store."""
    blobs.delete_prefix(f"inputs/{job_id}/")
    if results:
        blobs.delete_prefix(f"results/{job_id}/")


def prune(store: JobStore, blobs: BlobStore, max_age_seconds: float, now: float | None = None) -> int:
    """Remove the jobs that finished more than `max_age_seconds` ago -> how many. Files first, then the record (a
    crash in between leaves a record whose files are gone, removed at the next run). 0: keep everything."""
    if max_age_seconds <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - max_age_seconds
    removed = 0
    while True:
        ids = store.finished_before(cutoff, PRUNE_BATCH)
        for job_id in ids:
            drop_files(blobs, job_id)
            store.delete(job_id)
        removed += len(ids)
        if len(ids) < PRUNE_BATCH:
            return removed


class Pruner:
    """`prune` now and then every `interval` seconds until `stop()`, in a daemon thread."""

    def __init__(self, store: JobStore, blobs: BlobStore, max_age_seconds: float, interval: float) -> None:
        self.store, self.blobs = store, blobs
        self.max_age_seconds, self.interval = max_age_seconds, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        try:
            removed = prune(self.store, self.blobs, self.max_age_seconds)
        except Exception:  # noqa: BLE001 - the store did not answer: try again at the next run
            log.warning("pruning old jobs failed", exc_info=True)
            return 0
        if removed:
            log.info("removed %d finished job(s) older than %.1f days", removed, self.max_age_seconds / 86400)
        return removed

    def start(self) -> None:
        if self.max_age_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="svc-job-pruner", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread = None
