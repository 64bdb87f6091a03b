"""The Convert tab: widgets wired to the engine through `models`, `jobs`, `views` and `plots`.

The convert button's event is the public API endpoint `/convert` (see `CONVERT_API_DOC`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..errors import SvcError
from ..precision import ONNX_PRECISIONS, available_precisions
from . import backends, views
from .jobs import ConvertRequest, JobContext, JobUpdate, start_job
from .models import UPLOAD_SUFFIXES, WHERE_TO_GET_MODELS, ModelLibrary
from .plots import COLUMNS
from .upload_store import new_owner_token

API_NAME = "convert"
CONVERT_API_DOC = """Convert a clip with a so-vits-svc voice. Inputs: audio (file), model (voice folder name), speaker,
transpose (semitones), f0_predictor (auto, pm, dio, harvest, crepe, crepe-tiny, fcpe, rmvpe), auto_f0, cluster_ratio,
noise_scale, slice_db, pad_seconds, clip_seconds, crossfade_seconds, loudness_mix, backend (torch or onnx; optional,
default torch), vocoder_precision and encoder_precision (optional, default fp32). Outputs: converted audio (wav at the
model rate), log text, timing table, f0 plot data, timing summary, progress html."""


@dataclass
class ConvertTabContext:
    """What the tab needs from the server."""

    library: ModelLibrary
    jobs: JobContext
    examples: list[Path]
    concurrency: int


# --------------------------------------------------------------------------- pure helpers (no widgets)
def models_notice(library: ModelLibrary) -> str:
    """What to tell people about the voices: none found (and how to get one), or folders that were skipped."""
    scan = library.scan
    parts = []
    if not scan.entries:
        parts.append(
            f"**No voice model found in `{library.models_dir}`.** To convert, put a so-vits-svc 4.x voice in "
            f"`{library.models_dir}/<name>/` (`G_*.pth` + `config.json`, optionally `kmeans_10000.pt` or "
            "`feature_and_index.pkl`) and press **Rescan**, or upload its files under **Upload a voice** below. "
            "The content encoder it was trained with (usually ContentVec's `checkpoint_best_legacy_500.pt`) goes in "
            "`./pretrain/`; the About/Status tab shows what is missing. " + WHERE_TO_GET_MODELS)
    if scan.problems:
        parts.append("Skipped folders: " + "; ".join(f"`{p}`" for p in scan.problems))
    return "\n\n".join(parts)


def f0_choices() -> tuple[list[tuple[str, str]], str]:
    """Dropdown choices (only predictors usable here) and a note saying why the others are not offered."""
    from ..f0 import describe_predictor, predictor_status

    status = predictor_status()
    auto = "rmvpe" if status.get("rmvpe") is None else "fcpe"
    choices = [(f"auto (here: {auto})", "auto")]
    choices += [(f"{name}: {describe_predictor(name)}", name) for name, why in status.items() if why is None]
    missing = [f"**{name}** {why}" for name, why in status.items() if why is not None]
    note = ("Not available here: " + " · ".join(missing)) if missing else "Every f0 predictor is available."
    return choices, note


def speaker_update(library: ModelLibrary, key: str | None) -> dict:
    if not key:
        return gr.update(choices=[], value=None)
    try:
        speakers = list(library.get(key).speakers)
    except SvcError:
        return gr.update(choices=[], value=None)
    return gr.update(choices=speakers, value=speakers[0] if speakers else None)


# --------------------------------------------------------------------------- the tab
def build_convert_tab(ctx: ConvertTabContext) -> None:
    """Widgets and events of the Convert tab (call inside an open gr.Tab)."""
    library = ctx.library
    first = library.folder_entries()[0] if library.folder_entries() else None
    # Which uploads this browser sees: a token in its localStorage owns them (also after a restart; models.py).
    owner = gr.BrowserState("", **library.browser_state_keys())
    notice = gr.Markdown(models_notice(library), elem_id="models-notice")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            with gr.Row():
                model = gr.Dropdown(library.choices(), value=first.key if first else None, label="Voice model",
                                    allow_custom_value=True, scale=4, elem_id="model-picker")
                rescan = gr.Button("Rescan", size="sm", scale=1, min_width=80)
            speaker = gr.Dropdown(list(first.speakers) if first else [],
                                  value=first.speakers[0] if first and first.speakers else None,
                                  label="Speaker", allow_custom_value=True, elem_id="speaker-picker")
            with gr.Accordion("Upload a voice (G_*.pth or <name>_SoVits.onnx + config.json, optional kmeans/index "
                              "file)", open=first is None):
                model_files = gr.File(label="Model files", file_count="multiple", file_types=list(UPLOAD_SUFFIXES),
                                      elem_id="model-upload")
                load_upload = gr.Button("Load uploaded voice", size="sm")
                upload_status = gr.Markdown("")
            source = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Input clip (upload or record)",
                              elem_id="input-audio")
            if ctx.examples:
                gr.Examples([[str(p)] for p in ctx.examples], inputs=[source], label="Examples (click one)",
                            cache_examples=False, examples_per_page=12)
            else:
                gr.Markdown("No example clips found; upload or record one.")
            transpose = gr.Slider(-24, 24, value=0, step=1, label="Transpose (semitones)")
            choices, f0_note = f0_choices()
            f0 = gr.Dropdown(choices, value="auto", label="F0 predictor", allow_custom_value=True,
                             elem_id="f0-picker")
            gr.Markdown(f0_note, elem_classes=["svc-note"])
            auto_f0 = gr.Checkbox(False, label="Auto-f0: predict pitch with the model (speech only; ignores transpose)")
            cluster_ratio = gr.Slider(0, 1, value=0, step=0.05,
                                      label="Cluster / retrieval ratio (needs a kmeans or index file)")
            noise = gr.Slider(0, 1, value=0.4, step=0.01, label="Noise scale")
            with gr.Accordion("Slicing and mixing", open=False):
                slice_db = gr.Slider(-100, 0, value=-40, step=1, label="Slice threshold (dBFS)")
                pad = gr.Slider(0, 2, value=0.5, step=0.05, label="Padding (seconds)")
                clip = gr.Slider(0, 60, value=0, step=1, label="Force-split slices longer than (seconds, 0 = off)")
                crossfade = gr.Slider(0, 15, value=0, step=0.25, label="Crossfade between forced pieces (seconds)")
                loudness = gr.Slider(0, 1, value=1, step=0.05,
                                     label="Loudness mix (1 = the model's envelope, 0 = the input's)")
            backend = gr.Radio([(label, key) for key, label in backends.BACKEND_LABELS.items()], value=backends.TORCH,
                               label="Backend (the page shows which execution provider ran)", elem_id="backend-picker")
            choices = available_precisions(ctx.jobs.cache.device) + list(ONNX_PRECISIONS[1:])  # int8: ONNX backend
            precision = gr.Dropdown(choices, value="fp32",
                                    elem_id="precision-picker",
                                    label="Vocoder precision (torch: bf16/fp16, ~2x faster vocoder, within ~3e-3 of "
                                          "fp32 on a trained voice; ONNX: int8, 2.3-2.8x faster, calibrated once per "
                                          "voice, 41-42 dB SNR)")
            encoder_precision = gr.Dropdown(available_precisions(ctx.jobs.cache.device), value="fp32",
                                            elem_id="encoder-precision-picker",
                                            label="Encoder precision (a content encoder running in torch: bf16/fp16, "
                                                  "~2x faster encoder, features within ~2 % of fp32)")
            convert = gr.Button("Convert", variant="primary", elem_id="convert-button")
        with gr.Column(scale=6):
            progress_html = gr.HTML(views.idle_progress(), label="Progress", elem_id="job-progress")
            log_box = gr.Textbox(label="Log", lines=10, max_lines=10, interactive=False, autoscroll=True,
                                 elem_id="log-panel")
            output = gr.Audio(label="Converted", type="filepath", interactive=False, buttons=["download"],
                              elem_id="output-audio")
            timing_md = gr.Markdown("", label="Timing summary", elem_id="timing-summary")
            timing = gr.Dataframe(views.empty_timing(), label="Per-stage timing", interactive=False,
                                  elem_id="timing-table")
            plot = gr.LinePlot(None, x=COLUMNS[0], y=COLUMNS[1], color=COLUMNS[2],
                               label="F0 plot: source after transpose vs output", height=260, elem_id="f0-plot")

    # ------------------------------------------------------------------ events
    def on_rescan(token: str, current: str | None):
        library.rescan()
        choices = library.choices(token)
        keys = [k for _, k in choices]
        value = current if current in keys else (keys[0] if keys else None)
        return gr.update(choices=choices, value=value), models_notice(library), speaker_update(library, value)

    def on_upload(files: list[str] | None, token: str):
        if not files:
            raise gr.Error("Choose the model files first: a G_*.pth and its config.json.", print_exception=False)
        token = token or new_owner_token()
        try:
            entry = library.add_upload(files, owner=token)
        except SvcError as err:
            raise gr.Error(str(err), print_exception=False) from None
        note = f"Loaded **{entry.label}**: speakers {', '.join(entry.speakers)}."
        return (gr.update(choices=library.choices(token), value=entry.key), speaker_update(library, entry.key),
                note, token)

    rescan.click(on_rescan, [owner, model], [model, notice, speaker], api_visibility="private")
    model.change(lambda key: speaker_update(library, key), model, speaker, queue=False, api_visibility="private")
    load_upload.click(on_upload, [model_files, owner], [model, speaker, upload_status, owner],
                      api_visibility="private", concurrency_limit=1, concurrency_id="model-upload")

    def show_browser_uploads(token: str):
        return gr.update(choices=library.choices(token))

    # on page load (and when the token changes): the voices this browser uploaded, also before a restart
    gr.on(None, show_browser_uploads, [owner], [model], queue=False, api_visibility="private")

    def run_convert(audio: str | None, model: str, speaker: str, transpose: float, f0_predictor: str,
                    auto_f0: bool, cluster_ratio: float, noise_scale: float, slice_db: float, pad_seconds: float,
                    clip_seconds: float, crossfade_seconds: float, loudness_mix: float, backend: str = "torch",
                    vocoder_precision: str = "fp32", encoder_precision: str = "fp32",
                    progress: gr.Progress = gr.Progress(),
                    request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        """Convert a clip with a so-vits-svc voice; streams the log and progress, ends with the audio."""
        job_request = ConvertRequest(audio, model or "", str(speaker if speaker is not None else ""),
                                 float(transpose or 0), f0_predictor or "auto", bool(auto_f0),
                                 float(cluster_ratio or 0), float(noise_scale), float(slice_db), float(pad_seconds),
                                 float(clip_seconds or 0), float(crossfade_seconds or 0), float(loudness_mix),
                                 backend or backends.TORCH, vocoder_precision or "fp32",
                                 encoder_precision or "fp32")
        first_yield = True
        for update in start_job(job_request, ctx.jobs, request).run():  # fair share: request's client
            progress(update.fraction, desc=update.stage)
            yield _render(update, clear=first_yield)
            first_yield = False
            if update.error is not None:
                raise gr.Error(update.error, print_exception=False)

    convert.click(run_convert, [source, model, speaker, transpose, f0, auto_f0, cluster_ratio, noise, slice_db, pad,
                                clip, crossfade, loudness, backend, precision, encoder_precision],
                  [output, log_box, timing, plot, timing_md, progress_html],
                  api_name=API_NAME, api_description=CONVERT_API_DOC, show_progress="full",
                  show_progress_on=[output], concurrency_limit=ctx.concurrency, concurrency_id="convert")


def _render(update: JobUpdate, clear: bool) -> tuple[Any, ...]:
    """One JobUpdate -> values for (output, log, timing, plot, timing summary, progress)."""
    import torch

    if update.result is not None:
        r = update.result
        return (str(r.output_path), update.log, views.timing_frame(r.times, r.load_seconds), r.f0_plot,
                views.summary(r.times, r.f0_name, r.encoder, torch.get_num_threads(), r.backend),
                views.progress_html(1.0, "done", update.elapsed, None, state="done"))
    state = "failed" if update.error is not None else "running"
    bar = views.progress_html(update.fraction, update.stage, update.elapsed, update.eta, state=state)
    if clear:
        return None, update.log, views.empty_timing(), None, "", bar
    return gr.skip(), update.log, gr.skip(), gr.skip(), gr.skip(), bar
