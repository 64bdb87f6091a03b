"""Pure helpers for the Convert tab: the progress bar, the timing table and its summary line, which controls a
voice uses (`control_set`), human labels for precisions and speakers, and the example chips (`load_examples`)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd

from ..timing import StageTimes
from .diffusion_files import DiffusionTraits

TIMING_COLUMNS = ["stage", "seconds", "share"]


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s"


def progress_html(fraction: float, stage: str, elapsed: float, eta: float | None, state: str = "running") -> str:
    """A progress bar with the stage, elapsed time and ETA (state: idle, queued, running, done, failed, stopped)."""
    pct = max(0.0, min(1.0, fraction)) * 100
    eta_text = "" if state != "running" else f" · ETA {format_seconds(eta)}"
    if state in ("idle", "queued", "stopped"):
        return (f'<div class="svc-progress" data-state="{state}">'
                f'<div class="svc-progress-track"><div class="svc-progress-fill" style="width:{pct:.1f}%"></div></div>'
                f'<div class="svc-progress-text"><span class="svc-stage">{html.escape(stage)}</span></div></div>')
    return (
        f'<div class="svc-progress" data-state="{state}">'
        f'<div class="svc-progress-track"><div class="svc-progress-fill" style="width:{pct:.1f}%"></div></div>'
        f'<div class="svc-progress-text"><span class="svc-stage">{html.escape(stage)}</span>'
        f'<span class="svc-eta">{pct:.0f}% · {format_seconds(elapsed)} elapsed{eta_text}</span></div></div>'
    )


def idle_progress() -> str:
    return progress_html(0.0, "idle: pick a voice and a clip, then press Convert", 0.0, None, state="idle")


def timing_frame(times: StageTimes, load_seconds: float | None = None) -> pd.DataFrame:
    """Per-stage rows, then total, audio length and real-time factor (one-off voice loading listed apart)."""
    rows = [[name, round(sec, 3), f"{share:.0%}"] for name, sec, share in times.rows()]
    rows.append(["total", round(times.total, 3), "100%"])
    rows.append(["audio length", round(times.audio_seconds, 3), ""])
    rows.append(["real-time factor", round(times.rtf, 3) if math.isfinite(times.rtf) else None, ""])
    if load_seconds:
        rows.append(["load voice (one-off)", round(load_seconds, 3), ""])
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def empty_timing() -> pd.DataFrame:
    return pd.DataFrame([], columns=TIMING_COLUMNS)


def summary(times: StageTimes, f0_name: str, encoder: str, threads: int, backend: str = "") -> str:
    rtf = times.rtf
    speed = "" if not math.isfinite(rtf) or rtf <= 0 else (
        f" ({1 / rtf:.1f}x faster than real time)" if rtf < 1 else f" ({rtf:.1f}x slower than real time)")
    return (f"**{times.audio_seconds:.2f} s** of audio converted in **{times.total:.2f} s**, real-time factor "
            f"**{rtf:.3f}**{speed}. f0: {f0_name}, encoder: {encoder}, torch threads: {threads}."
            + (f" Synthesizer backend: {backend}." if backend else ""))


# --------------------------------------------------------------------------- job states beyond running
def queued_progress() -> str:
    """Shown the moment Convert is pressed, until the job's first update (it may wait for a free slot)."""
    return progress_html(0.0, "starting: waiting for a free conversion slot", 0.0, None, state="queued")


def stopped_progress() -> str:
    return progress_html(0.0, "Stopped. Change anything you like and press Convert again.", 0.0, None,
                         state="stopped")


