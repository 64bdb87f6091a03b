"""What one cover asks for: the song, the voice and its options, the separator, key, remix and export settings."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

import numpy as np

from ..errors import OptionError
from ..separation.registry import DEFAULT_SEPARATOR, separator_entry

SongSource = Union[str, os.PathLike, bytes, tuple]  # a file path, its bytes, or (audio [C, N] or [N], sample rate)
PathLike = Union[str, os.PathLike]

AUTO = "auto"  # transpose="auto": the key suggestion's semitones (svc_core.cover.key.suggest_transpose)
DEFAULT_TARGET_LUFS = -14.0  # LUFS, integrated (BS.1770); the level the big streaming services normalise to
LUFS_RANGE = (-40.0, -5.0)  # LUFS a mix may be asked for: quieter is inaudible, louder only distorts in the limiter
GAIN_RANGE_DB = (-30.0, 30.0)  # dB, vocal / accompaniment gain in the remix
TRANSPOSE_RANGE = (-24.0, 24.0)  # semitones, for the vocal (and the accompaniment when it moves too)
EXPORT_FORMATS = ("wav", "flac", "mp3")


@dataclass
class CoverRequest:
    """One cover. `options` are ConvertOptions keywords (our or upstream names, e.g. f0_predictor, noise_scale,
    cluster_ratio); the transpose is this request's own field, not an option.

    lead_separator / dereverb_separator: a second (third) pass through the separation registry over the separated
    vocals: its "vocals" output is kept as the lead (dry) vocal; for the lead pass its other output (backing
    vocals) joins the accompaniment, for the dereverb pass the removed reverb is dropped (use `reverb` to add a
    room back to the converted vocal).
    """

    song: SongSource
    voice_model: Optional[PathLike] = None  # G_*.pth / W_*.pth / RVC .pth / .onnx (None: pass a loaded voice)
    voice_config: Optional[PathLike] = None  # config.json (so-vits and WORLD voices)
    speaker: Any = None  # name, id or {name: weight}; None: a single-speaker voice's only one
    cluster_path: Optional[PathLike] = None  # k-means / index file of the voice
    separator: str = DEFAULT_SEPARATOR  # registry key (svc_core.separation.registry)
    separator_model: Optional[PathLike] = None  # community families: the model file
    lead_separator: Optional[str] = None  # e.g. "mdx" with a karaoke (lead / backing) model
    lead_model: Optional[PathLike] = None
    dereverb_separator: Optional[str] = None  # e.g. "vr" with a de-reverb model
    dereverb_model: Optional[PathLike] = None
    options: Mapping[str, Any] = field(default_factory=dict)  # ConvertOptions keywords (no transpose)
    transpose: Union[float, str] = 0.0  # semitones, or "auto"
    shift_accompaniment: bool = False  # pitch-shift the accompaniment by the same semitones
    vocal_gain_db: float = 0.0  # dB on the converted vocal after it is loudness-matched to the original vocal
    accompaniment_gain_db: float = 0.0  # dB
    reverb: float = 0.0  # 0..1 wet share of the reverb on the converted vocal (0: dry)
    target_lufs: float = DEFAULT_TARGET_LUFS  # integrated loudness of the mix
    formats: tuple[str, ...] = ("wav",)  # of EXPORT_FORMATS
    zip: bool = False  # also one zip of every written file
    name: str = ""  # file name stem of the outputs (default: the song's name)

    def __post_init__(self) -> None:
        self.formats = tuple(self.formats.split(",") if isinstance(self.formats, str) else self.formats)
        self.check()

    def check(self) -> None:
        """OptionError for any setting out of range (before anything loads)."""
        if isinstance(self.transpose, str):
            if self.transpose.strip().lower() != AUTO:
                try:
                    self.transpose = float(self.transpose)
                except ValueError:
                    raise OptionError(f"transpose must be a number of semitones or 'auto'; got '{self.transpose}'.") \
                        from None
            else:
                self.transpose = AUTO
        if self.transpose != AUTO:
            _in_range("transpose", float(self.transpose), TRANSPOSE_RANGE, "semitones")
        if "transpose" in self.options or "tran" in self.options or "f0_up_key" in self.options:
            raise OptionError("Give the cover's transpose as CoverRequest.transpose (a number or 'auto'), not in "
                              "options.")
        _in_range("vocal_gain_db", self.vocal_gain_db, GAIN_RANGE_DB, "dB")
        _in_range("accompaniment_gain_db", self.accompaniment_gain_db, GAIN_RANGE_DB, "dB")
        _in_range("reverb", self.reverb, (0.0, 1.0), "")
        _in_range("target_lufs", self.target_lufs, LUFS_RANGE, "LUFS")
        if not self.formats:
            raise OptionError(f"Choose at least one export format: {', '.join(EXPORT_FORMATS)}.")
        for fmt in self.formats:
            if fmt not in EXPORT_FORMATS:
                raise OptionError(f"Unknown export format '{fmt}'; choose from {', '.join(EXPORT_FORMATS)}.")
        for name in (self.separator, self.lead_separator, self.dereverb_separator):
            if name is not None:
                separator_entry(name)  # OptionError listing the names
        if self.lead_model is not None and self.lead_separator is None:
            raise OptionError("A lead/backing model needs its separator family (lead_separator, e.g. 'mdx').")
        if self.dereverb_model is not None and self.dereverb_separator is None:
            raise OptionError("A de-reverb model needs its separator family (dereverb_separator, e.g. 'vr').")

    @property
    def auto_transpose(self) -> bool:
        return self.transpose == AUTO


def _in_range(name: str, value: float, bounds: tuple[float, float], unit: str) -> None:
    if not isinstance(value, (int, float, np.floating, np.integer)) or not bounds[0] <= float(value) <= bounds[1]:
        unit = f" {unit}" if unit else ""
        raise OptionError(f"{name} is {value!r}{unit}; it must be {bounds[0]:g} to {bounds[1]:g}{unit}.")
