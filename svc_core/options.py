"""Conversion settings for `Svc.slice_inference`, with upstream's parameter names accepted as aliases."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Iterable, Mapping

from .constants import DEFAULT_SEED
from .errors import OptionError

# upstream so-vits-svc keyword (inference_main.py / webUI) -> our field name
UPSTREAM_ALIASES = {
    "cluster_infer_ratio": "cluster_ratio",
    "noice_scale": "noise_scale",
    "lg_num": "crossfade_seconds",
    "lgr_num": "crossfade_ratio",
    "cr_threshold": "f0_threshold",
    "loudness_envelope_adjustment": "loudness_mix",
    "tran": "transpose",
    "nsf_hifigan_enhance": "enhance",
    # RVC WebUI / Applio names (vc_single / infer-web.py)
    "index_rate": "cluster_ratio",
    "rms_mix_rate": "loudness_mix",
    "f0_up_key": "transpose",
    "f0_method": "f0_predictor",
}

DIFFUSION_PRECISIONS = ("fp32", "bf16", "fp16")  # the denoiser's (svc_core.precision.PRECISIONS)
DIFFUSION_METHODS = ("dpm-solver++", "dpm-solver", "unipc", "pndm", "ddim", "ddpm")  # svc_core.diffusion.samplers


MIN_CLIP_SECONDS = 2.0  # forced pieces shorter than this cost more in per-piece overhead and padding than they save
MAX_CLIP_SECONDS = 60.0  # longer forced pieces need memory that grows with them (max_slice_seconds splits at 30 s)
MAX_PIECES = 1000  # voiced pieces per conversion: 30 min of audio in 2 s pieces is ~900


@dataclass(frozen=True)
class Range:
    """The values an option accepts: [low, high], or exactly `off` (e.g. 0 = off), in `unit`."""

    low: float
    high: float
    unit: str = ""
    off: float | None = None  # a value outside [low, high] that is also accepted and switches the option off

    def contains(self, value: float) -> bool:
        return (self.off is not None and value == self.off) or self.low <= value <= self.high

    def refusal(self, name: str, value: float) -> str:
        unit = f" {self.unit}" if self.unit else ""
        span = f"{_number(self.low)} to {_number(self.high)}{unit}"
        allowed = f"{_number(self.off)} (off) or {span}" if self.off is not None else span
        return f"{name} is {_number(value)}{unit}; it must be {allowed}."


def _number(value: float) -> str:
    """3.0 -> '3', 0.01 -> '0.01', 65536 -> '65536' (no exponent for whole numbers)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# Every bounded option, checked in ConvertOptions.__post_init__: the page, the Gradio API, the CLI and the Python
# API all build their settings through ConvertOptions, so these ranges hold everywhere. The bounds keep a
# conversion's cost proportional to its audio (no option multiplies the work without limit).
RANGES: dict[str, Range] = {
    "transpose": Range(-48.0, 48.0, "semitones"),
    "cluster_ratio": Range(0.0, 1.0),
    "noise_scale": Range(0.0, 2.0),
    "slice_db": Range(-120.0, 0.0, "dBFS"),
    "pad_seconds": Range(0.0, 2.0, "s"),  # every piece is converted with this much silence on each side
    "clip_seconds": Range(MIN_CLIP_SECONDS, MAX_CLIP_SECONDS, "s", off=0.0),
    "crossfade_seconds": Range(0.0, 15.0, "s"),
    "crossfade_ratio": Range(0.01, 1.0),
    "loudness_mix": Range(0.0, 1.0),
    "max_slice_seconds": Range(5.0, 120.0, "s"),
    "max_slice_crossfade": Range(0.0, 5.0, "s"),
    "decoder_chunk_frames": Range(16, 65536, "frames", off=0),
    "f0_threshold": Range(0.0, 1.0),
    "max_pieces": Range(1, 100000),
    "k_step": Range(1, 1000, "steps"),  # at most the model's k_step_max (checked when the diffusion model runs)
    "diffusion_speedup": Range(1, 1000),
    "enhancer_adaptive_key": Range(-24.0, 24.0, "semitones"),
    "protect": Range(0.0, 0.5),  # RVC: 0.5 switches protection off
    "filter_radius": Range(0, 7, "frames"),  # RVC: median filter over harvest f0 when >= 3
    "resample_sr": Range(16000, 96000, "Hz", off=0),
}