# --------------------------------------------------------------------------- per-voice controls
@dataclass(frozen=True)
class VoiceTraits:
    """What a voice can use, read from its entry and config (see settings_section.voice_traits)."""

    family: str = "so-vits"  # svc_core.families name: so-vits, world, rvc, so-vits-onnx, rvc-onnx
    has_cluster: bool = False  # a kmeans / index file sits beside it (the cluster ratio / index rate does something)
    auto_f0: bool = True  # its config says it was trained with an f0 predictor (use_automatic_f0_prediction)
    diffusion: DiffusionTraits | None = None  # its 4.1 diffusion model's limits and defaults (None: it has none)
    diffusion_only: bool = False  # a diffusion model alone: it renders every note from noise, no so-vits model
    vocoder: bool = False  # a NSF-HiFiGAN mel vocoder would be found for it (the enhancer needs one)
    has_f0: bool = True  # False: an RVC model without pitch input (RVC's *_nono): no transpose or pitch tracker
    model_words: str = ""  # what kind of model, for the note: "RVC v2 40k" ("" for so-vits / WORLD)

    @property
    def world(self) -> bool:
        """A WORLD voice (svc_core.worldvoice): no noise, no vocoder network, no auto-f0, no ONNX."""
        return self.family == "world"

    @property
    def onnx_only(self) -> bool:
        """Only an ONNX export: runs on ONNX Runtime whatever engine is picked (the family table's engine)."""
        from .. import families

        return families.family(self.family).engine == families.ONNX

    @property
    def rvc(self) -> bool:
        from .. import families

        return families.family(self.family).is_rvc


@dataclass(frozen=True)
class DiffusionControls:
    """The Diffusion part of More settings for one voice: which switches, the k_step range and the defaults."""

    shallow: bool  # the shallow-diffusion switch (False for a diffusion-only voice: it always diffuses)
    only_diffusion: bool  # the only-diffusion switch (a full-chain model beside a so-vits model)
    max_k_step: int  # the k_step slider's maximum (the model's k_step_max)
    k_step: int  # the slider's value when the voice is picked
    method: str  # the model's own sampler (infer.method), the menu's first entry
    speedup: int  # the model's own speedup (infer.speedup), the slider's value when the voice is picked


@dataclass(frozen=True)
class ControlSet:
    """Which knobs the page shows for one voice and engine, and which precision values it offers."""

    noise: bool
    cluster: bool
    auto_f0: bool
    engine_picker: bool  # False: the voice runs on one engine only (the note says which)
    engine: str  # the engine that will run: "torch" or "onnx"
    vocoder_precisions: tuple[str, ...]  # empty: the control is hidden
    encoder_precision: bool
    note: str  # one line on what this voice uses; "" when nothing is special
    diffusion: DiffusionControls | None = None  # None: the Diffusion part is hidden
    enhancer: bool = False  # the enhancer switch + adaptive key (a vocoder is there; hidden while diffusing)
    family: str = "so-vits"  # svc_core.families name of the voice
    shown: frozenset[str] = frozenset()  # ConvertOptions fields whose knobs are shown (the family's controls, less
    # what this voice or engine cannot use)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # the family's own option defaults (RVC: index rate
    # 0.75 with an index, rms mix 0.25): the knobs take them when the voice is picked

    def shows(self, option: str) -> bool:
        """Whether the knob of ConvertOptions field `option` is shown."""
        return option in self.shown

    def default(self, option: str) -> Any:
        """The value the knob of `option` takes when the voice is picked (the family's, else ConvertOptions')."""
        from ..options import ConvertOptions

        return self.defaults.get(option, getattr(ConvertOptions, option))


DIFFUSION_ONLY_NOTE = ("Diffusion model only: this voice has no so-vits model; its diffusion model renders the "
                       "whole voice from noise (sampler and speedup under More settings).")
WORLD_NOTE = ("WORLD voice: it sings exactly the pitch of your clip (moved by Transpose); noise scale and vocoder "
              "settings do not apply.")
ONNX_NOTE = "ONNX file: this voice always runs on the fast engine (ONNX Runtime)."
RVC_NOTE = ("{words} voice (RVC WebUI / Applio model): converted with RVC's own steps; its settings (RMS mix rate, "
            "output sample rate, and where they apply index rate, protect, filter radius) are under More settings.")
RVC_NO_PITCH_NOTE = (" This model has no pitch input (an RVC \"no f0\" model): it follows the melody of your clip "
                     "as it hears it, so Transpose and the pitch tracker do not apply.")
