"""Settings of `python -m svc_core preprocess`, checked once so every stage can trust them."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..audio import AUDIO_SUFFIXES
from ..errors import OptionError

AUDIO_EXTENSIONS = frozenset(AUDIO_SUFFIXES)
DIFF_SIZES = ("small", "full")  # svc_core.diffusion.train.presets
DEFAULT_MAX_SOURCE_SECONDS = 3 * 60 * 60  # 3 h: one long recording per file is normal for datasets


@dataclass
class PreprocessSettings:
    """Everything one dataset preparation run needs.

    Durations in seconds, levels in dBFS / LUFS. `input_dir` is only read, never written.
    """

    input_dir: Path
    output_dir: Path
    encoder: str = "vec768l12"  # content encoder registry name (svc_core.encoders)
    encoder_path: str | None = None  # weights file or folder (default: $SVC_PRETRAIN_DIR, ./pretrain)
    f0: str = "auto"  # f0 predictor name, or auto (rmvpe when rmvpe.pt is found, else fcpe)
    f0_weights: str | None = None  # rmvpe.pt path when f0 = rmvpe
    f0_threshold: float = 0.05
    device: str = "cpu"
    min_seconds: float = 2.0  # shortest clip kept
    max_seconds: float = 15.0  # longest clip written; longer stretches are split at quiet points
    slice_db: float = -40.0  # slicer silence threshold, dBFS
    loudnorm: bool = True  # False = --skip-loudnorm (only scale down float files that would clip)
    target_lufs: float = -23.0  # integrated loudness of every clip (ITU-R BS.1770-4)
    peak_dbfs: float = -1.0  # sample-peak ceiling enforced by a look-ahead limiter
    val_per_speaker: int = 2
    seed: int = 1234  # validation pick
    vol_embedding: bool = False  # config model.vol_embedding / train.vol_aug
    jobs: int = 1  # worker processes
    use_diff: bool = False  # also the diffusion caches (mel, aug_mel, aug_vol) and diffusion.yaml (--use-diff)
    mel_vocoder: str | None = None  # NSF-HiFiGAN file/folder whose mel settings the caches use (None: defaults)
    diff_size: str = "small"  # diffusion.yaml model size preset: small (CPU) or full (upstream's template)
    max_source_seconds: float = DEFAULT_MAX_SOURCE_SECONDS
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept in the manifest

    def __post_init__(self) -> None:
        self.input_dir = Path(os.path.abspath(os.fspath(self.input_dir)))
        self.output_dir = Path(os.path.abspath(os.fspath(self.output_dir)))

    def validate(self) -> None:
        """Raise OptionError for impossible combinations (checked before any file is touched)."""
        if not self.input_dir.is_dir():
            what = "is a file, not a folder" if self.input_dir.exists() else "does not exist"
            raise OptionError(f"The input folder '{self.input_dir}' {what}; pass a folder of audio files.")
        inp, out = self.input_dir.resolve(), self.output_dir.resolve()
        if inp == out or inp.is_relative_to(out):
            raise OptionError(f"The output folder '{self.output_dir}' must not be the input folder or contain it; "
                              "clips are written there and your recordings must stay untouched. Pick a new folder.")
        if not 0.5 <= self.min_seconds:
            raise OptionError(f"--min-seconds must be at least 0.5, got {self.min_seconds}.")
        if self.max_seconds < 2 * self.min_seconds:
            raise OptionError(f"--max-seconds ({self.max_seconds}) must be at least twice --min-seconds "
                              f"({self.min_seconds}) so long stretches can be split into pieces that are long enough.")
        if not -70.0 <= self.target_lufs <= -5.0:
            raise OptionError(f"The loudness target must be between -70 and -5 LUFS, got {self.target_lufs}.")
        if not -20.0 <= self.peak_dbfs <= 0.0:
            raise OptionError(f"The peak ceiling must be between -20 and 0 dBFS, got {self.peak_dbfs}.")
        if self.val_per_speaker < 0:
            raise OptionError(f"--val-per-speaker must be 0 or more, got {self.val_per_speaker}.")
        if self.jobs < 1:
            raise OptionError(f"--jobs must be 1 or more, got {self.jobs}.")
        if self.diff_size not in DIFF_SIZES:
            raise OptionError(f"--diff-size must be one of {', '.join(DIFF_SIZES)}, got {self.diff_size!r}.")
        if not -90.0 < self.slice_db < 0.0:
            raise OptionError(f"--slice-db must be a negative dBFS level, got {self.slice_db}.")

    def clip_key(self) -> dict[str, Any]:
        """The settings that decide the clips' audio; a change re-cuts every source."""
        return {"min_seconds": self.min_seconds, "max_seconds": self.max_seconds, "slice_db": self.slice_db,
                "loudnorm": self.loudnorm, "target_lufs": self.target_lufs, "peak_dbfs": self.peak_dbfs}

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_dir"], out["output_dir"] = str(self.input_dir), str(self.output_dir)
        return out
