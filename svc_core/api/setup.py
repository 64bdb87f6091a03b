"""Build what the API serves from the server's settings: the JobService (embedded pool or Dramatiq broker) and the
ApiContext. Used by the page's server (svc_core/ui/server.py) and the standalone API (standalone.py).

Where jobs live (kept across restarts: not in the folders the page empties at start and exit, workdir.py):
  records: with `--jobs redis://...` in Redis (the workers update them there), else <job store folder>/records
  files:   `--job-store` (a folder or s3://bucket/prefix), default <work_dir>/jobs: inputs/<id>/..., results/<id>/...
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .app import ApiContext, create_api
from .auth import LoginCheck
from .tokens import TokenStore

log = logging.getLogger("svc_core.api")

JOBS_FOLDER = "jobs"  # <work_dir>/jobs: the default job store
RECORDS_FOLDER = "records"  # job records (JSON) inside a folder job store


@dataclass
class JobsSetup:
    service: Any  # svc_core.jobs.service.JobService
    pool: Any | None  # the EmbeddedPool (None with a broker)
    mode: str  # "embedded" or "broker"

    def stop(self) -> None:
        """Stop the embedded workers (a running job finishes; queued ones stay in the store for the next start)."""
        if self.pool is not None:
            self.pool.stop(wait=True)


def store_specs(settings, work_dir: Path) -> tuple[str, str]:
    """(record store spec, blob store spec) for `settings.jobs` / `settings.job_store`."""
    blobs = settings.job_store or str(Path(work_dir) / JOBS_FOLDER)
    if settings.jobs:
        return settings.jobs, blobs
    folder = Path(blobs) if not blobs.startswith("s3://") else Path(work_dir) / JOBS_FOLDER
    return str(folder / RECORDS_FOLDER), blobs


def build_jobs(settings, context, work_dir: Path) -> JobsSetup:
    """The JobService over the server's JobContext (`context`: its voices, loaded-voice cache and limits): jobs run
    in `settings.concurrency` threads of this process, or on Dramatiq workers with `settings.jobs`."""
    from ..jobs.blobs import open_blob_store
    from ..jobs.service import JobService
    from ..jobs.store import open_job_store

    store_spec, blob_spec = store_specs(settings, work_dir)
    store, blobs = open_job_store(store_spec), open_blob_store(blob_spec)
    if settings.jobs:
        from ..jobs.broker import BrokerQueue

        return JobsSetup(JobService(store, blobs, BrokerQueue(settings.jobs), context.library), None, "broker")
    from ..jobs.embedded import EmbeddedPool
    from ..jobs.runner import make_worker_env

    env = make_worker_env(settings.models_dir, work_dir, store, blobs, settings.threads,
                          separation_dir=settings.separation_dir, context=context)
    pool = EmbeddedPool(env, workers=settings.concurrency)
    pool.start()  # re-queues the jobs a stopped server left unfinished
    return JobsSetup(JobService(store, blobs, pool, context.library), pool, "embedded")


def build_api(settings, library, jobs: JobsSetup, work_dir: Path, login_check: LoginCheck | None = None):
    """The API app over a built JobsSetup."""
    ctx = ApiContext(jobs.service, library, TokenStore.in_work_dir(work_dir), settings, login_check, Path(work_dir),
                     jobs.mode)
    return create_api(ctx)