RVC_TORCH_ONLY_NOTE = " It runs in torch (the Fast engine does not take RVC voices on this server)."
# so-vits knobs a voice without a so-vits synthesizer network (WORLD, a diffusion model alone) cannot use
NO_SOVITS_NETWORK = ("noise_scale", "vocoder_precision", "auto_predict_f0")


def diffusion_controls(traits: VoiceTraits) -> DiffusionControls | None:
    """The Diffusion controls for a voice of `traits` (None without a diffusion model). k_step starts at
    ConvertOptions' default (upstream's 100), at most the model's maximum."""
    from ..options import ConvertOptions

    d = traits.diffusion
    if d is None:
        return None
    alone = traits.diffusion_only
    return DiffusionControls(shallow=not alone, only_diffusion=d.full_chain and not alone, max_k_step=d.max_k_step,
                             k_step=min(ConvertOptions.k_step, d.max_k_step), method=d.method, speedup=d.speedup)


def shown_options(traits: VoiceTraits, engine: str, torch_precisions: Sequence[str]) -> frozenset[str]:
    """The ConvertOptions fields whose knobs a voice of `traits` gets on `engine`: its family's `controls`
    (svc_core.families), less what this voice cannot use (no index file, no pitch input, no auto-f0 decoder, no
    synthesizer network) or this engine does not run (auto-f0 and the torch encoder precision on ONNX)."""
    from .. import families

    kind = families.family(traits.family)
    shown = set(kind.controls)
    if kind.is_rvc and not traits.has_f0:
        shown -= set(families.RVC_PITCH_CONTROLS)
    if not traits.has_cluster:
        shown.discard("cluster_ratio")
    if not traits.auto_f0 or engine == "onnx":
        shown.discard("auto_predict_f0")
    if traits.world or traits.diffusion_only:
        shown -= set(NO_SOVITS_NETWORK)
    if engine == "onnx" or len(torch_precisions) <= 1:
        shown.discard("encoder_precision")
    if traits.diffusion is None:
        shown -= {"shallow_diffusion", "only_diffusion", "k_step", "diffusion_method", "diffusion_speedup",
                  "second_encoding"}
    if not traits.vocoder:
        shown -= {"enhance", "enhancer_adaptive_key"}
    return frozenset(shown)


def _engine(traits: VoiceTraits, engine: str, rvc_onnx: bool) -> tuple[str, bool, str]:
    """(engine that runs, whether the picker is shown, the note's words about it) for a voice of `traits`."""
    if traits.diffusion_only or traits.world:
        return "torch", False, ""
    if traits.onnx_only:
        return "onnx", False, ONNX_NOTE if not traits.rvc else ""
    if traits.rvc and not rvc_onnx:
        return "torch", False, RVC_TORCH_ONLY_NOTE
    return engine, True, ""


def control_set(traits: VoiceTraits, engine: str, torch_precisions: Sequence[str],
                onnx_precisions: Sequence[str] = ("fp32", "int8"), rvc_onnx: bool = False) -> ControlSet:
    """The controls that do something for a voice of `traits` on `engine` ("torch" / "onnx").

    Which option knobs show comes from the voice's family (svc_core.families `controls`, see shown_options).
    WORLD voices render with WORLD on torch: no noise scale, vocoder precision, auto-f0 or ONNX engine. ONNX-only
    voices run on ONNX Runtime: no torch precisions, no auto-f0 (upstream's export has no f0 predictor). The content
    encoder runs on ONNX Runtime with the ONNX engine, so its torch precision is hidden there. A voice with a
    diffusion model gets the Diffusion controls on either engine (the Fast engine runs diffusion on ONNX Runtime
    too); a diffusion-only voice has no so-vits knobs (noise, auto-f0, vocoder precision, engine). The enhancer is
    offered where a mel vocoder is. RVC voices get RVC's knobs (index rate, protect, RMS mix rate, filter radius,
    output rate) and run in torch unless `rvc_onnx` (the server can export RVC voices to ONNX).
    """
    from .. import families

    engine, picker, engine_note = _engine(traits, engine, rvc_onnx)
    onnx = engine == "onnx"
    shown = shown_options(traits, engine, torch_precisions)
    diffusion = diffusion_controls(traits) if "k_step" in shown else None
    precisions = tuple(onnx_precisions if onnx else torch_precisions)
    if traits.diffusion_only:
        note = DIFFUSION_ONLY_NOTE
    elif traits.world:
        note = WORLD_NOTE
    elif traits.rvc:
        note = RVC_NOTE.format(words=traits.model_words or "RVC") + (
            "" if traits.has_f0 else RVC_NO_PITCH_NOTE) + engine_note
    else:
        note = engine_note
    return ControlSet(noise="noise_scale" in shown, cluster="cluster_ratio" in shown,
                      auto_f0="auto_predict_f0" in shown, engine_picker=picker, engine=engine,
                      vocoder_precisions=precisions if "vocoder_precision" in shown and len(precisions) > 1 else (),
                      encoder_precision="encoder_precision" in shown, note=note, diffusion=diffusion,
                      enhancer="enhance" in shown, family=traits.family, shown=shown,
                      defaults=families.option_defaults(families.family(traits.family), traits.has_cluster))


