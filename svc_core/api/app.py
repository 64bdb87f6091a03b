"""The REST API's FastAPI app: `create_api(ctx)`; served under /api/v1, beside the page (`api_mount(api)` in
Gradio's app_kwargs routes) or alone (svc_core/api/standalone.py).

Offline like the page: no Swagger/ReDoc pages (they load scripts from a CDN); the schema is at /api/v1/openapi.json
and checked in at docs/openapi.json (`python -m svc_core api --print-schema`).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.routing import Mount

from .. import __version__
from .auth import GRADIO_APP_SCOPE_KEY, Caller, LoginCheck, auth_required, require
from .errors import install_error_handlers
from .routes_jobs import router as jobs_router
from .routes_trainings import router as trainings_router
from .routes_voices import router as voices_router
from .schemas import Health, Version, errors
from .tokens import TokenStore

API_VERSION = "v1"
API_PREFIX = f"/api/{API_VERSION}"
INCOMING = "api-incoming"  # <work_dir>/api-incoming/<uuid>/: uploads being received (emptied at start, removed
# at exit: svc_core.ui.workdir.API_INCOMING)
DESCRIPTION = """\
Singing voice conversion over plain HTTP. Every error is JSON `{"error": {"code", "message"}}` with a stable code.
Auth: `Authorization: Bearer <token>` (`python -m svc_core tokens create --name NAME --scope read --scope convert`)
or the page's login cookie; a loopback server without --auth, --tunnel or tokens is open. See docs/api.md.
"""


@dataclass
class ApiContext:
    """What the routes use: the job service, the voices, the tokens, the server's settings, the page's login
    check (None when the API runs alone) and the work folder (tokens file, uploads being received)."""

    service: Any  # svc_core.jobs.service.JobService
    library: Any  # svc_core.ui.models.ModelLibrary
    tokens: TokenStore
    settings: Any  # svc_core.ui.settings.AppSettings
    gradio_auth: LoginCheck | None
    work_dir: Path
    jobs_mode: str = "embedded"  # "embedded" or "broker" (health)

    @property
    def incoming_dir(self) -> Path:
        return self.work_dir / INCOMING


def create_api(ctx: ApiContext) -> FastAPI:
    """The API app (its paths start at /health; mount it at API_PREFIX)."""
    shutil.rmtree(ctx.incoming_dir, ignore_errors=True)  # half-received uploads of an earlier run
    ctx.incoming_dir.mkdir(parents=True, exist_ok=True)
    api = FastAPI(title="svc-studio API", version=__version__, description=DESCRIPTION, docs_url=None,
                  redoc_url=None, openapi_url="/openapi.json", servers=[{"url": API_PREFIX}],
                  root_path_in_servers=False)
    api.state.ctx = ctx
    install_error_handlers(api)

    @api.get("/health", response_model=Health, tags=["server"], summary="The server answers",
             description="No credentials needed.")
    def health(request: Request) -> Health:
        c = request.app.state.ctx
        return Health(jobs=c.jobs_mode, auth_required=auth_required(c.settings, c.tokens))

    @api.get("/version", response_model=Version, tags=["server"], summary="Versions of the server and the API",
             responses=errors(401, 403))
    def version(caller: Caller = Depends(require("read"))) -> Version:
        return Version(version=__version__, api=API_VERSION)

    api.include_router(voices_router)
    api.include_router(jobs_router)
    api.include_router(trainings_router)
    return api


def api_mount(api: FastAPI) -> Mount:
    """The API as a route of the page's app: at /api/v1, with the page's app recorded in the request scope so the
    API can read its login cookie (auth.gradio_login_check)."""
    async def beside_gradio(scope, receive, send) -> None:
        scope[GRADIO_APP_SCOPE_KEY] = scope.get("app")  # the page's app, before the API's own replaces it
        await api(scope, receive, send)

    return Mount(API_PREFIX, app=beside_gradio)
