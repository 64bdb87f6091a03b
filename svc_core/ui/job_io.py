"""What a conversion job is asked (`ConvertRequest`) and what it answers (`JobUpdate`, `JobResult`), and the checks
and housekeeping around them that need no engine (the uploaded file, old result folders)."""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .. import families
from ..audio import AUDIO_SUFFIXES
from ..errors import AudioError
from ..options import ConvertOptions
from ..timing import StageTimes

RESULT_MAX_AGE_SECONDS = 6 * 3600  # result folders older than this are removed when a new job starts
# What a second stage adds to a job's time budget, relative to the so-vits conversion of the same audio. Measured:
# full-size so-vits (vec256l9) + full-size diffusion model (20 layers, 512 channels) + full-size NSF-HiFiGAN, 5 s
# sung clip, 2 torch threads on the 2-core box at load 7-8, three runs: one denoiser call 0.11-0.13 and the mel
# vocoder 0.45-0.62 of the so-vits conversion (f0 + encoder + synthesizer + vocoder); rounded up.
MEL_VOCODER_COST = 0.6
DENOISER_CALL_COST = 0.15
ONLY_DIFFUSION_STEPS = 1000  # a chain's length when the voice's own is unknown (upstream's template timesteps)
PNDM_WARMUP_CALLS = 9  # pndm's first 3 steps take 4 denoiser calls each (upstream's Runge-Kutta warm-up)


@dataclass(frozen=True)
class ConvertRequest:
    """What the Convert tab (or an API client) asks for. Defaults and ranges are ConvertOptions' (one place)."""

    audio_path: str | None
    model: str
    speaker: str
    transpose: float = ConvertOptions.transpose
    f0_predictor: str = "auto"  # "auto" is resolved by resolve_f0 (rmvpe where usable, else fcpe)
    auto_f0: bool = ConvertOptions.auto_predict_f0
    cluster_ratio: float | None = None  # None: the voice's default (0; RVC's index rate 0.75 with an index)
    noise_scale: float = ConvertOptions.noise_scale
    slice_db: float = ConvertOptions.slice_db
    pad_seconds: float = ConvertOptions.pad_seconds
    clip_seconds: float = ConvertOptions.clip_seconds
    crossfade_seconds: float = ConvertOptions.crossfade_seconds
    loudness_mix: float | None = None  # None: the voice's default (1; RVC's rms mix rate 0.25)
    backend: str = "torch"  # "torch" (eager) or "onnx" (ONNX Runtime, see backends.py)
    vocoder_precision: str = ConvertOptions.vocoder_precision  # torch: fp32 / bf16 / fp16 where fast; ONNX: int8
    encoder_precision: str = ConvertOptions.encoder_precision  # a content encoder running in torch: fp32/bf16/fp16
    # a voice with a so-vits-svc 4.1 diffusion model (svc_core.diffusion); the enhancer needs only a mel vocoder
    shallow_diffusion: bool = ConvertOptions.shallow_diffusion
    only_diffusion: bool = ConvertOptions.only_diffusion  # forced on for a diffusion-only voice (jobs.py)
    k_step: int = ConvertOptions.k_step
    diffusion_method: str | None = ConvertOptions.diffusion_method  # None: the diffusion config's infer.method
    diffusion_speedup: int | None = ConvertOptions.diffusion_speedup  # None: the config's infer.speedup
    second_encoding: bool = ConvertOptions.second_encoding
    enhance: bool = ConvertOptions.enhance
    enhancer_adaptive_key: float = ConvertOptions.enhancer_adaptive_key
    # an RVC voice (svc_core.rvc)
    protect: float = ConvertOptions.protect
    filter_radius: int = ConvertOptions.filter_radius
    resample_sr: int = ConvertOptions.resample_sr  # 0: the model's own rate

    @property
    def diffusing(self) -> bool:
        return bool(self.shallow_diffusion or self.only_diffusion)

    def options(self, f0_predictor: str = "rmvpe", defaults: Mapping[str, Any] | None = None) -> ConvertOptions:
        """The request as checked engine options (OptionError names a value out of range, see options.RANGES);
        `defaults`: the voice's own (Svc.option_defaults()), for what the request leaves to the voice."""
        return ConvertOptions.from_kwargs(defaults, transpose=float(self.transpose), f0_predictor=f0_predictor,
                                          **self.engine_options())

    def voice_options(self, f0_predictor: str, kind: families.Family, has_f0: bool = True) -> dict[str, Any]:
        """Keyword options for `Svc.slice_inference` for a voice of family `kind` (has_f0=False: an RVC model
        without pitch input): the options the family uses, and any other only when it differs from its default
        (then the engine names it as not applying, as the CLI does: svc_core.families.check_options)."""
        values = {"transpose": float(self.transpose), "f0_predictor": f0_predictor, **self.engine_options()}
        if not has_f0 and self.f0_predictor == "auto":  # "auto" asks for nothing: the voice takes no pitch
            values.pop("f0_predictor")
        used = set(kind.controls) - (set() if has_f0 else set(families.RVC_PITCH_CONTROLS))
        return {name: value for name, value in values.items()
                if name in used or value != getattr(ConvertOptions, name)}

    def engine_options(self) -> dict[str, Any]:
        """Keyword options for `Svc.slice_inference` (besides speaker/transpose/f0_predictor); what the request
        leaves to the voice (cluster_ratio / loudness_mix None) is left out."""
        voice = {"cluster_ratio": self.cluster_ratio, "loudness_mix": self.loudness_mix}
        return {"auto_predict_f0": bool(self.auto_f0),
                **{name: float(value) for name, value in voice.items() if value is not None},
                "noise_scale": float(self.noise_scale), "slice_db": float(self.slice_db),
                "pad_seconds": float(self.pad_seconds), "clip_seconds": float(self.clip_seconds),
                "crossfade_seconds": float(self.crossfade_seconds),
                "vocoder_precision": str(self.vocoder_precision or "fp32"),
                "encoder_precision": str(self.encoder_precision or "fp32"),
                "shallow_diffusion": bool(self.shallow_diffusion), "only_diffusion": bool(self.only_diffusion),
                "k_step": int(self.k_step), "diffusion_method": self.diffusion_method or None,
                "diffusion_speedup": int(self.diffusion_speedup) if self.diffusion_speedup else None,
                "second_encoding": bool(self.second_encoding), "enhance": bool(self.enhance),
                "enhancer_adaptive_key": float(self.enhancer_adaptive_key), "protect": float(self.protect),
                "filter_radius": int(self.filter_radius), "resample_sr": int(self.resample_sr)}