# --------------------------------------------------------------------------- human labels
ENGINE_LABELS = {"torch": "Standard (PyTorch)", "onnx": "Fast (ONNX Runtime, prepared on first use)"}
PRECISION_LABELS = {  # value -> what it means for the listener (the info line has the numbers)
    "fp32": "Best quality (fp32)",
    "bf16": "Faster, sounds the same (bf16)",
    "fp16": "Faster, sounds the same (fp16)",
    "int8": "Fastest, slightly rougher (int8, Fast engine only)",
}


def precision_choices(values: Sequence[str]) -> list[tuple[str, str]]:
    """(label, value) pairs for a precision dropdown; the value stays the API's name."""
    return [(PRECISION_LABELS.get(v, v), v) for v in values]


def speaker_label(name: str, labels: Mapping[str, str]) -> str:
    """A readable speaker name: the voice's own label when it has one ('flite awb (Scottish English, male)'),
    'Speaker 3' for a bare number, else the config's name with underscores as spaces."""
    if name in labels:
        return labels[name]
    if name.isdigit():
        return f"Speaker {name}"
    return name.replace("_", " ")


def speaker_choices(speakers: Sequence[str], labels: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, value) pairs for the speaker dropdown; the value is the config's name (what the API takes)."""
    return [(speaker_label(s, labels or {}), s) for s in speakers]


# --------------------------------------------------------------------------- example chips
@dataclass(frozen=True)
class Example:
    """One example clip: its file, the chip's title, the transpose (and speaker) it suggests."""

    path: Path
    title: str
    transpose: float = 0.0
    speaker: str | None = None  # applied only when the chosen voice has a speaker of this name


EXAMPLES_INDEX = "examples.json"


def load_examples(folder: Path, audio_suffixes: Sequence[str], limit: int) -> list[Example]:
    """The clips listed in `folder`/examples.json (title, suggested_transpose, optional speaker), in its order, then
    any other audio file of the folder titled by its name. A broken index falls back to file names."""
    import json

    if not folder.is_dir():
        return []
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in audio_suffixes)
    listed: list[Example] = []
    try:
        doc = json.loads((folder / EXAMPLES_INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        doc = []
    by_name = {p.name: p for p in files}
    for item in doc if isinstance(doc, list) else []:
        if not isinstance(item, dict) or item.get("file") not in by_name:
            continue
        try:
            transpose = float(item.get("suggested_transpose", 0) or 0)
        except (TypeError, ValueError):
            transpose = 0.0
        speaker = item.get("speaker")
        listed.append(Example(by_name.pop(item["file"]), str(item.get("title") or item["file"]), transpose,
                              str(speaker) if speaker else None))
    listed += [Example(p, p.name) for p in files if p.name in by_name]
    return listed[:limit]


def example_label(example: Example) -> str:
    """The chip's text: its title, with the transpose it applies."""
    return example.title + (f" · {example.transpose:+g} st" if example.transpose else "")
