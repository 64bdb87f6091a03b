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
from ..precision import ONNX_PRECISIONS  # noqa: E402
from . import backends, views  # noqa: E402
from . import diffusion_files as dfiles  # noqa: E402
from .diffusion_section import DiffusionSettings, build_diffusion_settings, diffusion_updates  # noqa: E402
from .models import ModelEntry, ModelLibrary  # noqa: E402

DEFAULT_NOISE_SCALE = 0.4  # ConvertRequest's default (so-vits-svc's usual value)
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

    def convert_inputs(self) -> list:
        """The convert event's inputs after f0_predictor, in the API's order (the diffusion ones last: added in
        issue #21, so calls written before keep working)."""
        return [self.auto_f0, self.cluster_ratio, self.noise, self.slice_db, self.pad, self.clip, self.crossfade,
                self.loudness, self.engine, self.precision, self.encoder_precision,
                *self.diffusion.convert_inputs()]

    def per_voice(self) -> list:
        """The knobs `control_updates` sets, in its order (the voice note comes last, from the caller)."""
        return [self.auto_f0, self.cluster_ratio, self.noise, self.engine, self.precision, self.encoder_precision,
                *self.diffusion.per_voice()]


def build_more_settings(controls: views.ControlSet, torch_precisions: list[str], f0_note: str) -> MoreSettings:
    """The accordion (call inside a Column), showing what `controls` says the first voice uses."""
    # The vocoder menu starts with every value of either engine (what API clients may send: Gradio checks
    # values against the first choices); on the page, picking a voice or engine narrows it.
    with gr.Accordion("More settings", open=False, elem_id="more-settings"):
        auto_f0 = gr.Checkbox(False, label="Let the voice guess the pitch (speech only)",
                              info="auto-f0: the model predicts the pitch itself and ignores Transpose",
                              visible=controls.auto_f0, elem_id="auto-f0")
        cluster_ratio = gr.Slider(0, 1, value=0, step=0.05, label="Timbre matching",
                                  info="cluster / retrieval ratio: 0 = off; higher sounds more like the "
                                       "voice's recordings but less clear", visible=controls.cluster,
                                  elem_id="cluster-ratio")
        noise = gr.Slider(0, 1, value=DEFAULT_NOISE_SCALE, step=0.01, label="Breathiness",
                          info="noise scale: 0.4 is the usual", visible=controls.noise,
                          elem_id="noise-scale")
        slice_db = gr.Slider(-100, 0, value=-40, step=1, label="Silence threshold (dBFS)",
                             info="the clip is cut into pieces where it is quieter than this",
                             elem_id="slice-db")
        pad = gr.Slider(0, 2, value=0.5, step=0.05, label="Padding around pieces (s)")
        clip = gr.Slider(0, 60, value=0, step=1, label="Split pieces longer than (s)",
                         info="0 = never; splitting long pieces keeps memory low")
        crossfade = gr.Slider(0, 15, value=0, step=0.25, label="Crossfade between split pieces (s)")
        loudness = gr.Slider(0, 1, value=1, step=0.05, label="Loudness follows",
                             info="1 = the voice's own loudness, 0 = your clip's")
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
        if f0_note:
            gr.Markdown(f0_note, elem_classes=["svc-note"])
    return MoreSettings(auto_f0, cluster_ratio, noise, slice_db, pad, clip, crossfade, loudness, engine, precision,
                        encoder_precision, diffusion)


def voice_traits(entry: ModelEntry) -> views.VoiceTraits:
    """What the voice can use, from its entry and configs (no weights are read)."""
    from ..onnx.moevs import load_voice_config
    from ..worldvoice.model import is_world_config

    diffusion = dfiles.diffusion_traits(entry.diffusion) if entry.diffusion is not None else None
    if entry.diffusion_only:
        return views.VoiceTraits(has_cluster=entry.cluster_path is not None, auto_f0=False, diffusion=diffusion,
                                 diffusion_only=True)
    config, _ = load_voice_config(entry.config_path)
    return views.VoiceTraits(world=is_world_config(config), onnx_only=entry.onnx_only,
                             has_cluster=entry.cluster_path is not None,
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
    return views.control_set(traits, backends.check_backend(engine), torch_precisions, ONNX_PRECISIONS)


def control_updates(controls: views.ControlSet, voice_changed: bool = True) -> tuple[dict, ...]:
    """Updates for (auto_f0, cluster_ratio, noise, engine, precision, encoder_precision, the DiffusionSettings'
    per_voice(), voice_note); a hidden control is reset to its neutral value so it cannot act unseen. Without
    `voice_changed` (only the engine was switched) the diffusion settings stay as they are."""
    vocoder = controls.vocoder_precisions or ("fp32",)
    return (gr.update(visible=controls.auto_f0, **({} if controls.auto_f0 else {"value": False})),
            gr.update(visible=controls.cluster, **({} if controls.cluster else {"value": 0})),
            gr.update(visible=controls.noise),
            gr.update(visible=controls.engine_picker, value=controls.engine),
            gr.update(visible=bool(controls.vocoder_precisions), choices=views.precision_choices(vocoder),
                      value="fp32"),
            gr.update(visible=controls.encoder_precision, **({} if controls.encoder_precision else {"value": "fp32"})),
            *(diffusion_updates(controls) if voice_changed else [gr.skip()] * len(diffusion_updates(controls))),
            controls.note)
