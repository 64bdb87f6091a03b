"""The "Upload a voice" accordion: upload a voice's files, load them, rescan the models folder.

A failed upload leaves its message in the page (`#upload-status`, next to the files), not only in a toast that
fades, and no red "Error" pills: the handler returns the message (and raises a gr.Warning toast for attention)
instead of raising gr.Error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..errors import SvcError  # noqa: E402
from .models import UPLOAD_SUFFIXES, ModelLibrary  # noqa: E402
from .upload_store import new_owner_token  # noqa: E402

LISTED_SPEAKERS = 8  # the status line names this many speakers (an RVC model has 109 speaker rows)
UPLOAD_TOAST_SECONDS = 8  # the toast draws the eye; the status line under the files keeps the message
UPLOAD_HELP = ("A so-vits-svc 4.x voice: its `G_*.pth` (or `<name>_SoVits.onnx`) and `config.json`, optionally the "
               "`kmeans_*.pt` / `.index` file and its 4.1 diffusion model (`model_*.pt` + its `config.yaml`, from "
               "logs/44k/diffusion/; a diffusion model may also come alone). Or an RVC v1/v2 voice (RVC WebUI or "
               "Applio): its `<name>.pth`, optionally with its `added_*.index`. Files are checked without running "
               "any code stored in them.")


@dataclass
class UploadSection:
    files: gr.File
    load: gr.Button
    rescan: gr.Button
    status: gr.Markdown


def upload_failed(message: str) -> str:
    """The persistent status line for a failed upload (and a toast with the same words)."""
    gr.Warning(f"Could not load this voice: {message}", duration=UPLOAD_TOAST_SECONDS)
    return f'<span class="svc-error">Could not load this voice: {message}</span>'


def upload_loaded(label: str, speakers: list[str], diffusion: str = "") -> str:
    """The status line of a loaded upload; `diffusion` says what its diffusion model adds ("" when none)."""
    shown = ", ".join(speakers[:LISTED_SPEAKERS]) + (f" and {len(speakers) - LISTED_SPEAKERS} more"
                                                     if len(speakers) > LISTED_SPEAKERS else "")
    return f"Loaded **{label}**: speakers {shown}{diffusion}. It is selected above."


def build_upload_section(open_: bool) -> UploadSection:
    """Widgets of the accordion (call inside a Column); `open_` when there is no voice to pick yet."""
    with gr.Accordion("Upload a voice (your own so-vits-svc or RVC model)", open=open_, elem_id="upload-accordion"):
        gr.Markdown(UPLOAD_HELP, elem_classes=["svc-note"])
        files = gr.File(label="Voice files", file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                        elem_id="model-upload", height=110)
        with gr.Row():
            load = gr.Button("Load uploaded voice", size="sm", elem_id="load-upload")
            rescan = gr.Button("Rescan models folder", size="sm", elem_id="rescan-models")
        status = gr.Markdown("", elem_id="upload-status")
    return UploadSection(files, load, rescan, status)


def wire_upload(section: UploadSection, library: ModelLibrary, model: gr.Dropdown, owner: gr.BrowserState,
                share: Callable[[Any], None] | None = None) -> None:
    """Load: check and register the files, select the new voice (model.change then sets speakers and controls);
    `share(entry)` then makes it known to job workers on other machines (api.setup.JobsSetup.share_upload).

    Handler: on_upload(files, token) -> (model update, status markdown, token); `owner` is the browser's token
    (a gr.BrowserState) that owns its uploads, made on the first upload.
    """

    def on_upload(files: list[str] | None, token: str):
        if not files:
            return gr.skip(), upload_failed("choose the model files first: a G_*.pth and its config.json, or an RVC "
                                            "model <name>.pth."), token
        token = token or new_owner_token()
        try:
            entry = library.add_upload(files, owner=token)
            if share is not None:
                share(entry)
        except SvcError as err:
            return gr.skip(), upload_failed(str(err)), token
        return (gr.update(choices=library.choices(token), value=entry.key),
                upload_loaded(entry.label, list(entry.speakers), _diffusion_words(entry)), token)

    section.load.click(on_upload, [section.files, owner], [model, section.status, owner],
                       api_visibility="private", concurrency_limit=1, concurrency_id="model-upload",
                       show_progress="minimal")


def _diffusion_words(entry) -> str:
    if entry.rvc is not None:
        return f"; an {entry.rvc.label} voice" + (" with its index" if entry.cluster_path else "")
    if entry.diffusion_only:
        return "; a diffusion model alone (it renders the voice from noise)"
    if entry.diffusion is not None:
        return "; with a diffusion model (see Diffusion under More settings)"
    return ""
