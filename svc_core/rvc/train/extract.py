"""Per-piece features as RVC's extraction steps write them (extract_f0_print.py, extract_feature_print.py), made
with svc_core's content encoders and RVC's per-method f0 steps (svc_core.rvc.f0.raw_f0, no median filter, as RVC's
training extraction):

    2a_f0/<piece>.wav.npy     int64 [T] coarse pitch 1..255 (mel-spaced, 50..1100 Hz; unvoiced = 1)
    2b-f0nsf/<piece>.wav.npy  float64 [T] raw f0 in Hz, 0 on unvoiced frames (no interpolation)
                              (T: the method's own frame count, as RVC saves it; the dataset cuts to the content)
    3_feature<C>/<piece>.npy  float32 [T_c, C] content features at 50 frames/s

T ~ N16k // 160 (16 kHz, hop 160: 100 frames/s). Files that exist are kept (RVC's habit), so an interrupted
extraction resumes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ...constants import ENCODER_SAMPLE_RATE
from ...encoders import encoder_info, get_encoder
from ...errors import AudioError, EncoderMismatchError, OptionError
from ..f0 import RVC_F0_STEPS, coarse_pitch, raw_f0
from .layout import ExperimentLayout

F0_HOP = 160  # samples at 16 kHz per f0 frame (100 frames/s, RVC's)
TRAINING_FILTER_RADIUS = 0  # RVC's training extraction applies no median filter (its pipeline does, for harvest)


def read_16k(path: Path) -> np.ndarray:
    """A 1_16k_wavs piece as float32 [N]; AudioError when it is not 16 kHz mono."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != ENCODER_SAMPLE_RATE or audio.shape[1] != 1:
        raise AudioError(f"'{path}' is {sr} Hz with {audio.shape[1]} channel(s); 1_16k_wavs pieces must be "
                         f"{ENCODER_SAMPLE_RATE} Hz mono. Delete the experiment's piece folders and prepare again.")
    return audio[:, 0]


def save_npy(path: Path, value: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as fh:
        np.save(fh, value, allow_pickle=False)
    os.replace(tmp, path)


@dataclass
class Extractor:
    """The content encoder and f0 predictor, built on first use (a complete experiment loads neither)."""

    encoder: str
    content_dim: int  # what the model's version needs (768 v2, 256 v1)
    encoder_path: str | None = None
    f0_method: str | None = "fcpe"  # None: no-f0 model
    f0_weights: str | None = None
    device: str = "cpu"
    _encoder: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.f0_method is not None and self.f0_method not in RVC_F0_STEPS:
            raise OptionError(f"RVC training takes the f0 predictors {', '.join(RVC_F0_STEPS)}; got "
                              f"'{self.f0_method}'.")
        dim = encoder_info(self.encoder).dim
        if dim != self.content_dim:
            raise EncoderMismatchError(
                f"The '{self.encoder}' encoder gives {dim}-dim features but this RVC version needs "
                f"{self.content_dim} (v2: 768, e.g. vec768l12; v1: 256, e.g. vec256l9).")

    def features(self, wav16k: np.ndarray) -> np.ndarray:
        """float32 [N] at 16 kHz -> float32 [T_c, C]."""
        if self._encoder is None:
            self._encoder = get_encoder(self.encoder, self.encoder_path, self.device)
        feats = self._encoder.encode(torch.from_numpy(wav16k))  # [1, C, T_c]
        return feats[0].T.contiguous().numpy().astype(np.float32)

    def f0(self, wav16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 [N] at 16 kHz -> (coarse int64 [T], Hz float64 [T]), unvoiced = 0 Hz (coarse 1)."""
        hz = raw_f0(self.f0_method, wav16k.astype(np.float64), wav16k.shape[0] // F0_HOP, TRAINING_FILTER_RADIUS,
                    weights_path=self.f0_weights, device=self.device)
        return coarse_pitch(hz).astype(np.int64), hz

    def extract(self, layout: ExperimentLayout, piece: str) -> list[str]:
        """Write the missing feature files of `piece`; returns the kinds written."""
        files = layout.piece_files(piece)
        todo = ["feature"] + (["f0"] if self.f0_method else [])
        todo = [k for k in todo if not (files["feature"].is_file() if k == "feature"
                                        else files["coarse"].is_file() and files["hz"].is_file())]
        if not todo:
            return []
        wav = read_16k(files["16k"])
        if "f0" in todo:
            coarse, hz = self.f0(wav)
            save_npy(files["hz"], hz)
            save_npy(files["coarse"], coarse)
        if "feature" in todo:
            feats = self.features(wav)
            if not np.all(np.isfinite(feats)):
                raise AudioError(f"The content features of '{files['16k']}' are not finite; the piece is left out.")
            save_npy(files["feature"], feats)
        return todo
