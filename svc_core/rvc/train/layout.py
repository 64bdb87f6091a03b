"""RVC WebUI's experiment folder (logs/<name>/), the names its trainer and index builder expect.

    <exp>/0_gt_wavs/<piece>.wav           float32 wav at the model rate (target audio)
    <exp>/1_16k_wavs/<piece>.wav          float32 wav at 16 kHz (encoder and f0 input)
    <exp>/2a_f0/<piece>.wav.npy           int coarse pitch [T] in 1..255 (pitch embedding)      (f0 models only)
    <exp>/2b-f0nsf/<piece>.wav.npy        float Hz [T], 0 = unvoiced (NSF source)             (f0 models only)
    <exp>/3_feature768/<piece>.npy        float32 [T_c, 768] content features at 50 frames/s (3_feature256 for v1)
    <exp>/filelist.txt                    wav|feature|coarse|hz|sid (f0) or wav|feature|sid per line
    <exp>/config.json                     RVC's configs/<v>/<sr>.json (+ our "spk" and "svc_studio" notes)
    <exp>/G_<step>.pth, D_<step>.pth      training checkpoints; <exp>/<name>.pth the small model
    <exp>/mute/...                        RVC's two silent "mute" pieces, made here (RVC ships them in logs/mute)

T = N16k // 160 (100 frames/s), T_c ~ N16k // 320; piece names carry no dot (RVC matches files by name.split('.')).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .. import hparams as rvc_hparams

GT_WAVS = "0_gt_wavs"
WAVS_16K = "1_16k_wavs"
F0_COARSE = "2a_f0"
F0_HZ = "2b-f0nsf"
FILELIST = "filelist.txt"
CONFIG = "config.json"
MUTE = "mute"
FIELD_SEP = "|"


def feature_dir_name(version: str) -> str:
    """3_feature768 (v2) or 3_feature256 (v1)."""
    return f"3_feature{rvc_hparams.CONTENT_DIMS[version]}"


@dataclass(frozen=True)
class ExperimentLayout:
    """Paths of one experiment folder for one RVC version."""

    root: Path
    version: str = "v2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.abspath(os.fspath(self.root))))

    @property
    def name(self) -> str:
        """The experiment name (the folder's name), as RVC's index and small-model names use it."""
        return self.root.name

    def folder(self, kind: str) -> Path:
        return self.root / kind

    @property
    def gt_wavs(self) -> Path:
        return self.root / GT_WAVS

    @property
    def wavs16k(self) -> Path:
        return self.root / WAVS_16K

    @property
    def f0_coarse(self) -> Path:
        return self.root / F0_COARSE

    @property
    def f0_hz(self) -> Path:
        return self.root / F0_HZ

    @property
    def features(self) -> Path:
        return self.root / feature_dir_name(self.version)

    @property
    def filelist(self) -> Path:
        return self.root / FILELIST

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    def mute(self) -> "ExperimentLayout":
        """The layout of the mute pieces (a sub-experiment with the same folder names)."""
        return ExperimentLayout(self.root / MUTE, self.version)

    def piece_files(self, piece: str) -> dict[str, Path]:
        """Every file of piece `piece` (a name without extension)."""
        return {"gt": self.gt_wavs / f"{piece}.wav", "16k": self.wavs16k / f"{piece}.wav",
                "coarse": self.f0_coarse / f"{piece}.wav.npy", "hz": self.f0_hz / f"{piece}.wav.npy",
                "feature": self.features / f"{piece}.npy"}


@dataclass(frozen=True)
class FilelistEntry:
    """One filelist.txt line: the piece's files and its speaker id."""

    wav: Path
    feature: Path
    coarse: Path | None  # None for no-f0 models
    hz: Path | None
    sid: int

    def line(self) -> str:
        parts = [self.wav, self.feature] + ([self.coarse, self.hz] if self.coarse is not None else [])
        return FIELD_SEP.join([str(p) for p in parts] + [str(self.sid)])

    @classmethod
    def parse(cls, line: str, f0: bool) -> "FilelistEntry":
        """A filelist line -> entry; ValueError when the field count does not fit `f0`."""
        parts = line.strip().split(FIELD_SEP)
        want = 5 if f0 else 3
        if len(parts) != want:
            raise ValueError(f"expected {want} '|'-separated fields, found {len(parts)}")
        if f0:
            wav, feature, coarse, hz, sid = parts
            return cls(Path(wav), Path(feature), Path(coarse), Path(hz), int(sid))
        wav, feature, sid = parts
        return cls(Path(wav), Path(feature), None, None, int(sid))
