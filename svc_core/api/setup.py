"""Build what the API serves from the server's settings: the JobService (embedded pool or Dramatiq broker, made by
svc_core.jobs.service.service_from_settings) and the API app. Used by the page's server (svc_core/ui/server.py)
and the standalone API (standalone.py).

Where jobs live (kept across restarts: not in the folders the page empties at start and exit, workdir.py): records
in <work_dir>/jobs (with `--jobs redis://...`: in Redis, where the workers update them), files (inputs/<id>/...,
results/<id>/...) in `--job-store` (a folder, or s3://bucket/prefix), default <work_dir>/blobs.
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


@dataclass
class JobsSetup:
    service: Any  # svc_core.jobs.service.JobService
    mode: str  # "embedded" or "broker"

    def share_upload(self, entry: Any) -> None:
        """With workers elsewhere (broker mode), publish a voice uploaded on the page to the blob store, where a
        worker fetches it (svc_core.jobs.voice_sync); in-process workers see the server's uploads as they are."""
        if self.mode == "broker":
            from ..jobs.voice_sync import publish_voice

            publish_voice(self.service.blobs, entry)

    def stop(self, wait_seconds: float | None = None) -> list[str]:
        """Stop pruning and the embedded workers: a running job is asked to stop and goes back to the queue
        without using an attempt (it runs again at the next start); waits at most `wait_seconds` (default
        service.STOP_WAIT_SECONDS) -> ids of jobs still running then. Queued jobs stay in the store; a broker has
        nothing to stop here."""
        from ..jobs.service import STOP_WAIT_SECONDS

        return self.service.close(STOP_WAIT_SECONDS if wait_seconds is None else wait_seconds)


def build_jobs(settings, context, work_dir: Path) -> JobsSetup:
    """The JobService over the server's JobContext (`context`: its voices, loaded-voice cache and limits): jobs run
    in `settings.concurrency` threads of this process, or on Dramatiq workers with `settings.jobs`."""
    from dataclasses import replace

    from ..jobs.service import service_from_settings

    settings = replace(settings, work_dir=Path(work_dir))
    service = service_from_settings(settings, context=context, jobs=settings.jobs, blobs=settings.job_store,
                                    workers=settings.concurrency)
    return JobsSetup(service, "broker" if settings.jobs else "embedded")


def build_api(settings, library, jobs: JobsSetup, work_dir: Path, login_check: LoginCheck | None = None):
    """The API app over a built JobsSetup."""
    ctx = ApiContext(jobs.service, library, TokenStore.in_work_dir(work_dir), settings, login_check, Path(work_dir),
                     jobs.mode)
    return create_api(ctx)
