"""The Convert tab, laid out for a laptop screen: voice, clip, examples, transpose and Convert (with its progress bar
and Stop) in the left column's first screen, the result beside them, every other knob in "More settings".

Sections: `settings_section` (More settings, which of them a voice uses), `upload_section` (your own voice),
`result_view` (the result column), this module (the first screen and the events). The convert button's event is
the public API endpoint `/convert` (see `CONVERT_API_DOC`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..errors import SvcError  # noqa: E402
from ..options import ConvertOptions  # noqa: E402
from ..precision import available_precisions  # noqa: E402
from . import backends, views  # noqa: E402
from .jobs import ConvertRequest, JobContext, start_job  # noqa: E402
from .jobs_tab import submit_background  # noqa: E402
from .models import WHERE_TO_GET_MODELS, ModelLibrary  # noqa: E402
from .result_view import build_result_view, render  # noqa: E402
from .diffusion_section import MODEL_DEFAULT, SPEEDUP_DEFAULT, engine_values, enhancer_updates  # noqa: E402
from .rvc_section import rvc_values  # noqa: E402
from .settings_section import (build_more_settings, control_updates, controls_for, f0_choices,  # noqa: E402,F401
                               speaker_labels)
from .upload_section import build_upload_section, wire_upload  # noqa: E402

API_NAME = "convert"
CONVERT_API_DOC = """Convert a clip with a so-vits-svc or RVC voice. Inputs: audio (file), model (voice folder name),
speaker, transpose (semitones), f0_predictor (auto, pm, dio, harvest, crepe, crepe-tiny, fcpe, rmvpe), auto_f0,
cluster_ratio (RVC: index_rate), noise_scale, slice_db, pad_seconds, clip_seconds, crossfade_seconds, loudness_mix
(RVC: rms_mix_rate), backend (torch or onnx; optional, default torch), vocoder_precision and encoder_precision
(optional, default fp32); for a voice with a so-vits-svc 4.1 diffusion model (all optional): shallow_diffusion
(false), only_diffusion (false; a diffusion-only voice always is), k_step (100; 1 to the model's k_step_max),
diffusion_method ("default" = the model's own, or dpm-solver++, dpm-solver, unipc, pndm, ddim, ddpm),
diffusion_speedup (0 = the model's own), second_encoding (false), enhance (false; the NSF-HiFiGAN enhancer, ignored
while diffusing), enhancer_adaptive_key (0 semitones); for an RVC voice (all optional): protect (0.33; 0 to 0.5,
0.5 = off), filter_radius (3; 0 to 7, harvest only), resample_sr (0 = the model's rate, or 16000 to 96000 Hz).
Options a voice does not use must stay at their defaults (the error names them); an RVC voice ignores noise_scale,
auto_f0, slicing and diffusion, and an RVC model without pitch also transpose and f0_predictor. Send cluster_ratio
(RVC's index_rate, 0.75 in RVC) and loudness_mix (RVC's rms_mix_rate, 0.25 in RVC) for an RVC voice: their
endpoint defaults are so-vits' (0 and 1). Outputs: converted audio (wav at the model rate, or resample_sr), log
text, timing table, f0 plot data, timing summary, progress html."""


@dataclass
class ConvertTabContext:
    """What the tab needs from the server."""

    library: ModelLibrary
    jobs: JobContext
    examples: list[views.Example]
    concurrency: int
    background: Any = None  # jobs_tab.JobsTabContext: "Run in background" sends the request to the job service
    share_upload: Any = None  # callable(entry): an uploaded voice made known to remote job workers (broker mode)


# --------------------------------------------------------------------------- reading a voice (config only)
def models_notice(library: ModelLibrary) -> str:
    """What to tell people about the voices: none found (and how to get one), or folders that were skipped."""
    scan = library.scan
    parts = []
    if not scan.entries:
        parts.append(
            f"**No voice model found in `{library.models_dir}`.** To convert, put a so-vits-svc 4.x voice in "
            f"`{library.models_dir}/<name>/` (`G_*.pth` + `config.json`, optionally `kmeans_10000.pt` or "
            "`feature_and_index.pkl`, and a 4.1 diffusion model as `diffusion/model_*.pt` + `diffusion/config.yaml`), "
            "or an RVC v1/v2 voice (`<name>.pth`, optionally its `added_*.index`), "
            "and press **Rescan models folder**, or upload its files under **Upload a voice** "
            "below. The content encoder it was trained with (usually ContentVec's "
            "`checkpoint_best_legacy_500.pt`) goes in `./pretrain/`; the About/Status tab shows what is missing. "
            + WHERE_TO_GET_MODELS)
    if scan.problems:
        parts.append("Skipped folders: " + "; ".join(f"`{p}`" for p in scan.problems))
    return "\n\n".join(parts)


def speaker_update(library: ModelLibrary, key: str | None) -> dict:
    try:
        entry = library.get(key or "")
    except SvcError:
        return gr.update(choices=[], value=None)
    speakers = list(entry.speakers)
    return gr.update(choices=views.speaker_choices(speakers, speaker_labels(entry)),
                     value=speakers[0] if speakers else None)


def wire_stop(stop: gr.Button, event: Any, log: gr.Textbox, progress_html: gr.HTML) -> None:
    """The Stop button of a tab's job: shown while `event` (the job's click) runs, hidden when it ends or fails
    (Gradio 6.31 skips .then after a gr.Error); a press cancels the event (the job's stream closes, which stops its
    worker), marks the progress bar stopped and adds a line to `log`."""
    for after in (event.then, event.failure):
        after(lambda: gr.update(visible=False), None, stop, queue=False, api_visibility="private",
              show_progress="hidden")

    def on_stop(text: str):
        stamp = (text + "\n" if text else "") + "stopped: you pressed Stop"
        return views.stopped_progress(), stamp, gr.update(visible=False)

    stop.click(on_stop, log, [progress_html, log, stop], cancels=[event], queue=False, api_visibility="private",
               show_progress="hidden")


@dataclass
class VoicePicker:
    """What other tabs share with the Convert tab: its voice menu and the browser's upload token."""

    model: gr.Dropdown
    owner: gr.BrowserState


# --------------------------------------------------------------------------- the tab
def build_convert_tab(ctx: ConvertTabContext) -> VoicePicker:
    """Widgets and events of the Convert tab (call inside an open gr.Tab) -> its voice picker, for other tabs."""
    library = ctx.library
    first = library.folder_entries()[0] if library.folder_entries() else None
    torch_precisions = available_precisions(ctx.jobs.cache.device)
    first_controls = controls_for(library, first.key if first else None, backends.TORCH, torch_precisions)
    # Which uploads this browser sees: a token in its localStorage owns them (also after a restart; models.py).
    owner = gr.BrowserState("", **library.browser_state_keys())
    notice_text = models_notice(library)
    notice = gr.Markdown(notice_text, visible=bool(notice_text), elem_id="models-notice")
    with gr.Row(equal_height=False, elem_id="convert-row"):
        with gr.Column(scale=6, elem_id="input-column"):
            with gr.Row():
                model = gr.Dropdown(library.choices(), value=first.key if first else None, label="Voice",
                                    allow_custom_value=True, scale=3, elem_id="model-picker")
                first_speakers = speaker_update(library, first.key if first else None)
                speaker = gr.Dropdown(first_speakers["choices"], value=first_speakers["value"], label="Speaker",
                                      allow_custom_value=True, scale=2, elem_id="speaker-picker")
            voice_note = gr.Markdown(first_controls.note, elem_id="voice-note", elem_classes=["svc-note"])
            source = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Your clip (upload or record)",
                              elem_id="input-audio")
            chips = _example_chips(ctx.examples)
            with gr.Row(equal_height=True):
                transpose = gr.Slider(-24, 24, value=0, step=1, label="Transpose (semitones)", scale=3,
                                      info="+12 = an octave up, -12 = an octave down",
                                      visible=first_controls.shows("transpose"), elem_id="transpose")
                choices, f0_note = f0_choices()
                f0 = gr.Dropdown(choices, value="auto", label="Pitch tracker", allow_custom_value=True, scale=2,
                                 visible=first_controls.shows("f0_predictor"), elem_id="f0-picker")
            with gr.Row():
                convert = gr.Button("Convert", variant="primary", scale=3, elem_id="convert-button")
                stop = gr.Button("Stop", variant="stop", scale=1, visible=False, elem_id="stop-button")
                background = gr.Button("Run in background", scale=1, visible=ctx.background is not None,
                                       elem_id="background-button")
            background_note = gr.Markdown(elem_id="background-note", elem_classes=["svc-note"])
            progress_html = gr.HTML(views.idle_progress(), elem_id="job-progress")
            more = build_more_settings(first_controls, torch_precisions, f0_note)
            upload = build_upload_section(open_=first is None)
        with gr.Column(scale=5, elem_id="result-column"):
            result = build_result_view()

    # ------------------------------------------------------------------ voice and engine -> controls
    control_outputs = [*more.per_voice(), transpose, f0, voice_note]

    def on_controls(key: str | None, engine_name: str | None, f0_name: str | None):
        return control_updates(controls_for(library, key, engine_name, torch_precisions), f0_value=f0_name)

    model.change(lambda key: speaker_update(library, key), model, speaker, queue=False, api_visibility="private")
    # on page load too: the components start with the widest values the API accepts (diffusion_section.py)
    root = gr.context.Context.root_block
    voice_picked = [model.change] + ([root.load] if root is not None else [])
    gr.on(voice_picked, on_controls, [model, more.engine, f0], control_outputs, queue=False,
          api_visibility="private")
    more.engine.input(lambda key, engine_name: control_updates(
        controls_for(library, key, engine_name, torch_precisions), voice_changed=False), [model, more.engine],
        control_outputs, queue=False, api_visibility="private")

    diffusion = more.diffusion

    def on_diffusing(key: str | None, engine_name: str | None, shallow: bool, only: bool):
        controls = controls_for(library, key, engine_name, torch_precisions)
        return enhancer_updates(controls.enhancer, diffusing=bool(shallow or only))

    gr.on([diffusion.shallow.input, diffusion.only.input], on_diffusing,
          [model, more.engine, diffusion.shallow, diffusion.only],
          [diffusion.enhancer, diffusion.enhance, diffusion.adaptive_key], queue=False, api_visibility="private")

    def on_rescan(token: str, current: str | None):
        library.rescan()
        choices = library.choices(token)
        keys = [k for _, k in choices]
        value = current if current in keys else (keys[0] if keys else None)
        text = models_notice(library)
        return gr.update(choices=choices, value=value), gr.update(value=text, visible=bool(text))

    upload.rescan.click(on_rescan, [owner, model], [model, notice], api_visibility="private")
    wire_upload(upload, library, model, owner, ctx.share_upload)

    def show_browser_uploads(token: str):
        return gr.update(choices=library.choices(token))

    # on page load (and when the token changes): the voices this browser uploaded, also before a restart
    gr.on(None, show_browser_uploads, [owner], [model], queue=False, api_visibility="private")

    for button, example in chips:
        button.click(lambda key, ex=example: _apply_example(library, key, ex), model, [source, transpose, speaker],
                     queue=False, api_visibility="private")

    # ------------------------------------------------------------------ convert and stop
    def make_request(audio: str | None, model: str, speaker: str, transpose: float, f0_predictor: str,
                     auto_f0: bool, cluster_ratio: float, noise_scale: float, slice_db: float, pad_seconds: float,
                     clip_seconds: float, crossfade_seconds: float, loudness_mix: float, backend: str = "torch",
                     vocoder_precision: str = "fp32", encoder_precision: str = "fp32",
                     shallow_diffusion: bool = False, only_diffusion: bool = False, k_step: float = 100,
                     diffusion_method: str = MODEL_DEFAULT, diffusion_speedup: float = SPEEDUP_DEFAULT,
                     second_encoding: bool = False, enhance: bool = False, enhancer_adaptive_key: float = 0.0,
                     protect: float = ConvertOptions.protect, filter_radius: float = ConvertOptions.filter_radius,
                     resample_sr: float = ConvertOptions.resample_sr) -> ConvertRequest:
        """The tab's values as a ConvertRequest (gr.Error for a bad RVC value)."""
        try:
            rvc = rvc_values(protect, filter_radius, resample_sr)
        except SvcError as err:
            raise gr.Error(str(err), print_exception=False) from None
        return ConvertRequest(audio, model or "", str(speaker if speaker is not None else ""),
                              float(transpose or 0), f0_predictor or "auto", bool(auto_f0),
                              float(cluster_ratio or 0), float(noise_scale), float(slice_db),
                              float(pad_seconds), float(clip_seconds or 0), float(crossfade_seconds or 0),
                              float(loudness_mix), backend or backends.TORCH, vocoder_precision or "fp32",
                              encoder_precision or "fp32",
                              **engine_values(shallow_diffusion, only_diffusion, k_step, diffusion_method,
                                              diffusion_speedup, second_encoding, enhance,
                                              enhancer_adaptive_key),
                              **rvc)

    def run_convert(audio: str | None, model: str, speaker: str, transpose: float, f0_predictor: str,
                    auto_f0: bool, cluster_ratio: float, noise_scale: float, slice_db: float, pad_seconds: float,
                    clip_seconds: float, crossfade_seconds: float, loudness_mix: float, backend: str = "torch",
                    vocoder_precision: str = "fp32", encoder_precision: str = "fp32",
                    shallow_diffusion: bool = False, only_diffusion: bool = False, k_step: float = 100,
                    diffusion_method: str = MODEL_DEFAULT, diffusion_speedup: float = SPEEDUP_DEFAULT,
                    second_encoding: bool = False, enhance: bool = False, enhancer_adaptive_key: float = 0.0,
                    protect: float = ConvertOptions.protect, filter_radius: float = ConvertOptions.filter_radius,
                    resample_sr: float = ConvertOptions.resample_sr,
                    request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        """Convert a clip with a so-vits-svc or RVC voice; streams the log and progress, ends with the audio."""
        job_request = make_request(audio, model, speaker, transpose, f0_predictor, auto_f0, cluster_ratio,
                                   noise_scale, slice_db, pad_seconds, clip_seconds, crossfade_seconds, loudness_mix,
                                   backend, vocoder_precision, encoder_precision, shallow_diffusion, only_diffusion,
                                   k_step, diffusion_method, diffusion_speedup, second_encoding, enhance,
                                   enhancer_adaptive_key, protect, filter_radius, resample_sr)
        first_yield = True
        for update in start_job(job_request, ctx.jobs, request).run():  # fair share: request's client
            yield render(update, clear=first_yield)
            first_yield = False
            if update.error is not None:
                raise gr.Error(update.error, print_exception=False)

    inputs = [source, model, speaker, transpose, f0, *more.convert_inputs()]
    # One progress display: ours (#job-progress). Gradio's overlay is hidden on every output.
    convert.click(lambda: (views.queued_progress(), gr.update(visible=True)), None, [progress_html, stop],
                  queue=False, api_visibility="private", show_progress="hidden")
    convert_event = convert.click(run_convert, inputs, result.outputs(progress_html), api_name=API_NAME,
                                  api_description=CONVERT_API_DOC, show_progress="hidden",
                                  concurrency_limit=ctx.concurrency, concurrency_id="convert")
    wire_stop(stop, convert_event, result.log, progress_html)
    if ctx.background is not None:
        def run_background(*values: Any, request: gr.Request | None = None) -> str:
            return submit_background(ctx.background, make_request(*values), request)

        background.click(run_background, inputs, background_note, api_visibility="private", concurrency_limit=None)
    return VoicePicker(model, owner)


# --------------------------------------------------------------------------- helpers of the tab
def _example_chips(examples: list[views.Example]) -> list[tuple[gr.Button, views.Example]]:
    """One small button per example clip, titled from examples.json."""
    if not examples:
        gr.Markdown("No example clips found; upload or record one.", elem_classes=["svc-note"])
        return []
    chips = []
    with gr.Row(elem_id="example-chips", elem_classes=["svc-chips"]):
        gr.Markdown("Examples:", elem_classes=["svc-chips-label"])
        for example in examples:
            chips.append((gr.Button(views.example_label(example), size="sm", variant="secondary", min_width=60,
                                    elem_classes=["svc-chip"]), example))
    return chips


def _apply_example(library: ModelLibrary, key: str | None, example: views.Example) -> tuple[Any, ...]:
    """Clip, its suggested transpose, and its speaker when the chosen voice has one of that name."""
    speaker = gr.skip()
    if example.speaker:
        try:
            if example.speaker in library.get(key or "").speakers:
                speaker = example.speaker
        except SvcError:
            pass
    return str(example.path), example.transpose, speaker
