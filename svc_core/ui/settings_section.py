"""The "More settings" accordion of the Convert tab, and which of its knobs a voice uses.

The decision is `views.control_set` (pure); this module reads a voice's config for it (`voice_traits`) and turns the
result into widget updates (`control_updates`). A hidden knob is reset to its neutral value so it cannot act unseen.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from ..errors import SvcError  # noqa: E402
from ..options import ConvertOptions  # noqa: E402
from ..precision import ONNX_PRECISIONS  # noqa: E402
from . import backends, views  # noqa: E402
from . import diffusion_files as dfiles  # noqa: E402
from .diffusion_section import DiffusionSettings, build_diffusion_settings, diffusion_updates  # noqa: E402
from .models import ModelEntry, ModelLibrary  # noqa: E402
from .rvc_section import (CLUSTER_WORDS, LOUDNESS_WORDS, RvcSettings, build_rvc_settings,  # noqa: E402
                          pitch_updates, rvc_updates, shared_updates, words_for)

DEFAULT_NOISE_SCALE = ConvertOptions.noise_scale  # so-vits-svc's usual value
SPEAKER_LABELS_FILE = "manifest.json"  # the starter voices' manifest: {"corpus": {"voices": [{"id", "label"}]}}


@dataclass
class MoreSettings:
    auto_f0: gr.Checkbox
    cluster_ratio: gr.Slider
    noise: gr.Slider
    slice_db: gr.Slider
    pad: gr.Slider
    clip: gr.Slider
    crossfade: gr.Slider
    loudness: gr.Slider
    engine: gr.Radio
    precision: gr.Dropdown
    encoder_precision: gr.Dropdown
    diffusion: DiffusionSettings
    rvc: RvcSettings

    def convert_inputs(self) -> list:
        """The convert event's inputs after f0_predictor, in the API's order (the diffusion ones added in issue #21,
        then RVC's in issue #22, each at the end, so calls written before keep working)."""
        return [self.auto_f0, self.cluster_ratio, self.noise, self.slice_db, self.pad, self.clip, self.crossfade,
                self.loudness, self.engine, self.precision, self.encoder_precision,
                *self.diffusion.convert_inputs(), *self.rvc.convert_inputs()]

    def per_voice(self) -> list:
        """The knobs `control_updates` sets, in its order (the caller adds transpose, pitch tracker and the voice
        note after them)."""
        return [self.auto_f0, self.cluster_ratio, self.noise, self.engine, self.precision, self.encoder_precision,
                *self.diffusion.per_voice(), self.slice_db, self.pad, self.clip, self.crossfade, self.loudness,
                *self.rvc.per_voice()]


def build_more_settings(controls: views.ControlSet, torch_precisions: list[str], f0_note: str) -> MoreSettings:
    """The accordion (call inside a Column), showing what `controls` says the first voice uses."""
    # The vocoder menu starts with every value of either engine (what API clients may send: Gradio checks
    # values against the first choices); on the page, picking a voice or engine narrows it.
    with gr.Accordion("More settings", open=False, elem_id="more-settings"):
        auto_f0 = gr.Checkbox(False, label="Let the voice guess the pitch (speech only)",
                              info="auto-f0: the model predicts the pitch itself and ignores Transpose",
                              visible=controls.auto_f0, elem_id="auto-f0")
        cluster_label, cluster_info = words_for(controls, CLUSTER_WORDS)
        cluster_ratio = gr.Slider(0, 1, value=0, step=0.05, label=cluster_label, info=cluster_info,
                                  visible=controls.cluster, elem_id="cluster-ratio")
        noise = gr.Slider(0, 1, value=DEFAULT_NOISE_SCALE, step=0.01, label="Breathiness",
                          info="noise scale: 0.4 is the usual", visible=controls.noise,
                          elem_id="noise-scale")
        slice_db = gr.Slider(-100, 0, value=-40, step=1, label="Silence threshold (dBFS)",
                             info="the clip is cut into pieces where it is quieter than this",
                             visible=controls.shows("slice_db"), elem_id="slice-db")
        pad = gr.Slider(0, 2, value=0.5, step=0.05, label="Padding around pieces (s)",
                        visible=controls.shows("pad_seconds"), elem_id="pad-seconds")
        clip = gr.Slider(0, 60, value=0, step=1, label="Split pieces longer than (s)",
                         info="0 = never; splitting long pieces keeps memory low",
                         visible=controls.shows("clip_seconds"), elem_id="clip-seconds")
        crossfade = gr.Slider(0, 15, value=0, step=0.25, label="Crossfade between split pieces (s)",
                              visible=controls.shows("crossfade_seconds"), elem_id="crossfade-seconds")
        loudness_label, loudness_info = words_for(controls, LOUDNESS_WORDS)
        loudness = gr.Slider(0, 1, value=1, step=0.05, label=loudness_label, info=loudness_info,
                             elem_id="loudness-mix")
        engine = gr.Radio([(views.ENGINE_LABELS[k], k) for k in backends.BACKENDS], value=backends.TORCH,
                          label="Engine", visible=controls.engine_picker, elem_id="backend-picker",
                          info="The log names the engine and execution provider that ran")
        precision = gr.Dropdown(views.precision_choices(torch_precisions + list(ONNX_PRECISIONS[1:])),
                                value="fp32", label="Speed mode (vocoder)",
                                visible=bool(controls.vocoder_precisions), elem_id="precision-picker",
                                info="bf16/fp16: about 2x faster, differs from best quality by ~0.003 "
                                     "(inaudible). int8 (Fast engine): 2.3-2.8x faster, prepared once per "
                                     "voice, 41-42 dB signal-to-noise against best quality")
        encoder_precision = gr.Dropdown(views.precision_choices(torch_precisions), value="fp32",
                                        label="Speed mode (content encoder)",
                                        visible=controls.encoder_precision,
                                        elem_id="encoder-precision-picker",
                                        info="bf16/fp16: about 2x faster, features within ~2 % of best "
                                             "quality")
        diffusion = build_diffusion_settings(controls)
        rvc = build_rvc_settings(controls)
        if f0_note:
            gr.Markdown(f0_note, elem_classes=["svc-note"])
    return MoreSettings(auto_f0, cluster_ratio, noise, slice_db, pad, clip, crossfade, loudness, engine, precision,
                        encoder_precision, diffusion, rvc)


def f0_choices(family: str = "so-vits") -> tuple[list[tuple[str, str]], str]:
    """Pitch-tracker choices (only predictors usable here; for an RVC voice only those RVC's recipe runs,
    svc_core.rvc.f0.RVC_F0_STEPS) and a note saying why the others are not offered."""
    from .. import families
    from ..f0 import describe_predictor, predictor_status

    status = predictor_status()
    auto = "rmvpe" if status.get("rmvpe") is None else "fcpe"
    choices = [(f"auto (here: {auto})", "auto")]
    choices += [(f"{name}: {describe_predictor(name)}", name) for name, why in status.items() if why is None]
    if families.family(family).is_rvc:
        from ..rvc.f0 import RVC_F0_STEPS

        choices = [(label, name) for label, name in choices if name == "auto" or name in RVC_F0_STEPS]
    missing = [f"**{name}** {why}" for name, why in status.items() if why is not None]
    note = ("Pitch trackers not available here: " + " · ".join(missing)) if missing else ""
    return choices, note


def voice_traits(entry: ModelEntry) -> views.VoiceTraits:
    """What the voice can use, from its entry and configs (no weights are read): its family is the entry's
    (svc_core.families decided it when the folder was read)."""
    from ..onnx.moevs import load_voice_config

    diffusion = dfiles.diffusion_traits(entry.diffusion) if entry.diffusion is not None else None
    if entry.diffusion_only:
        return views.VoiceTraits(has_cluster=entry.cluster_path is not None, auto_f0=False, diffusion=diffusion,
                                 diffusion_only=True)
    if entry.rvc is not None:
        return views.VoiceTraits(family=entry.family, has_cluster=entry.cluster_path is not None, auto_f0=False,
                                 has_f0=entry.rvc.has_f0, model_words=entry.rvc.label)
    config, _ = load_voice_config(entry.config_path)
    return views.VoiceTraits(family=entry.family, has_cluster=entry.cluster_path is not None,
                             auto_f0=bool(config.model.use_automatic_f0_prediction), diffusion=diffusion,
                             vocoder=dfiles.vocoder_available(entry.diffusion, entry.vocoder_path))


def speaker_labels(entry: ModelEntry) -> dict[str, str]:
    """Readable names the voice ships for its speakers (the starter voices' manifest), else none."""
    import json

    try:
        doc = json.loads((entry.folder / SPEAKER_LABELS_FILE).read_text(encoding="utf-8"))
        return {str(v["id"]): str(v["label"]) for v in doc.get("corpus", {}).get("voices", [])
                if isinstance(v, dict) and v.get("id") and v.get("label")}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


def controls_for(library: ModelLibrary, key: str | None, engine: str | None,
                  torch_precisions: list[str]) -> views.ControlSet:
    try:
        traits = voice_traits(library.get(key or ""))
    except SvcError:
        traits = views.VoiceTraits()
    return views.control_set(traits, backends.check_backend(engine), torch_precisions, ONNX_PRECISIONS,
                             rvc_onnx=backends.rvc_onnx_available())


def control_updates(controls: views.ControlSet, voice_changed: bool = True,
                    f0_value: str | None = None) -> tuple[dict, ...]:
    """Updates for MoreSettings.per_voice(), then (transpose, pitch tracker, voice_note); a hidden control is reset
    to its neutral value so it cannot act unseen. Picking a voice sets the knobs its family has defaults for (RVC:
    index rate, RMS mix rate) and the pitch trackers it takes (`f0_value`, the current one, stays when it is one of
    them, else "auto"). Without `voice_changed` (only the engine was switched) the diffusion settings, the pitch
    tracker and the values of shown knobs stay as they are."""
    vocoder = controls.vocoder_precisions or ("fp32",)
    cluster, loudness = shared_updates(controls, voice_changed)
    slicing = [gr.update(visible=True) if controls.shows(name) else gr.update(
        visible=False, value=getattr(ConvertOptions, name))
        for name in ("slice_db", "pad_seconds", "clip_seconds", "crossfade_seconds")]
    return (gr.update(visible=controls.auto_f0, **({} if controls.auto_f0 else {"value": False})),
            cluster,
            gr.update(visible=controls.noise, **({} if controls.noise else {"value": ConvertOptions.noise_scale})),
            gr.update(visible=controls.engine_picker, value=controls.engine),
            gr.update(visible=bool(controls.vocoder_precisions), choices=views.precision_choices(vocoder),
                      value="fp32"),
            gr.update(visible=controls.encoder_precision, **({} if controls.encoder_precision else {"value": "fp32"})),
            *(diffusion_updates(controls) if voice_changed else [gr.skip()] * len(diffusion_updates(controls))),
            *slicing, loudness, *rvc_updates(controls, voice_changed),
            *pitch_updates(controls, f0_choices(controls.family)[0] if voice_changed else None, f0_value),
            controls.note)