@dataclass(frozen=True)
class ConvertOptions:
    """Every knob of one conversion. Defaults follow upstream's CLI (noise 0.4, pad 0.5 s, slice -40 dB)."""

    transpose: float = 0.0  # semitones; f0 *= 2 ** (transpose / 12)
    f0_predictor: str = "rmvpe"
    f0_threshold: float | None = None  # voicing confidence threshold (crepe/rmvpe/fcpe); None: the predictor's
    # own default (0.05, fcpe 0.4: svc_core.f0.default_threshold)
    auto_predict_f0: bool = False  # replace f0 by the model's own f0 decoder (speech only; loses transpose)
    cluster_ratio: float = 0.0  # 0..1 share of k-means centres / retrieved features mixed into the content
    noise_scale: float = 0.4  # prior sampling temperature
    slice_db: float = -40.0  # slicer silence threshold in dBFS
    pad_seconds: float = 0.5  # zeros around every slice, removed after inference
    clip_seconds: float = 0.0  # force-split voiced slices into pieces this long (0 = off)
    crossfade_seconds: float = 0.0  # overlap between forced pieces
    crossfade_ratio: float = 0.75  # share of the overlap that is actually blended (0 < r <= 1)
    loudness_mix: float = 1.0  # 1 keeps the model's loudness envelope, 0 imposes the input's
    max_slice_seconds: float = 30.0  # longer voiced slices are split (with max_slice_crossfade) to bound memory
    max_slice_crossfade: float = 1.0  # seconds of overlap for those automatic splits
    decoder_chunk_frames: int | None = None  # the vocoder decodes this many frames at a time (same audio; 0 = the
    # whole piece); None: the backend's measured best (Svc 256, OnnxSvc 512: bench/README.md)
    vocoder_precision: str = "fp32"  # fp32 | bf16 (CPU with AVX512-BF16/AMX, or CUDA) | fp16 (CUDA): torch backend,
    # ~2x faster vocoder, not bit-exact: max abs 3e-3 on a trained voice (svc_core.precision) | int8: ONNX backend
    # with an int8 export of the vocoder, 2.3-2.8x faster vocoder, 41-42 dB SNR (svc_core.onnx.vocoder_int8)
    encoder_precision: str = "fp32"  # fp32 | bf16 | fp16 as for the vocoder, for a content encoder that runs in
    # torch (either backend): ~2x faster encoder on a bf16 CPU, features within ~2 % (svc_core.precision)
    max_pieces: int = MAX_PIECES  # a clip cut into more voiced pieces than this is refused (each piece costs a
    # fixed overhead: a 3 s clip cut into 300 pieces took 129 s)
    seed: int = DEFAULT_SEED
    # Diffusion (a voice with a so-vits-svc 4.1 diffusion model and the NSF-HiFiGAN mel vocoder; svc_core.diffusion)
    shallow_diffusion: bool = False  # re-render the so-vits output's mel with the diffusion model (upstream -shd)
    only_diffusion: bool = False  # no so-vits model: the diffusion model renders the mel from noise (upstream -od)
    k_step: int = 100  # shallow diffusion depth: noise the so-vits mel to step k_step - 1, then denoise (-ks)
    diffusion_method: str | None = None  # sampler (DIFFUSION_METHODS); None: the diffusion config's infer.method
    diffusion_speedup: int | None = None  # steps skipped per denoiser call; None: the config's infer.speedup
    diffusion_precision: str = "fp32"  # fp32 | bf16 (CPU with AVX512-BF16/AMX, or CUDA) | fp16 (CUDA): the denoiser
    # under autocast, ~2x faster diffusion on a bf16 CPU, not bit-exact (opt-in; svc_core.precision, bench/notes.md).
    # vocoder_precision applies to the NSF-HiFiGAN mel vocoder too (bf16 / fp16; int8 leaves it float32)
    second_encoding: bool = False  # re-encode the so-vits output for the diffusion model's units (-se)
    enhance: bool = False  # re-vocode the so-vits output with the NSF-HiFiGAN mel vocoder (-eh; off with diffusion)
    enhancer_adaptive_key: float = 0.0  # semitones: the enhancer runs at a rate for a voice this much higher (-eak)
    # RVC voices (svc_core.rvc); a so-vits voice refuses non-default values of these
    protect: float = 0.33  # unvoiced frames keep (1 - protect) of the original content features (0.5: off)
    filter_radius: int = 3  # harvest f0 is median-filtered (kernel 3) when this is >= 3
    resample_sr: int = 0  # output sample rate in Hz (0: the model's own rate)

    def __post_init__(self) -> None:
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, str) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
                raise OptionError(f"{name} must be a number; got {value!r}.")
            if not allowed.contains(float(value)):
                raise OptionError(allowed.refusal(name, float(value)))
        if self.clip_seconds and self.crossfade_seconds >= self.clip_seconds:
            raise OptionError(f"crossfade_seconds ({self.crossfade_seconds:g}) must be shorter than clip_seconds "
                              f"({self.clip_seconds:g}).")
        if self.diffusion_precision not in DIFFUSION_PRECISIONS:
            raise OptionError(f"diffusion_precision must be one of {', '.join(DIFFUSION_PRECISIONS)}; got "
                              f"{self.diffusion_precision!r}.")
        if self.diffusion_method is not None and self.diffusion_method not in DIFFUSION_METHODS:
            raise OptionError(f"diffusion_method '{self.diffusion_method}' is not a sampler; use one of "
                              f"{', '.join(DIFFUSION_METHODS)}.")

    @property
    def diffusing(self) -> bool:
        """Whether the diffusion model renders the mel (shallow from the so-vits output, or from noise)."""
        return self.shallow_diffusion or self.only_diffusion

    @classmethod
    def from_kwargs(cls, defaults: Mapping[str, Any] | None = None, **kwargs: Any) -> "ConvertOptions":
        """Build from our names or upstream's (e.g. noice_scale, lg_num, index_rate); unknown names are an error.
        `defaults`: a voice family's own defaults (e.g. RVC's rms_mix_rate 0.25), overridden by kwargs."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in {**(defaults or {}), **kwargs}.items():
            name = UPSTREAM_ALIASES.get(key, key)
            if name not in known:
                raise OptionError(f"Unknown option '{key}'. Known options: {', '.join(sorted(known))}.")
            values[name] = value
        return cls(**values)

    def changed(self, names: Iterable[str]) -> list[str]:
        """Those of `names` whose value differs from the field's default (for refusing options a voice ignores)."""
        defaults = {f.name: f.default for f in fields(self)}
        return [n for n in names if getattr(self, n) != defaults[n]]

    def with_(self, **changes: Any) -> "ConvertOptions":
        return replace(self, **changes)
