"""The browser transport of the live voice changer: Starlette routes that Gradio serves beside its page.

    GET /live                 the Live page (live.html; same login as the main page)
    GET /live/static/{file}   its scripts (live.js, the capture and playback AudioWorklets)
    GET /live/voices          JSON: voices (ModelLibrary), their speakers, default settings and ranges
    GET /live/log/{id}        a session's JSON-lines latency log (download)
    WS  /live/ws              the stream (protocol in web_session.py)

`live_routes(server)` is handed to `gr.Blocks.launch(app_kwargs={"routes": [...]})`: Gradio 6 passes app_kwargs to
its FastAPI `App(**app_kwargs)`, so these routes sit in the app's router ahead of Gradio's own and run under its
root_path. Login: when the app runs with --auth, the page, the voice list, the log and the WebSocket need Gradio's
login cookie (`access-token-<cookie_id>`, or its `-unsecure-` twin, whose value is in `app.tokens`), which
gradio/routes.py's get_current_user reads the same way; without --auth they are as open as the page.
"""
from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

log = logging.getLogger("svc_core.live")

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"live.js": "text/javascript", "capture-worklet.js": "text/javascript",
                "playback-worklet.js": "text/javascript", "live.css": "text/css"}
LIVE_LOGS = "live-logs"  # <work_dir>/live-logs/<id>.jsonl: one latency log per session
KEEP_LOGS = 20  # session logs kept (newest first)
DEFAULT_MAX_SESSIONS = 2  # live sessions at once, all visitors together (--max-live-sessions)
DEFAULT_MAX_MINUTES = 30.0  # a live session ends after this long (--max-live-minutes)
LOG_ID = re.compile(r"^[0-9a-f]{16}$")
STALL_ENV = "SVC_LIVE_TEST_STALL_MS"  # tests only: the engine wrapper sleeps this many ms per block (web_session)


@dataclass
class LiveServer:
    """Server-wide state of the live page: where voices and logs come from, the limits, the sessions running."""

    library: object  # svc_core.ui.models.ModelLibrary
    work_dir: Path
    device: str = "cpu"
    threads: str | int | None = None  # svc_core.threads setting for each session's worker thread
    max_sessions: int = DEFAULT_MAX_SESSIONS
    max_session_seconds: float = DEFAULT_MAX_MINUTES * 60.0
    active: set = field(default_factory=set)  # ids of the sessions running

    @property
    def log_dir(self) -> Path:
        return self.work_dir / LIVE_LOGS

    def new_id(self) -> str:
        return secrets.token_hex(8)


def logged_in(conn: HTTPConnection) -> bool:
    """The request carries Gradio's login cookie for a live token, or the app has no login."""
    app = conn.scope.get("app")
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return True
    cookie_id = getattr(app, "cookie_id", None)
    token = conn.cookies.get(f"access-token-{cookie_id}") or conn.cookies.get(f"access-token-unsecure-{cookie_id}")
    return bool(token) and token in getattr(app, "tokens", {})


NOT_LOGGED_IN = ("<!doctype html><meta charset=utf-8><title>svc-studio Live</title><p>Log in on the "
                 "<a href=\"./\" target=\"_top\">main page</a> first, then open the Live tab again.</p>")


def _refused_json() -> JSONResponse:
    return JSONResponse({"error": "Not logged in: log in on the main page first."}, status_code=401)


async def live_page(request: Request) -> Response:
    if not logged_in(request):
        return HTMLResponse(NOT_LOGGED_IN, status_code=401)
    return FileResponse(STATIC_DIR / "live.html", media_type="text/html", headers={"Cache-Control": "no-cache"})


async def live_static(request: Request) -> Response:
    name = request.path_params["file"]
    if name not in STATIC_FILES:  # a fixed list: no path from the URL reaches the file system
        return JSONResponse({"error": f"no such file: {name}"}, status_code=404)
    return FileResponse(STATIC_DIR / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "no-cache"})


def voices_payload(server: LiveServer) -> dict:
    """Voices the live page offers (the folder voices, plus every upload when the server lists uploads to all),
    their speakers, and the engine's defaults and ranges."""
    from ..f0.registry import list_predictors
    from .settings import RANGES, LiveSettings

    voices = []
    for label, key in server.library.choices(None):
        try:
            entry = server.library.get(key)
        except Exception as err:  # noqa: BLE001 - a voice that vanished is left out, the rest still listed
            log.info("live: voice %s left out: %s", key, err)
            continue
        voices.append({"key": key, "label": label, "speakers": list(entry.speakers), "family": entry.family})
    ranges = {name: {"min": r.low, "max": r.high, "unit": r.unit} for name, r in RANGES.items()}
    return {"voices": voices, "default_voice": voices[0]["key"] if voices else None,
            "defaults": LiveSettings().to_dict(), "ranges": ranges, "f0_predictors": list_predictors(),
            "max_session_seconds": server.max_session_seconds, "max_sessions": server.max_sessions}


def live_routes(server: LiveServer) -> list[BaseRoute]:
    """The routes for `app_kwargs={"routes": ...}` (module docstring)."""
    from .web_session import run_connection

    async def voices(request: Request) -> Response:
        if not logged_in(request):
            return _refused_json()
        return JSONResponse(voices_payload(server))

    async def session_log(request: Request) -> Response:
        if not logged_in(request):
            return _refused_json()
        log_id = request.path_params["log_id"]
        path = server.log_dir / f"{log_id}.jsonl"
        if not LOG_ID.match(log_id) or not path.is_file():
            return JSONResponse({"error": "no such session log (logs of old sessions are removed)"},
                                status_code=404)
        return FileResponse(path, media_type="application/x-ndjson", filename=f"svc-live-{log_id}.jsonl")

    async def websocket(ws: WebSocket) -> None:
        await run_connection(ws, server, logged_in(ws))

    return [Route("/live", live_page), Route("/live/voices", voices), Route("/live/static/{file}", live_static),
            Route("/live/log/{log_id}", session_log), WebSocketRoute("/live/ws", websocket)]
