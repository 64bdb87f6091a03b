"""JobService: the one facade every front end uses for jobs (the REST API, the page, the CLI, the Python API).

`submit` checks the options first (nothing is stored for a bad request), puts the input files in the blob store
under "inputs/<id>/", stores the record and hands its id to the queue (the embedded pool, or the Dramatiq broker).
Reads take an optional owner: a job of someone else is answered as not found (ids are not secrets to guard, but
nobody learns whose jobs exist). Limits (svc_core.jobs.limits): a caller and the server may have only so many
unfinished jobs (beyond: `Busy`, code "busy", nothing stored); finished jobs are removed after the max age by the
service's Pruner (`start_pruning`).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..audio import AUDIO_SUFFIXES
from ..errors import AudioError, OptionError
from ..paths import safe_file_name
from . import errors
from .blobs import BlobStore
from .errors import JobError, JobNotFound, NotFinished, ResultNotFound, UnknownField
from .limits import Admission, QueueLimits
from .model import DONE, FAILED, QUEUES, JobRecord, ResultFile, new_job_id
from .requests import check_params
from .retention import Pruner, drop_files
from .store import JobStore

if TYPE_CHECKING:
    from ..ui.models import ModelLibrary

log = logging.getLogger("svc_core.jobs")

INPUTS = {"convert": ("audio",), "cover": ("song",), "train": ("dataset",)}  # the input files each kind takes
WAIT_POLL_SECONDS = 0.1
STOP_WAIT_SECONDS = 5.0  # close(): how long running embedded jobs get to stop (then the server exits anyway)
JOBS_FOLDER, BLOBS_FOLDER = "jobs", "blobs"  # under the work folder (embedded default)


class JobQueue(Protocol):
    """Where submitted jobs go: EmbeddedPool (in-process threads) or broker.BrokerQueue (Dramatiq)."""

    def submit(self, record: JobRecord) -> None: ...


def input_suffixes(kind: str) -> tuple[str, ...]:
    if kind == "train":
        return (".zip",)  # the dataset archive (svc_core.jobs.train_dataset)
    if kind == "cover":
        from ..song_io import VIDEO_SUFFIXES

        return tuple(dict.fromkeys((*AUDIO_SUFFIXES, *VIDEO_SUFFIXES)))
    return tuple(AUDIO_SUFFIXES)


class JobService:
    """Jobs in `store`, their files in `blobs`, run by `queue`; voices from `library`. `max_file_size` (bytes):
    inputs larger are refused (None: the caller checked). `limits`: the admission caps and the retention
    (default QueueLimits(): 20 unfinished jobs per caller, 200 in all, finished ones kept 7 days)."""

    def __init__(self, store: JobStore, blobs: BlobStore, queue: JobQueue, library: "ModelLibrary | None",
                 max_file_size: int | None = None, limits: QueueLimits | None = None) -> None:
        self.store = store
        self.blobs = blobs
        self.queue = queue
        self.library = library
        self.max_file_size = max_file_size
        self.limits = limits or QueueLimits()
        self.admission = Admission(store, self.limits)
        self.pruner: Pruner | None = None

    def start_pruning(self) -> Pruner:
        """Remove old finished jobs now (in the background) and then every limits.prune_interval_seconds."""
        if self.pruner is None:
            self.pruner = Pruner(self.store, self.blobs, self.limits.max_age_seconds,
                                 self.limits.prune_interval_seconds)
            self.pruner.start()
        return self.pruner

    # ------------------------------------------------------------------ submit
    def _check_files(self, kind: str, files: dict[str, Path]) -> dict[str, Path]:
        wanted = INPUTS[kind]
        unknown = [name for name in files if name not in wanted]
        if unknown:
            raise UnknownField(f"Unknown input file{'s' if len(unknown) > 1 else ''} for a {kind} job: "
                               f"{', '.join(unknown)}. It takes: {', '.join(wanted)}.")
        missing = [name for name in wanted if name not in files]
        if missing:
            raise JobError(f"A {kind} job needs the file '{missing[0]}'.")
        suffixes = input_suffixes(kind)
        out = {}
        for name, path in files.items():
            path = Path(path)
            if not path.is_file():
                raise AudioError(f"The {name} file '{path.name}' was not received.")
            if path.suffix.lower() not in suffixes:
                raise AudioError(f"'{path.name}' is not a file we accept as {name}. Send one of: "
                                 f"{', '.join(s.lstrip('.') for s in suffixes)}.")
            size = path.stat().st_size
            if self.max_file_size is not None and size > self.max_file_size:
                raise JobError(f"'{path.name}' is {size / 2**20:.1f} MB; the limit is "
                               f"{self.max_file_size / 2**20:.0f} MB.", errors.FILE_TOO_LARGE, 413)
            out[name] = path
        return out

    def submit(self, kind: str, owner: str, params: dict[str, Any], files: dict[str, Path],
               idempotency_key: str | None = None, queue: str = "cpu") -> JobRecord:
        """Check, store and queue a job -> its record (with an idempotency key the owner used before: that
        job, and nothing new is stored or run)."""
        normalized = check_params(kind, params, self.library)
        if queue not in QUEUES:
            raise OptionError(f"queue is '{queue}'; one of: {', '.join(QUEUES)}.")
        checked = self._check_files(kind, files)
        if idempotency_key:  # a repeat is answered even at the cap, and uploads nothing
            earlier = self.store.find_key(owner, idempotency_key)
            if earlier is not None:
                return earlier
        with self.admission.admit(owner):  # Busy beyond the caps: nothing stored
            return self._store_and_queue(kind, owner, normalized, checked, idempotency_key, queue)

    def _store_and_queue(self, kind: str, owner: str, normalized: dict[str, Any], checked: dict[str, Path],
                         idempotency_key: str | None, queue: str) -> JobRecord:
        job_id = new_job_id()
        inputs = {}
        try:
            for name, path in checked.items():
                key = f"inputs/{job_id}/{safe_file_name(path.stem)}{path.suffix.lower()}"
                self.blobs.put_file(key, path)
                inputs[name] = key
            record = JobRecord(job_id, kind, owner, normalized, inputs, idempotency_key=idempotency_key or None,
                               queue=queue)
            stored = self.store.create(record)
        except BaseException:
            self.blobs.delete_prefix(f"inputs/{job_id}/")
            raise
        if stored.id != job_id:  # the same owner and idempotency key: the first job answers
            self.blobs.delete_prefix(f"inputs/{job_id}/")
            return stored
        try:
            self.queue.submit(stored)
        except Exception as err:  # noqa: BLE001 - the broker cannot be reached: say so, do not leave it queued
            log.exception("job %s could not be queued", job_id)
            message = f"The job queue cannot be reached ({type(err).__name__}); try again later."
            self.store.update(job_id, status=FAILED, stage="failed", finished_at=time.time(), message=message,
                              error={"code": errors.BUSY, "message": message})
            drop_files(self.blobs, job_id, results=False)
            raise JobError(message, errors.BUSY, 503) from err
        return stored

    # ------------------------------------------------------------------ reads
    def get(self, job_id: str, owner: str | None = None) -> JobRecord:
        """The job (JobNotFound when absent, or when `owner` is given and it is someone else's)."""
        record = self.store.get(job_id)
        if owner is not None and record.owner != owner:
            raise JobNotFound(f"There is no job '{job_id}'.")
        return record

    def list(self, owner: str | None = None, limit: int = 100) -> list[JobRecord]:
        return self.store.list(owner, limit)

    def cancel(self, job_id: str, owner: str | None = None) -> JobRecord:
        """Cancel: a queued job at once, a running one at its next checkpoint; a finished one stays as it is."""
        self.get(job_id, owner)
        record = self.store.request_cancel(job_id)
        if record.finished:  # cancelled while queued (or over already): its inputs are not needed any more
            drop_files(self.blobs, job_id, results=False)
        return record

    def result(self, job_id: str, name: str, owner: str | None = None) -> tuple[ResultFile, BlobStore]:
        """A finished job's result file `name` and the store holding it (NotFinished / ResultNotFound)."""
        record = self.get(job_id, owner)
        if not record.finished:
            raise NotFinished(f"The job is {record.status}; its results are there when it is done.")
        for result in record.results:
            if result.name == name:
                return result, self.blobs
        names = ", ".join(r.name for r in record.results) or "none"
        if record.status != DONE:
            raise ResultNotFound(f"The job ended {record.status}; it has no results.")
        raise ResultNotFound(f"The job has no result '{name}'. Its results: {names}.")

    def wait(self, job_id: str, timeout: float, owner: str | None = None) -> JobRecord:
        """The record once finished, or as it stands after `timeout` seconds (polls the store)."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.get(job_id, owner)
            if record.finished or time.monotonic() >= deadline:
                return record
            time.sleep(WAIT_POLL_SECONDS)

    def delete(self, job_id: str, owner: str | None = None) -> None:
        """Remove a job's record and files (a running one is cancelled first)."""
        record = self.get(job_id, owner)
        if not record.finished:
            self.store.request_cancel(job_id)
        self.store.delete(job_id)
        drop_files(self.blobs, job_id)

    def close(self, wait_seconds: float = STOP_WAIT_SECONDS) -> list[str]:
        """Stop pruning and the embedded pool: running jobs are asked to stop and go back to the queue without
        using an attempt (they run again at the next start); waits at most `wait_seconds` -> the ids of jobs still
        running then (they are taken over at the next start). Queued jobs stay in the store; a broker queue has
        nothing to stop."""
        if self.pruner is not None:
            self.pruner.stop()
            self.pruner = None
        stop = getattr(self.queue, "stop", None)
        if not callable(stop):
            return []
        from .embedded import EmbeddedPool

        if isinstance(self.queue, EmbeddedPool):
            return self.queue.stop(wait=wait_seconds > 0, timeout=wait_seconds)
        stop(wait=False)
        return []


def service_from_settings(settings: Any, *, context: Any = None, jobs: str | None = None, blobs: str | None = None,
                          workers: int = 1, threads: str | int | None = None) -> JobService:
    """The server's JobService: embedded by default (a thread pool sharing `context`, the page's JobContext,
    records in <work_dir>/jobs, files in <work_dir>/blobs), or on the Dramatiq broker when `jobs` is a
    "redis://" URL (records in Redis; the workers run the jobs: `python -m svc_core worker`). `blobs`: a folder or
    "s3://bucket/prefix" (remote workers need one they share with the server)."""
    from .blobs import open_blob_store
    from .store import open_job_store

    settings = settings.resolve()
    work_dir = Path(settings.work_dir) if settings.work_dir else None
    if work_dir is None:
        from ..ui.workdir import default_work_dir

        work_dir = default_work_dir()
    blob_store = open_blob_store(blobs or work_dir / BLOBS_FOLDER)
    if jobs and str(jobs).startswith(("redis://", "rediss://")):
        from .broker import BrokerQueue  # the Dramatiq side (svc_core/jobs/broker.py)

        library = context.library if context is not None else None
        if library is None:
            from ..ui.models import ModelLibrary
            from ..ui.workdir import UPLOADS

            library = ModelLibrary(settings.models_dir, work_dir / UPLOADS, shipped=settings.shipped_voices)
        service = JobService(open_job_store(jobs), blob_store, BrokerQueue(str(jobs)), library,
                             settings.max_file_size, QueueLimits.from_settings(settings))
        service.start_pruning()  # the API server prunes; workers do not
        return service
    from .embedded import EmbeddedPool
    from .runner import make_worker_env

    env = make_worker_env(settings.models_dir, work_dir, open_job_store(jobs or work_dir / JOBS_FOLDER), blob_store,
                          threads if threads is not None else settings.threads, shipped=settings.shipped_voices,
                          separation_dir=settings.separation_dir, max_file_size=settings.max_file_size,
                          device=settings.device, concurrency=workers, context=context)
    pool = EmbeddedPool(env, workers)
    pool.start()
    service = JobService(env.store, env.blobs, pool, env.jobs.library, settings.max_file_size,
                         QueueLimits.from_settings(settings))
    service.start_pruning()
    return service
