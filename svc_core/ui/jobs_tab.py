"""The "Jobs" tab: the page's view of the job service (svc_core.jobs), the same jobs the REST API runs.

    with gr.Tab("Jobs", id="jobs"):
        build_jobs_tab(JobsTabContext(service, work_dir / "job-downloads"))

Jobs are kept by the server, not by the page: a conversion or cover sent with **Run in background** on the Convert
or Cover tab (or through the REST API with the same login) keeps running when the page is closed or the connection drops, and its
result is here when the page comes back. The page's owner is the login name with `--auth` ("page:<user>", as the
REST API names a logged-in caller) and "local" without it (what the API calls an open caller on this machine).
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from ..errors import SvcError
from ..jobs.model import FINAL, JobRecord
from ..jobs.requests import COVER_FIELDS, VOICE_FIELDS_OF_COVER
from .cover_job import CoverJobRequest
from .job_io import ConvertRequest
from .views import progress_html

PAGE_OWNER_PREFIX, LOCAL_OWNER = "page:", "local"  # as svc_core.api.auth names callers
LIST_LIMIT = 50  # jobs shown in the table (newest first)
REFRESH_SECONDS = 2.0  # the table and the selected job refresh this often while the tab is open
COVER_MIX_SUFFIX = "_mix"  # a cover's mixed song is "<song>_mix.<format>" (svc_core.cover export)
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus")
COLUMNS = ["job", "kind", "status", "stage", "progress", "voice", "submitted"]


@dataclass
class JobsTabContext:
    """The job service (svc_core.jobs.service.JobService) and where results are copied for the browser when the
    blob store is not a local folder (S3)."""

    service: Any
    downloads_dir: Path


def page_owner(request: gr.Request | None) -> str:
    """The job owner of a page visitor: "page:<login>" with --auth, else "local"."""
    user = getattr(request, "username", None) if request is not None else None
    return f"{PAGE_OWNER_PREFIX}{user}" if user else LOCAL_OWNER


def request_params(req: ConvertRequest) -> dict[str, Any]:
    """A Convert tab request as job params (svc_core.jobs.requests.check_params checks them again)."""
    params = asdict(req)
    params.pop("audio_path")
    return params


def cover_params(req: CoverJobRequest) -> dict[str, Any]:
    """A Cover tab request as job params: the cover's fields, and its voice's options flat (transpose is the
    cover's own, used with key "manual")."""
    params = {name: getattr(req, name) for name in COVER_FIELDS}
    params["formats"] = list(req.formats)
    voice = request_params(req.voice)
    params.update({name: voice[name] for name in VOICE_FIELDS_OF_COVER})
    return params


def submit_background(ctx: JobsTabContext, req: ConvertRequest | CoverJobRequest, request: gr.Request | None) -> str:
    """Send the Convert (or Cover) tab's request to the job service -> a line for the page (the job's id and where
    to follow it). SvcError (a bad option, a missing file, the queue full) -> gr.Error with its message; nothing is
    queued."""
    cover = isinstance(req, CoverJobRequest)
    path = req.song_path if cover else req.audio_path
    if not path:
        raise gr.Error("Upload a song first." if cover else "Upload or record a clip first.", print_exception=False)
    try:
        record = ctx.service.submit("cover" if cover else "convert", page_owner(request),
                                    cover_params(req) if cover else request_params(req),
                                    {"song" if cover else "audio": Path(path)})
    except SvcError as err:
        raise gr.Error(str(err), print_exception=False) from None
    return (f"Job `{record.id[:8]}` queued. Follow it in the **Jobs** tab: it keeps running if you close the page, "
            "and its result stays there.")


def job_table(records: list[JobRecord]) -> pd.DataFrame:
    """One row per job, newest first."""
    rows = [[r.id[:8], r.kind, r.status, r.stage, f"{100 * r.progress:.0f}%", r.params.get("model", ""),
             time.strftime("%H:%M:%S", time.localtime(r.created_at))] for r in records]
    return pd.DataFrame(rows, columns=COLUMNS)


def job_details(record: JobRecord) -> str:
    """Markdown: status, timings, error, the newest log lines."""
    lines = [f"**{record.kind}** `{record.id}` · **{record.status}** · attempts {record.attempts}"]
    if record.error:
        lines.append(f"<span class='svc-error'>{record.error['message']}</span> (`{record.error['code']}`)")
    if record.timings:
        lines.append("Timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in record.timings.items()))
    if record.log:
        lines.append("```\n" + "\n".join(record.log[-12:]) + "\n```")
    return "\n\n".join(lines)


def job_progress(record: JobRecord) -> str:
    """The progress bar of the Convert tab, for a job record."""
    state = {"done": "done", "failed": "failed", "cancelled": "stopped"}.get(record.status, "running")
    end = record.finished_at if record.finished_at else time.time()
    elapsed = end - (record.started_at or record.created_at)
    return progress_html(record.progress if record.status != "done" else 1.0, record.stage, elapsed,
                         None if record.finished else record.eta_seconds, state)


class JobsView:
    """What the tab's handlers do, without Gradio components (testable on its own)."""

    def __init__(self, ctx: JobsTabContext) -> None:
        self.ctx = ctx

    def records(self, owner: str) -> list[JobRecord]:
        return self.ctx.service.list(owner, LIST_LIMIT)

    def find(self, short_id: str | None, owner: str) -> JobRecord | None:
        """The owner's job whose id starts with `short_id` (the table shows 8 digits)."""
        if not short_id:
            return None
        return next((r for r in self.records(owner) if r.id.startswith(short_id.strip())), None)

    def result_paths(self, record: JobRecord, owner: str) -> list[Path]:
        """Local paths of a finished job's result files (copied out of the blob store when it is not a folder)."""
        paths = []
        for item in record.results:
            result, blobs = self.ctx.service.result(record.id, item.name, owner)
            local = blobs.local_path(result.key)
            if local is None:
                local = self.ctx.downloads_dir / record.id / result.name
                if not local.exists():
                    local.parent.mkdir(parents=True, exist_ok=True)
                    with blobs.open(result.key) as src, open(local, "wb") as dst:
                        shutil.copyfileobj(src, dst)
            paths.append(local)
        return paths

    def show(self, short_id: str | None, owner: str) -> tuple[str, str, str | None, list[str] | None]:
        """(progress html, details markdown, audio path, result files) of the selected job."""
        record = self.find(short_id, owner)
        if record is None:
            return "", "Pick a job from the list.", None, None
        paths = self.result_paths(record, owner) if record.status == "done" else []
        playable = [p for p in paths if p.suffix.lower() in AUDIO_SUFFIXES]
        mix = [p for p in playable if p.stem.endswith(COVER_MIX_SUFFIX)]  # a cover: play the mix, not a stem
        audio = str((mix or playable)[0]) if playable else None
        return job_progress(record), job_details(record), audio, [str(p) for p in paths] or None

    def cancel(self, short_id: str | None, owner: str) -> str:
        record = self.find(short_id, owner)
        if record is None:
            return "Pick a job from the list."
        if record.status in FINAL:
            return f"Job `{record.id[:8]}` has already ended ({record.status})."
        self.ctx.service.cancel(record.id, owner)
        return f"Asked job `{record.id[:8]}` to stop."


def build_jobs_tab(ctx: JobsTabContext) -> None:
    """The tab's components and handlers (inside a gr.Tab)."""
    view = JobsView(ctx)
    gr.Markdown("Conversions and covers sent with **Run in background** on the Convert or Cover tab, or through the "
                "REST API "
                "(`/api/v1`, see docs/api.md) with the same login. They keep running on the server when this page "
                "is closed; results stay here.", elem_classes=["svc-note"])
    table = gr.Dataframe(value=pd.DataFrame(columns=COLUMNS), headers=COLUMNS, interactive=False,
                         label="Your jobs (newest first)", elem_id="jobs-table")
    with gr.Row():
        picked = gr.Dropdown(label="Job", choices=[], allow_custom_value=True, elem_id="jobs-pick", scale=3)
        refresh = gr.Button("Refresh", scale=1)
        stop = gr.Button("Cancel job", variant="stop", scale=1)
    progress = gr.HTML(elem_id="jobs-progress")
    details = gr.Markdown(elem_id="jobs-details")
    audio = gr.Audio(label="Result", type="filepath", interactive=False, elem_id="jobs-audio")
    files = gr.File(label="Result files", file_count="multiple", interactive=False, elem_id="jobs-files")
    timer = gr.Timer(REFRESH_SECONDS)
    shown = gr.State("")  # the job whose results the player shows (the timer leaves the player alone otherwise)

    def on_refresh(current: str | None, showing: str, request: gr.Request):
        owner = page_owner(request)
        records = view.records(owner)
        choices = [r.id[:8] for r in records]
        current = current if current in choices else (choices[0] if choices else None)
        bar, text, sound, paths = view.show(current, owner)
        ready = (current or "") + ("+" if paths else "")
        keep = ready == showing  # the same job, same results: do not reload the player mid-playback
        return (job_table(records), gr.update(choices=choices, value=current), bar, text,
                gr.update() if keep else sound, gr.update() if keep else paths, ready)

    def on_pick(current: str | None, request: gr.Request):
        bar, text, sound, paths = view.show(current, page_owner(request))
        return bar, text, sound, paths, (current or "") + ("+" if paths else "")

    def on_cancel(current: str | None, request: gr.Request):
        return view.cancel(current, page_owner(request))

    outputs = [table, picked, progress, details, audio, files, shown]
    for trigger in (refresh.click, timer.tick):
        trigger(on_refresh, [picked, shown], outputs, queue=False, api_visibility="private", show_progress="hidden")
    picked.input(on_pick, picked, [progress, details, audio, files, shown], queue=False, api_visibility="private")
    stop.click(on_cancel, picked, details, queue=False, api_visibility="private")
