"""Build and launch the web demo: `build_app(settings)` -> (gr.Blocks, AppState); `launch(settings)` serves it.

Offline by construction: analytics, version checks, share links, SSR/Node and MCP are off, the theme uses system
fonts, and nothing is fetched from the Hub. The queue is bounded (`--queue-size`, `--concurrency`); a full queue
answers "busy, try again" at once instead of hanging.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

offline.refuse_url_inputs()

from .. import __version__  # noqa: E402
from ..api.app import api_mount  # noqa: E402
from ..api.auth import gradio_login_check  # noqa: E402
from ..api.setup import build_api, build_jobs  # noqa: E402
from ..errors import SvcError  # noqa: E402
from ..live.web import LiveServer, live_routes  # noqa: E402
from ..tunnel.panel import build_app_panel, supervisor_for_app  # noqa: E402  (issue #5)
from .convert_tab import ConvertTabContext, build_convert_tab  # noqa: E402
from .cover_job import CoverContext  # noqa: E402
from .cover_tab import CoverTabContext, build_cover_tab  # noqa: E402
from .jobs import AUDIO_SUFFIXES, JobContext  # noqa: E402
from .jobs_tab import JobsTabContext, build_jobs_tab  # noqa: E402
from .live_tab import LiveTabContext, build_live_tab  # noqa: E402
from .latent_tab import LatentTabContext, build_latent_tab  # noqa: E402
from .models import ModelLibrary  # noqa: E402
from .settings import AppSettings, SettingsError, parse_args  # noqa: E402
from .status_tab import build_status_tab  # noqa: E402
from .views import Example, load_examples  # noqa: E402
from .voice_cache import VoiceCache  # noqa: E402
from .workdir import (GRADIO_TEMP, JOB_DOWNLOADS, LATENT, ONNX_EXPORTS, RESULTS, UPLOADS,  # noqa: E402
                      WorkDirLock, clean_at_exit, clean_at_start, default_work_dir, legacy_temp_dirs)

log = logging.getLogger("svc_core.ui")

TITLE = "svc-studio: singing voice conversion"
MAX_EXAMPLES = 12
CSS = """
#app-header { margin-bottom: 0 !important; }
#app-header h2 { margin: 0 0 2px 0; font-size: 20px; }
#app-header p { margin: 0; font-size: 13px; opacity: 0.85; }
#log-panel textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.svc-progress { padding: 2px 2px; }
.svc-progress-track { height: 12px; border-radius: 6px; background: var(--neutral-200); overflow: hidden; }
.svc-progress-fill { height: 100%; background: var(--color-accent); transition: width 0.3s; }
.svc-progress[data-state="failed"] .svc-progress-fill { background: #c0392b; width: 100% !important; }
.svc-progress[data-state="failed"] .svc-stage { color: #c0392b; font-weight: 600; }
.svc-progress[data-state="stopped"] .svc-stage { font-weight: 600; }
.svc-progress[data-state="done"] .svc-progress-fill { background: #27ae60; }
.svc-progress-text { display: flex; justify-content: space-between; gap: 12px; font-size: 13px; margin-top: 4px; }
.svc-eta { white-space: nowrap; }
.svc-note, .svc-note * { font-size: 12px !important; opacity: 0.9; }
#voice-note:empty, #voice-note:has(.prose:empty) { display: none; }
.svc-error { color: #c0392b; font-weight: 600; }
.svc-chips { flex-wrap: wrap !important; gap: 6px !important; align-items: center; }
.svc-chips > * { flex: 0 1 auto !important; min-width: 0 !important; width: auto !important; }
.svc-chips-label { flex: 0 0 auto !important; }
.svc-chips-label p { margin: 0; font-size: 13px; }
.svc-chip { font-size: 12px !important; padding: 2px 10px !important; }
#input-audio .upload-container { height: 96px !important; min-height: 96px !important; }
#input-audio .upload-container .wrap { min-height: 0 !important; height: 100%; padding: 2px; font-size: 14px; }
#input-audio .upload-container .or { display: none; }
#cover-song .upload-container { height: 96px !important; min-height: 96px !important; }
#cover-song .upload-container .wrap { min-height: 0 !important; height: 100%; padding: 2px; font-size: 14px; }
#cover-song .upload-container .or { display: none; }
.tabitem { padding-top: 6px !important; }
/* F0 plot: the output's line dashed (so two overlapping curves stay two), and room for the legend that Vega
   places below the axes (Gradio sizes the SVG without it, which cut it off) */
#f0-plot path[aria-roledescription="line mark"][aria-label*="series: output"] { stroke-dasharray: 7 4; }
#f0-plot .role-legend-symbol path[stroke="#ff7f0e"] { stroke-dasharray: 3 2; }
#f0-plot svg.marks { overflow: visible; }
#f0-plot { overflow: visible !important; margin-bottom: 24px; }
"""


def theme() -> gr.themes.Base:
    """The default look with system fonts only (no web fonts are fetched or served)."""
    return gr.themes.Default(font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                             font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])


@dataclass
class AppState:
    """Server-wide objects (shared by every session; nothing per-user lives here)."""

    settings: AppSettings
    library: ModelLibrary
    cache: VoiceCache
    jobs: JobContext
    work_dir: Path
    tunnel: object | None = None  # svc_core.tunnel.TunnelSupervisor with --tunnel (started by launch())
    lock: WorkDirLock | None = None  # held on work_dir while this server runs
    live: object | None = None  # svc_core.live.web.LiveServer: the Live page's routes and sessions
    api: object | None = None  # the REST API (svc_core.api.create_api), mounted at /api/v1 by launch_kwargs
    job_setup: object | None = None  # svc_core.api.setup.JobsSetup: the API's job service and its workers

    def close(self) -> None:
        """Stop the API's job workers, remove this run's temporaries (results, Gradio's files) and let another
        server use the work folder. Call after `demo.close()`; `launch` does on exit. Finished jobs' results stay
        (they are in the job store, not in the folders cleaned here)."""
        if self.job_setup is not None:
            self.job_setup.stop()
            self.job_setup = None
        clean_at_exit(self.work_dir)
        if self.lock is not None:
            self.lock.release()
            self.lock = None


def find_examples(folder: Path) -> list[Example]:
    """The example chips: clips listed in the folder's examples.json (title, suggested transpose), then the rest."""
    return load_examples(folder, AUDIO_SUFFIXES, MAX_EXAMPLES)


def build_app(settings: AppSettings) -> tuple[gr.Blocks, AppState]:
    """The Blocks app and its server-wide state; call `demo.launch(**launch_kwargs(settings, state))`."""
    settings = settings.resolve()
    work_dir = settings.work_dir or default_work_dir()  # stable: uploads survive restarts (workdir.py)
    lock = WorkDirLock(work_dir).acquire()  # WorkDirInUseError names the folder and --work-dir
    try:
        clean_at_start(work_dir)
        library = ModelLibrary(settings.models_dir, work_dir / UPLOADS, settings.upload_budget,
                               shipped=settings.shipped_voices, show_all_uploads=settings.uploads_shown_to_all)
    except BaseException:
        lock.release()
        raise
    cache = VoiceCache(settings.max_cached_voices, settings.device, work_dir / ONNX_EXPORTS, settings.threads)
    jobs = JobContext(library, cache, work_dir / RESULTS, settings.max_file_size,
                      calibration_dir=settings.examples_dir, limits=settings.job_limits())
    state = AppState(settings, library, cache, jobs, work_dir, tunnel=supervisor_for_app(settings), lock=lock)
    state.live = LiveServer(library, work_dir, settings.device, settings.threads, settings.max_live_sessions,
                            settings.max_live_minutes * 60.0)
    try:  # the REST API (/api/v1) and its jobs: embedded workers, or Dramatiq workers with --jobs redis://...
        state.job_setup = build_jobs(settings, jobs, work_dir)
        state.api = build_api(settings, library, state.job_setup, work_dir, gradio_login_check)
    except BaseException:
        state.close()
        raise
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 6 * 3600)) as demo:
        gr.Markdown(f"## svc-studio · singing voice conversion <small>v{__version__}</small>\n"
                    "Pick a voice, upload or record a clip (or click an example), press **Convert**, listen, "
                    "download.", elem_id="app-header")
        build_app_panel(settings, state.tunnel)  # tunnel state + public URL, HTTPS note for the microphone
        with gr.Tabs():
            with gr.Tab("Convert", id="convert"):
                background = JobsTabContext(state.job_setup.service, work_dir / JOB_DOWNLOADS)
                picker = build_convert_tab(ConvertTabContext(library, jobs, find_examples(settings.examples_dir),
                                                             jobs.limits.handler_limit,  # jobs wait in jobs.slots
                                                             background, state.job_setup.share_upload))
            with gr.Tab("Cover", id="cover") as cover_tab:  # covers share the conversion slots and limits
                build_cover_tab(CoverTabContext(library, CoverContext(jobs, settings.separation_dir),
                                                jobs.limits.handler_limit, cover_tab, picker.model, picker.owner,
                                                background))
            with gr.Tab("Live", id="live"):
                build_live_tab(LiveTabContext(settings.max_live_sessions, settings.max_live_minutes))
            with gr.Tab("Latent map", id="latent"):
                build_latent_tab(LatentTabContext(library, cache, work_dir / LATENT))
            with gr.Tab("Jobs", id="jobs"):
                build_jobs_tab(background)
            with gr.Tab("About / Status", id="status"):
                build_status_tab()
    demo.queue(max_size=settings.queue_size, default_concurrency_limit=settings.concurrency)
    return demo, state


def launch_kwargs(settings: AppSettings, state: AppState) -> dict:
    """Keyword arguments for `demo.launch` (offline, bounded, no tracebacks in the page)."""
    allowed = [str(settings.examples_dir), str(state.work_dir), *(str(p) for p in settings.extra_allowed_paths)]
    return dict(
        server_name=settings.host, server_port=settings.port, auth=list(settings.auth) or None,
        auth_message="svc-studio: log in with the user name and password you were given.",
        root_path=settings.root_path, max_file_size=settings.max_file_size, allowed_paths=allowed,
        # quiet: Gradio's banner says "set `share=True`" for a public link, which is not ours (--tunnel is);
        # serving_line() is printed instead
        share=False, show_error=False, quiet=True, ssr_mode=False, enable_monitoring=False,
        mcp_server=False, run_history=False, footer_links=["api", "settings"], theme=theme(), css=CSS,
        inbrowser=False,  # Gradio 6: App(**app_kwargs); the Live page's routes and the REST API at /api/v1
        app_kwargs={"routes": [*live_routes(state.live), *([api_mount(state.api)] if state.api is not None else [])]},
    )


def serving_line(settings: AppSettings) -> str:
    """The one start-up line: where the page is and how a public link is made (our tunnel, not Gradio's share)."""
    if settings.tunnel:
        public = f"public link: the {settings.tunnel} tunnel, logged when it answers"
    else:
        public = "public link: see --tunnel"
    return f"Running on {settings.local_url.rstrip('/')} ({public})"


def launch(settings: AppSettings, block: bool = True) -> tuple[gr.Blocks, AppState]:
    """Build and serve; with `block`, until Ctrl+C or SIGTERM, then clean up (see AppState.close)."""
    demo, state = build_app(settings)
    try:
        if state.tunnel is not None:
            state.tunnel.start()  # waits until the app answers locally, then opens the tunnel
        demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
        print(serving_line(settings), flush=True)
        if block:
            demo.block_thread()
    except BaseException:
        block = True  # nothing is served: clean up below
        raise
    finally:
        if block:
            if state.tunnel is not None:
                state.tunnel.stop()
            demo.close(verbose=False)
            state.close()
    return demo, state


def _stop_on_sigterm() -> None:
    """SIGTERM (docker stop, systemd, kill) ends the server like Ctrl+C, so the clean-up runs; Python's default
    would exit at once and leave the temporaries."""
    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def _use_work_dir(settings: AppSettings) -> AppSettings:
    """`python app.py` only (one server per process): the work folder defaults to the per-user cache, Gradio's
    temporary files go inside it (GRADIO_TEMP_DIR, so they are ours to remove), and the /tmp/svc-studio-* folders
    that earlier versions left behind are removed."""
    from dataclasses import replace

    settings = replace(settings, work_dir=settings.work_dir or default_work_dir())
    if "GRADIO_TEMP_DIR" not in os.environ:  # one the user set is theirs: used, never emptied
        os.environ["GRADIO_TEMP_DIR"] = str(settings.work_dir / GRADIO_TEMP)
        # Gradio copied the variable into these module constants at import (before we knew the folder); the app
        # creates a folder under it at launch, which would be left in /tmp/gradio.
        import gradio.route_utils
        import gradio.routes

        gradio.routes.DEFAULT_TEMP_DIR = gradio.route_utils.DEFAULT_TEMP_DIR = os.environ["GRADIO_TEMP_DIR"]
    for folder in legacy_temp_dirs():
        log.info("removing %s (left by an earlier svc-studio version)", folder)
        shutil.rmtree(folder, ignore_errors=True)
    return settings


def main(argv: Sequence[str] | None = None) -> int:
    """`python app.py ...`: parse the options, serve until Ctrl+C."""
    try:
        settings = parse_args(argv)
    except SettingsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if settings.quiet else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio polls its own server at start-up
    if settings.host not in ("127.0.0.1", "localhost", "::1") and not settings.auth:
        print(f"warning: listening on {settings.host} without --auth: anyone who can reach this machine can use "
              "the page.", file=sys.stderr)
    _stop_on_sigterm()
    try:
        launch(_use_work_dir(settings))
    except (SettingsError, SvcError) as err:  # --tunnel settings from the environment, work folder in use
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # port in use, cannot bind
        print(f"error: cannot serve on {settings.host}:{settings.port}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
