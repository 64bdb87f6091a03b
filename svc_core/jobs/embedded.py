"""The default job queue: worker threads in the server's own process, no other service.

Jobs wait in memory as ids; their records are in the store, so a restarted server loses nothing: `start()` queues
again every job the store has unfinished (queued ones, and running ones whose server died: the work folder's lock
says the previous server is gone, so they are claimed at once although their heartbeat may look fresh; that
counts another attempt, store.claim). A job id is queued at most once at a time, so a job is never run by two of
the pool's threads at once.

`stop()` asks running jobs to stop: they go back to QUEUED without using an attempt ("interrupted by a server
shutdown") and run again at the next start; it waits a bounded time for them, so a long job never holds up the
server's exit (a job still running then is taken over at the next start, counting an attempt).
"""
from __future__ import annotations

import logging
import queue
import threading
import time

from .model import RUNNING, JobRecord
from .runner import WorkerEnv, run_job

log = logging.getLogger("svc_core.jobs")

STOP = None  # the queue item that ends one worker thread
STOP_WAIT_SECONDS = 5.0  # stop(): how long running jobs get to stop


class EmbeddedPool:
    """`workers` threads running jobs of `env` in submission order."""

    def __init__(self, env: WorkerEnv, workers: int = 1) -> None:
        self.env = env
        self.workers = max(1, int(workers))
        self._queue: "queue.Queue[str | None]" = queue.Queue()
        self._stopping = threading.Event()
        self._pending: set[str] = set()  # queued or running here
        self._recover: set[str] = set()  # RUNNING at start: their previous server is gone
        self._running: dict[int, str] = {}  # thread ident -> the job id it runs
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        """Start the threads and queue the store's unfinished jobs, oldest first."""
        if self.running:
            return
        if self._stopping.is_set():  # started again after a stop: a new queue and flag (old threads keep theirs)
            old, self._queue, self._stopping = self._queue, queue.Queue(), threading.Event()
            with self._lock:
                items = []
                while True:
                    try:
                        items.append(old.get_nowait())
                    except queue.Empty:
                        break
                for item in items:  # ids submitted since the stop move over; STOP items stay for the old threads
                    (old if item is STOP else self._queue).put(item)
        self._threads = [threading.Thread(target=self._work, args=(self._queue, self._stopping),
                                          name=f"svc-job-{i}", daemon=True) for i in range(self.workers)]
        for thread in self._threads:
            thread.start()
        unfinished = self.env.store.unfinished()
        if unfinished:
            log.info("resuming %d unfinished job(s) from the store", len(unfinished))
        for record in unfinished:
            if record.status == RUNNING:
                with self._lock:
                    if record.id not in self._pending:
                        self._recover.add(record.id)
            self.submit(record)

    def submit(self, record: JobRecord) -> None:
        """Queue `record` (already in the store) to run; a job already queued or running here is not added."""
        with self._lock:
            if record.id in self._pending:
                return
            self._pending.add(record.id)
        self._queue.put(record.id)

    def running_jobs(self) -> list[str]:
        """Ids of the jobs the threads are running now."""
        with self._lock:
            return sorted(self._running.values())

    def stop(self, wait: bool = True, timeout: float | None = STOP_WAIT_SECONDS) -> list[str]:
        """Stop taking jobs and ask running ones to stop (they return to the queue in the store without using an
        attempt); queued ones stay queued in the store for the next start. With `wait`, wait up to `timeout`
        seconds (None: until they stopped) -> the ids of jobs still running after that."""
        self._stopping.set()
        with self._lock:
            while True:  # drop what has not started
                try:
                    job_id = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job_id is not STOP:
                    self._pending.discard(job_id)
                    self._recover.discard(job_id)
        for _ in self._threads:
            self._queue.put(STOP)
        if wait:
            deadline = None if timeout is None else time.monotonic() + max(0.0, timeout)
            for thread in self._threads:
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        left = [t for t in self._threads if t.is_alive()]
        with self._lock:
            still = sorted(self._running[t.ident] for t in left if t.ident in self._running)
        if still and wait:
            log.warning("job(s) %s did not stop within %s s; they are taken over at the next start",
                        ", ".join(still), timeout)
        self._threads = []
        return still

    def _work(self, jobs: "queue.Queue[str | None]", stopping: threading.Event) -> None:
        me = threading.get_ident()
        while True:
            job_id = jobs.get()
            if job_id is STOP:
                return
            with self._lock:
                previous_dead = job_id in self._recover
                self._recover.discard(job_id)
                self._running[me] = job_id
            try:
                if not stopping.is_set():  # stopped meanwhile: it stays queued in the store
                    run_job(job_id, self.env, previous_dead=previous_dead, stop=stopping)
            except Exception:  # noqa: BLE001 - the store failed; the pool keeps serving
                log.exception("job %s: the pool could not run it", job_id)
            finally:
                with self._lock:
                    self._pending.discard(job_id)
                    self._running.pop(me, None)

