"""Conversion settings for `Svc.slice_inference`, with upstream's parameter names accepted as aliases."""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

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
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        checks = [
            (0.0 <= self.cluster_ratio <= 1.0, "cluster_ratio must be between 0 and 1"),
            (self.noise_scale >= 0.0, "noise_scale must be 0 or more"),
            (self.pad_seconds >= 0.0, "pad_seconds must be 0 or more"),
            (self.clip_seconds >= 0.0, "clip_seconds must be 0 or more"),
            (self.crossfade_seconds >= 0.0, "crossfade_seconds must be 0 or more"),
            (0.0 < self.crossfade_ratio <= 1.0, "crossfade_ratio must be in (0, 1]"),
            (0.0 <= self.loudness_mix <= 1.0, "loudness_mix must be between 0 and 1"),
            (-120.0 <= self.slice_db <= 0.0, "slice_db is in dBFS and must be between -120 and 0"),
            (-48.0 <= self.transpose <= 48.0, "transpose must be within +-48 semitones"),
            (self.max_slice_seconds >= 5.0, "max_slice_seconds must be at least 5"),
            (self.decoder_chunk_frames in (None, 0) or self.decoder_chunk_frames >= 16,
             "decoder_chunk_frames must be 0 (off) or at least 16"),
        ]
        for ok, message in checks:
            if not ok:
                raise OptionError(message + ".")
        if self.clip_seconds and self.crossfade_seconds >= self.clip_seconds:
            raise OptionError("crossfade_seconds must be shorter than clip_seconds.")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "ConvertOptions":
        """Build from our names or upstream's (e.g. noice_scale, lg_num); unknown names are an error."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in kwargs.items():
            name = UPSTREAM_ALIASES.get(key, key)
            if name not in known:
                raise OptionError(f"Unknown option '{key}'. Known options: {', '.join(sorted(known))}.")
            values[name] = value
        return cls(**values)

    def with_(self, **changes: Any) -> "ConvertOptions":
        return replace(self, **changes)
