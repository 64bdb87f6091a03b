"""The Cover tab: a song in, its vocal converted by a voice and put back over the accompaniment, stems out.

Left column: the song, the separator (each with its quality / speed; community model files found in the
separation models folder), the voice (the same voices as the Convert tab, uploads included) and its main options,
the key (auto with the suggestion shown, or a manual transpose), the mix (shift the accompaniment, reverb,
loudness target, gains) and the formats; Make cover / Stop and the per-stage progress bar with its ETA. Right
column: a player per stem and the downloads (cover_view.py). The job is cover_job.py (worker thread, cancel
watch, the conversion slots and time budget). The button's event is the public API endpoint `/cover`
(`COVER_API_DOC`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..options import ConvertOptions  # noqa: E402
from ..separation.registry import DEFAULT_SEPARATOR, models_dir  # noqa: E402
from . import backends  # noqa: E402
from .cover_choices import DEFAULT_FORMATS, STEM_FORMATS, SeparatorChoice  # noqa: E402
from ..cover.request import DEFAULT_TARGET_LUFS, GAIN_RANGE_DB, LUFS_RANGE, TRANSPOSE_RANGE  # noqa: E402
from .cover_job import KEY_AUTO, KEY_MANUAL, CoverContext, CoverJobRequest, start_cover  # noqa: E402
from .jobs_tab import submit_background  # noqa: E402
from .cover_view import build_cover_view, build_log, idle_progress, render, summary_text  # noqa: E402
from .job_io import ConvertRequest  # noqa: E402
from .convert_tab import speaker_update, wire_stop  # noqa: E402
from .models import ModelLibrary  # noqa: E402
from .settings_section import controls_for, f0_choices  # noqa: E402

API_NAME = "cover"
COVER_API_DOC = """Make a cover of a song with a voice: separate its vocals, convert them, remix them with the
accompaniment. Inputs: song (file: wav, flac, mp3, ogg, ... or a video's audio track; mono or stereo, within the
server's file size and 10-minute song limit), model (voice name, as for /convert), speaker (empty: a one-speaker
voice's only one), separator (a value of the page's Separator menu: starter, repet-sim, hpss, or
"<family>:<file>" for a community model file found in the server's separation models folder; default the built-in
network), key ("auto": the transpose suggested from the vocal's and the voice's ranges; "manual": use transpose),
transpose (semitones, -24 to 24, with key "manual"), f0_predictor (auto, pm, dio, harvest, crepe, fcpe, rmvpe:
those usable on the server), shift_accompaniment (false; pitch-shift the accompaniment by the same semitones),
reverb (0 to 1 on the converted vocal; 0), target_lufs (loudness of the mix, -40 to -5 LUFS; -14), formats (list
of wav, flac, mp3; ["wav"]), make_zip (true: also a zip of every stem file), vocal_gain_db and
accompaniment_gain_db (-30 to 30 dB; 0), auto_f0 (false), cluster_ratio (0; RVC: index rate), noise_scale (0.4),
lead_model and dereverb_model ("": none; else a "<family>:<file>" community model file for a second pass over the
vocals: a karaoke model splits lead from backing vocals, the backing staying unconverted in the accompaniment; a
de-reverb model leaves the dry vocal to convert).
Outputs: original vocals, converted vocals, accompaniment, mix (audio files, in the first of wav/flac/mp3 asked
for), every stem file and the zip (a list of files), a JSON summary (song_seconds, separator, voice, speaker,
transpose, suggested_transpose, key_explanation, accompaniment_shift, mix_lufs, mix_peak_db, sample_rate,
stage_seconds, seconds, threads, files, zip, notes), the log text and the progress html."""


@dataclass
class CoverTabContext:
    """What the tab needs from the server and the Convert tab."""

    library: ModelLibrary
    cover: CoverContext
    concurrency: int  # Gradio's limit for the event (the job's JobSlots do the queueing)
    tab: Any = None  # the gr.Tab this is built in: selecting it refreshes the voices and separators
    voice_picker: Any = None  # the Convert tab's voice Dropdown: its voice is the first choice here
    owner: Any = None  # the page's gr.BrowserState upload token (which uploaded voices this browser sees)
    background: Any = None  # jobs_tab.JobsTabContext: "Run in background" sends the cover to the job service


def separator_menu(choices: list[SeparatorChoice]) -> tuple[list[tuple[str, str]], str | None]:
    """(label, value) pairs and the default value (the built-in network when it can run, else the first)."""
    pairs = [(c.label, c.value) for c in choices]
    values = [c.value for c in choices]
    return pairs, (DEFAULT_SEPARATOR if DEFAULT_SEPARATOR in values else (values[0] if values else None))


def model_file_menu(choices: list[SeparatorChoice]) -> list[tuple[str, str]]:
    """The lead/backing and de-reverb menus: none, then the community model files found."""
    return [("None", "")] + [(c.label, c.value) for c in choices if c.kind == "community"]


def separator_note(ctx: CoverContext, choices: list[SeparatorChoice]) -> str:
    """The menu's info line: where community model files go and how many are there."""
    folder = models_dir(ctx.separation_dir)
    found = sum(c.kind == "community" for c in choices)
    return (f"community model files (UVR MDX-Net, Demucs, RoFormer; docs/covers.md) go in {folder}: "
            f"{found} found")


