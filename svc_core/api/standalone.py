"""The API without the page: `python -m svc_core api --port 7861 [--jobs redis://...]`, served by uvicorn at
/api/v1 on the same work folder layout as the page (one server per folder: the work folder lock)."""
from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route

from .app import API_PREFIX
from .setup import JobsSetup, build_api, build_jobs

log = logging.getLogger("svc_core.api")


@dataclass
class StandaloneApi:
    """The ASGI app and what to close when it stops."""

    app: Starlette
    work_dir: Path
    jobs: JobsSetup
    lock: object  # svc_core.ui.workdir.WorkDirLock
    api: object = field(default=None)

    def close(self) -> None:
        from ..ui.workdir import clean_at_exit

        self.jobs.stop()
        clean_at_exit(self.work_dir)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def build_standalone(settings) -> StandaloneApi:
    """Voices, loaded-voice cache, job context and job service as the page's server makes them, and the API at
    /api/v1 (the root redirects to the schema)."""
    from ..ui.jobs import JobContext
    from ..ui.models import ModelLibrary
    from ..ui.voice_cache import VoiceCache
    from ..ui.workdir import ONNX_EXPORTS, RESULTS, UPLOADS, WorkDirLock, clean_at_start, default_work_dir

    settings = settings.resolve()
    work_dir = settings.work_dir or default_work_dir()
    lock = WorkDirLock(work_dir).acquire()
    try:
        clean_at_start(work_dir)
        library = ModelLibrary(settings.models_dir, work_dir / UPLOADS, settings.upload_budget,
                               shipped=settings.shipped_voices, show_all_uploads=settings.uploads_shown_to_all)
        cache = VoiceCache(settings.max_cached_voices, settings.device, work_dir / ONNX_EXPORTS, settings.threads)
        context = JobContext(library, cache, work_dir / RESULTS, settings.max_file_size,
                             calibration_dir=settings.examples_dir, limits=settings.job_limits())
        jobs = build_jobs(settings, context, work_dir)
    except BaseException:
        lock.release()
        raise
    api = build_api(settings, library, jobs, work_dir)

    async def root(request):
        return RedirectResponse(f"{API_PREFIX}/openapi.json")

    app = Starlette(routes=[Route("/", root), Mount(API_PREFIX, app=api)])
    return StandaloneApi(app, work_dir, jobs, lock, api)


def _interrupt_on_sigterm() -> None:
    """uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with the handler it found;
    with this one that is a KeyboardInterrupt (not Python's default for SIGTERM, an exit that skips clean-up)."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def serve(settings, log_level: str = "info") -> int:
    """Serve until Ctrl+C / SIGTERM, then stop the workers (a running job is interrupted within a few seconds
    and goes back to the queue; it and the queued ones run at the next start) and release the work folder."""
    import uvicorn

    server = build_standalone(settings)
    _interrupt_on_sigterm()
    try:
        config = uvicorn.Config(server.app, host=settings.host, port=settings.port, log_level=log_level,
                                timeout_graceful_shutdown=5)
        print(f"API on http://{settings.host}:{settings.port}{API_PREFIX} (jobs: {server.jobs.mode})", flush=True)
        uvicorn.Server(config).run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
    return 0
