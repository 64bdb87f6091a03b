"""The default job queue: worker threads in the server's own process, no other service.

Jobs wait in memory as ids; their records are in the store, so a restarted server loses nothing: `start()` queues
again every job the store has unfinished (queued ones, and running ones whose server died: claiming them again
counts another attempt, store.claim). A job id is queued at most once at a time, so a job is never run by two of
the pool's threads at once.
"""
from __future__ import annotations

import logging
import queue
import threading

from .model import JobRecord
from .runner import WorkerEnv, run_job

log = logging.getLogger("svc_core.jobs")

STOP = None  # the queue item that ends one worker thread


class EmbeddedPool:
    """`workers` threads running jobs of `env` in submission order."""

    def __init__(self, env: WorkerEnv, workers: int = 1) -> None:
        self.env = env
        self.workers = max(1, int(workers))
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._pending: set[str] = set()  # queued or running here
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Start the threads and queue the store's unfinished jobs, oldest first."""
        if self.running:
            return
        self._threads = [threading.Thread(target=self._work, name=f"svc-job-{i}", daemon=True)
                         for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        unfinished = self.env.store.unfinished()
        if unfinished:
            log.info("resuming %d unfinished job(s) from the store", len(unfinished))
        for record in unfinished:
            self.submit(record)

    def submit(self, record: JobRecord) -> None:
        """Queue `record` (already in the store) to run; a job already queued or running here is not added."""
        with self._lock:
            if record.id in self._pending:
                return
            self._pending.add(record.id)
        self._queue.put(record.id)

    def stop(self, wait: bool = True) -> None:
        """Stop taking jobs: running ones finish (with `wait`, this returns after they did); queued ones stay
        queued in the store for the next start."""
        with self._lock:
            while True:  # drop what has not started
                try:
                    job_id = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job_id is not STOP:
                    self._pending.discard(job_id)
        for _ in self._threads:
            self._queue.put(STOP)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is STOP:
                return
            try:
                run_job(job_id, self.env)
            except Exception:  # noqa: BLE001 - the store failed; the pool keeps serving
                log.exception("job %s: the pool could not run it", job_id)
            finally:
                with self._lock:
                    self._pending.discard(job_id)