@dataclass
class JobResult:
    output_path: Path
    sample_rate: int
    times: StageTimes
    load_seconds: float | None  # None when the voice was already in memory
    f0_name: str
    encoder: str
    f0_plot: pd.DataFrame
    backend: str = ""  # which engine and execution provider ran (backends.describe)


@dataclass
class JobUpdate:
    """A snapshot of the job for the page: the whole log so far, progress, and the result or error at the end."""

    log: str
    fraction: float
    stage: str
    elapsed: float
    eta: float | None
    result: JobResult | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None


def denoiser_calls(k_step: int, speedup: int, method: str) -> int:
    """Denoiser calls of a diffusion run from step k_step with `speedup` (ddpm: every step)."""
    steps = max(1, int(k_step)) if method == "ddpm" or speedup <= 1 else max(1, int(k_step) // int(speedup))
    return steps + (PNDM_WARMUP_CALLS if method == "pndm" else 0)


def cost_factor(request: ConvertRequest, traits: Any = None) -> float:
    """How many times the plain so-vits conversion a request costs (for its time budget): 1, plus the mel
    vocoder and the denoiser calls when diffusing (traits: diffusion_files.DiffusionTraits of the voice, for the
    model's own sampler, speedup and k_step_max), plus the vocoder for the enhancer."""
    if not request.diffusing:
        return 1.0 + (MEL_VOCODER_COST if request.enhance else 0.0)
    method = request.diffusion_method or (traits.method if traits is not None else "ddpm")
    speedup = request.diffusion_speedup or (traits.speedup if traits is not None else 1)
    k_step = request.k_step
    if request.only_diffusion:  # from noise: the whole chain
        k_step = traits.max_k_step if traits is not None else ONLY_DIFFUSION_STEPS
    base = 0.0 if request.only_diffusion else 1.0  # only-diffusion skips the so-vits synthesizer
    return base + MEL_VOCODER_COST + DENOISER_CALL_COST * denoiser_calls(k_step, speedup, method)


def family_of(svc: Any) -> families.Family:
    """The voice family of a loaded engine (Svc.family: a families.Family, or its name)."""
    kind = getattr(svc, "family", "so-vits")
    return kind if isinstance(kind, families.Family) else families.family(str(kind))


def rvc_words(svc: Any, opts: Any, has_f0: bool) -> str:
    """The log's words for an RVC voice's own settings, e.g. ", index rate 0.75, protect 0.33, rms mix 0.25"."""
    if not family_of(svc).is_rvc:
        return ""
    words = ([f"index rate {opts.cluster_ratio:g}"] if svc.retriever is not None else []) + (
        [f"protect {opts.protect:g}", f"filter radius {opts.filter_radius}"] if has_f0 else [])
    words.append(f"rms mix rate {opts.loudness_mix:g}")
    if opts.resample_sr:
        words.append(f"output {opts.resample_sr} Hz")
    return ", " + ", ".join(words)


def resolve_f0(name: str) -> str:
    """'auto' -> rmvpe when usable, else fcpe; other names must be usable here (else an error saying why)."""
    from ..f0 import resolve_predictor

    return resolve_predictor(name)


def check_audio_file(path: str | None, max_bytes: int) -> Path:
    """The uploaded clip exists, has an audio extension and is not over the size limit (content checked later)."""
    if not path:
        raise AudioError("Upload or record a clip first (or pick one of the examples).")
    p = Path(path)
    if not p.is_file():
        raise AudioError("The uploaded clip is no longer on the server; upload it again.")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(f"'{p.name}' is not an audio file we accept. Upload one of: "
                         f"{', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise AudioError(f"'{p.name}' is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    return p


def prune_results(results_dir: Path, max_age: float = RESULT_MAX_AGE_SECONDS) -> None:
    if not results_dir.is_dir():
        return
    cutoff = time.time() - max_age
    for child in results_dir.iterdir():
        try:
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            pass