def _voice_updates(library: ModelLibrary, key: str | None, f0_value: str | None = None) -> tuple[dict, ...]:
    """(speaker, f0, auto_f0, cluster_ratio, noise_scale, note) for the voice `key`: the knobs its family uses
    (views.control_set, as the Convert tab shows them); a hidden knob goes back to its neutral value."""
    controls = controls_for(library, key, backends.TORCH, [])
    choices, _ = f0_choices(controls.family)
    values = [v for _, v in choices]
    shows_pitch = controls.shows("f0_predictor")
    return (speaker_update(library, key),
            gr.update(choices=choices, value=f0_value if f0_value in values else "auto", visible=shows_pitch),
            gr.update(visible=controls.auto_f0, value=False),
            gr.update(visible=controls.cluster, value=controls.default("cluster_ratio") if controls.cluster else 0),
            gr.update(visible=controls.noise, value=ConvertOptions.noise_scale),
            controls.note)


def build_cover_tab(ctx: CoverTabContext) -> None:
    """Widgets and events of the Cover tab (call inside an open gr.Tab)."""
    library = ctx.library
    first = library.folder_entries()[0] if library.folder_entries() else None
    first_controls = controls_for(library, first.key if first else None, backends.TORCH, [])
    choices = ctx.cover.choices()
    menu, default = separator_menu(choices)
    with gr.Row(equal_height=False, elem_id="cover-row"):
        with gr.Column(scale=6, elem_id="cover-input-column"):
            with gr.Row():
                model = gr.Dropdown(library.choices(), value=first.key if first else None, label="Voice",
                                    allow_custom_value=True, scale=3, elem_id="cover-voice")
                first_speakers = speaker_update(library, first.key if first else None)
                speaker = gr.Dropdown(first_speakers["choices"], value=first_speakers["value"], label="Speaker",
                                      allow_custom_value=True, scale=2, elem_id="cover-speaker")
            voice_note = gr.Markdown(first_controls.note, elem_classes=["svc-note"], elem_id="cover-voice-note")
            song = gr.Audio(sources=["upload"], type="filepath", label="Song (wav, flac, mp3, ogg, ... or a video)",
                            elem_id="cover-song")
            separator = gr.Dropdown(menu, value=default, label="Separator (quality / speed)",
                                    allow_custom_value=True, elem_id="cover-separator",
                                    info=separator_note(ctx.cover, choices))
            with gr.Row(equal_height=True):
                key = gr.Radio([("Auto", KEY_AUTO), ("Manual", KEY_MANUAL)], value=KEY_AUTO, label="Key", scale=2,
                               elem_id="cover-key", info="auto: into the voice's range (the result says why)")
                transpose = gr.Slider(*TRANSPOSE_RANGE, value=0, step=1, label="Transpose (semitones)", scale=2,
                                      visible=False, elem_id="cover-transpose")
                f0_list, _ = f0_choices(first_controls.family)
                f0 = gr.Dropdown(f0_list, value="auto", label="Pitch tracker", allow_custom_value=True, scale=2,
                                 elem_id="cover-f0")
            with gr.Row():
                go = gr.Button("Make cover", variant="primary", scale=3, elem_id="cover-button")
                stop = gr.Button("Stop", variant="stop", scale=1, visible=False, elem_id="cover-stop")
                background = gr.Button("Run in background", scale=1, visible=ctx.background is not None,
                                       elem_id="cover-background-button")
            background_note = gr.Markdown(elem_id="cover-background-note", elem_classes=["svc-note"])
            progress_html = gr.HTML(idle_progress(), elem_id="cover-progress")
            with gr.Accordion("Voice settings", open=False, elem_id="cover-voice-settings"):
                auto_f0 = gr.Checkbox(False, label="Let the voice guess the pitch (speech only)",
                                      visible=first_controls.auto_f0, elem_id="cover-auto-f0")
                cluster_ratio = gr.Slider(0, 1, value=0, step=0.05, label="Timbre matching / index rate",
                                          visible=first_controls.cluster, elem_id="cover-cluster-ratio")
                noise = gr.Slider(0, 1, value=ConvertOptions.noise_scale, step=0.01, label="Breathiness",
                                  info="noise scale: 0.4 is the usual", visible=first_controls.noise,
                                  elem_id="cover-noise-scale")
            with gr.Accordion("Lead/backing split and de-reverb (community models)", open=False,
                              elem_id="cover-extra-passes"):
                gr.Markdown("A second pass over the separated vocals, with a model file of the separation models "
                            "folder: a karaoke (lead/backing) model keeps the backing vocals unconverted with the "
                            "accompaniment; a de-reverb model converts the dry vocal (add a room with Reverb).",
                            elem_classes=["svc-note"])
                with gr.Row():
                    lead_model = gr.Dropdown(model_file_menu(choices), value="", label="Lead/backing model",
                                             allow_custom_value=True, elem_id="cover-lead-model")
                    dereverb_model = gr.Dropdown(model_file_menu(choices), value="", label="De-reverb model",
                                                 allow_custom_value=True, elem_id="cover-dereverb-model")
            with gr.Accordion("Mix and export", open=False, elem_id="cover-mix-settings"):
                shift = gr.Checkbox(False, label="Shift the accompaniment by the same semitones",
                                    info="keeps the song in tune with a transposed vocal (rubberband)",
                                    elem_id="cover-shift")
                reverb = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Reverb on the converted vocal",
                                   elem_id="cover-reverb")
                target = gr.Slider(*LUFS_RANGE, value=DEFAULT_TARGET_LUFS, step=0.5,
                                   label="Loudness of the mix (LUFS)", info="-14 is what streaming services use",
                                   elem_id="cover-target-lufs")
                with gr.Row():
                    vocal_gain = gr.Slider(*GAIN_RANGE_DB, value=0, step=0.5, label="Vocal gain (dB)",
                                           elem_id="cover-vocal-gain")
                    acc_gain = gr.Slider(*GAIN_RANGE_DB, value=0, step=0.5, label="Accompaniment gain (dB)",
                                         elem_id="cover-acc-gain")
                with gr.Row():
                    formats = gr.CheckboxGroup(list(STEM_FORMATS), value=list(DEFAULT_FORMATS),
                                               label="Stem formats", elem_id="cover-formats")
                    make_zip = gr.Checkbox(True, label="Also a zip of every stem", elem_id="cover-zip")
            log = build_log()
        with gr.Column(scale=5, elem_id="cover-result-column"):
            view = build_cover_view(log)

    # ------------------------------------------------------------------ voice -> its controls
    voice_outputs = [speaker, f0, auto_f0, cluster_ratio, noise, voice_note]
    root = gr.context.Context.root_block
    picked = [model.change] + ([root.load] if root is not None else [])
    gr.on(picked, lambda k, f: _voice_updates(library, k, f), [model, f0], voice_outputs, queue=False,
          api_visibility="private")
    key.change(lambda k: gr.update(visible=k == KEY_MANUAL), key, transpose, queue=False, api_visibility="private")

    if ctx.tab is not None:
        def on_select(token: str | None, current: str | None, convert_voice: str | None, sep: str | None,
                      lead: str | None, dereverb: str | None):
            fresh = ctx.cover.choices()
            pairs, fallback = separator_menu(fresh)
            keys = [k for _, k in library.choices(token or "")]
            voice = current if current in keys else (convert_voice if convert_voice in keys else
                                                     (keys[0] if keys else None))
            files = model_file_menu(fresh)
            values = [v for _, v in files]
            return (gr.update(choices=library.choices(token or ""), value=voice),
                    gr.update(choices=pairs, value=sep if sep in [v for _, v in pairs] else fallback,
                              info=separator_note(ctx.cover, fresh)),
                    gr.update(choices=files, value=lead if lead in values else ""),
                    gr.update(choices=files, value=dereverb if dereverb in values else ""))

        token_in = ctx.owner if ctx.owner is not None else gr.State("")
        convert_in = ctx.voice_picker if ctx.voice_picker is not None else gr.State(None)
        ctx.tab.select(on_select, [token_in, model, convert_in, separator, lead_model, dereverb_model],
                       [model, separator, lead_model, dereverb_model],
                       queue=False, api_visibility="private")

    # ------------------------------------------------------------------ make the cover, stop
    def make_request(song: str | None, model: str, speaker: str, separator: str, key: str = KEY_AUTO,
                     transpose: float = 0.0, f0_predictor: str = "auto", shift_accompaniment: bool = False,
                     reverb: float = 0.0, target_lufs: float = DEFAULT_TARGET_LUFS,
                     formats: list[str] | None = None, make_zip: bool = True, vocal_gain_db: float = 0.0,
                     accompaniment_gain_db: float = 0.0, auto_f0: bool = False, cluster_ratio: float = 0.0,
                     noise_scale: float = ConvertOptions.noise_scale, lead_model: str = "",
                     dereverb_model: str = "") -> CoverJobRequest:
        """The tab's values as a CoverJobRequest."""
        voice = ConvertRequest(None, model or "", str(speaker if speaker is not None else ""),
                               f0_predictor=f0_predictor or "auto", auto_f0=bool(auto_f0),
                               cluster_ratio=float(cluster_ratio or 0), noise_scale=float(noise_scale))
        return CoverJobRequest(song, voice, separator or "", key or KEY_AUTO, float(transpose or 0),
                               bool(shift_accompaniment), float(reverb or 0), float(target_lufs),
                               float(vocal_gain_db or 0), float(accompaniment_gain_db or 0),
                               tuple(formats or DEFAULT_FORMATS), bool(make_zip), str(lead_model or ""),
                               str(dereverb_model or ""))

    def make_cover(song: str | None, model: str, speaker: str, separator: str, key: str = KEY_AUTO,
                   transpose: float = 0.0, f0_predictor: str = "auto", shift_accompaniment: bool = False,
                   reverb: float = 0.0, target_lufs: float = DEFAULT_TARGET_LUFS,
                   formats: list[str] | None = None, make_zip: bool = True, vocal_gain_db: float = 0.0,
                   accompaniment_gain_db: float = 0.0, auto_f0: bool = False, cluster_ratio: float = 0.0,
                   noise_scale: float = ConvertOptions.noise_scale, lead_model: str = "",
                   dereverb_model: str = "", request: gr.Request | None = None) -> Iterator[tuple[Any, ...]]:
        """Make a cover; streams the log and progress, ends with the stems, the files and the summary (the
        signature's defaults are the `/cover` web API's optional inputs)."""
        job_request = make_request(song, model, speaker, separator, key, transpose, f0_predictor,
                                   shift_accompaniment, reverb, target_lufs, formats, make_zip, vocal_gain_db,
                                   accompaniment_gain_db, auto_f0, cluster_ratio, noise_scale, lead_model,
                                   dereverb_model)
        first = True
        for update in start_cover(job_request, ctx.cover, request).run():
            yield render(update, clear=first)
            first = False
            if update.error is not None:
                raise gr.Error(update.error, print_exception=False)

    inputs = [song, model, speaker, separator, key, transpose, f0, shift, reverb, target, formats, make_zip,
              vocal_gain, acc_gain, auto_f0, cluster_ratio, noise, lead_model, dereverb_model]
    go.click(lambda: (gr.update(visible=True), ""), None, [stop, view.text], queue=False,
             api_visibility="private", show_progress="hidden")
    event = go.click(make_cover, inputs, view.outputs(progress_html), api_name=API_NAME,
                     api_description=COVER_API_DOC, show_progress="hidden", concurrency_limit=ctx.concurrency,
                     concurrency_id="convert")  # one Gradio limit for conversions and covers (they share slots)
    event.then(summary_text, view.summary, view.text, queue=False, api_visibility="private",
               show_progress="hidden")
    wire_stop(stop, event, view.log, progress_html)
    if ctx.background is not None:
        def run_background(*values: Any, request: gr.Request | None = None) -> str:
            return submit_background(ctx.background, make_request(*values), request)

        background.click(run_background, inputs, background_note, api_visibility="private", concurrency_limit=None)


__all__ = ["API_NAME", "COVER_API_DOC", "CoverTabContext", "build_cover_tab"]
