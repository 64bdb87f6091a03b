"""What every content encoder looks like to the rest of svc_core."""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import numpy as np
import torch

from ..constants import ENCODER_SAMPLE_RATE
from ..errors import AudioError, OptionError
from ..precision import autocast, check_precision


@dataclasses.dataclass(frozen=True)
class EncoderInfo:
    """Static facts about a registered encoder (available without loading any weights)."""

    name: str
    dim: int  # feature channels C of encode()'s [1, C, T] output
    default_file: str  # weights file name looked up in the pretrain folder
    where_to_get: str  # a sentence naming the upstream source of default_file
    description: str = ""
    shipped: str = ""  # path of a copy shipped in the repo (relative to its root), looked up last


class ContentEncoder:
    """Base class: 16 kHz mono audio -> content features [1, C, T_c] at 50 frames/s.

    Subclasses set `name`, `dim`, `min_samples` and implement `_encode(wav [1, N] float32) -> [1, C, T]`.
    """

    name: str = ""
    dim: int = 0
    min_samples: int = 1  # shortest input (samples at 16 kHz) that yields at least one frame
    runs_in_torch: bool = True  # encode() can run under torch autocast (bf16 / fp16); ONNX files cannot

    def __init__(self) -> None:
        self.device = torch.device("cpu")

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def to(self, device: str | torch.device) -> "ContentEncoder":
        """Move the weights to `device`; returns self."""
        self.device = torch.device(device)
        return self

    def precision_dtype(self, precision: str = "fp32") -> Optional[torch.dtype]:
        """encoder_precision ("fp32", "bf16", "fp16") -> the autocast dtype to encode in (None: float32);
        OptionError where this encoder cannot run it fast (svc_core.precision) or at all (ONNX files)."""
        if precision != "fp32" and not self.runs_in_torch:
            raise OptionError(f"encoder_precision {precision} is for content encoders that run in torch; this "
                              f"{self.name} encoder is an ONNX file, which runs as exported (its int8 copy is the "
                              "faster one). Use encoder_precision fp32.")
        return check_precision(precision, self.device, option="encoder_precision")

    def encode(self, wav16k: Any, precision: str = "fp32") -> torch.Tensor:
        """wav16k: [N] or [1, N] float audio at 16 kHz (tensor or numpy) -> features [1, C, T_c] float32.
        precision "bf16" / "fp16" (torch encoders, where fast): the convolutions and matrix products under autocast."""
        dtype = self.precision_dtype(precision)
        wav = _as_mono_row(wav16k, self.name, self.min_samples).to(self.device)
        with torch.inference_mode(), autocast(self.device, dtype):
            return self._encode(wav).float()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device='{self.device}')"


def _as_mono_row(wav: Any, name: str, min_samples: int) -> torch.Tensor:
    """Validate and reshape audio to a float32 [1, N] tensor."""
    if isinstance(wav, np.ndarray):
        wav = torch.from_numpy(np.ascontiguousarray(wav))
    if not isinstance(wav, torch.Tensor):
        raise AudioError(f"The {name} encoder needs audio as a tensor or numpy array, got {type(wav).__name__}.")
    if wav.dim() == 2 and wav.shape[0] == 1:
        wav = wav[0]
    if wav.dim() != 1:
        raise AudioError(
            f"The {name} encoder needs mono audio shaped [N] or [1, N]; got shape {list(wav.shape)}. "
            "Mix multi-channel audio down to mono first."
        )
    if not wav.is_floating_point():
        raise AudioError(f"The {name} encoder needs float audio samples in [-1, 1], got {wav.dtype}.")
    wav = wav.detach().to(torch.float32)
    if wav.numel() < min_samples:
        raise AudioError(
            f"The audio is too short for the {name} encoder: it needs at least {min_samples} samples "
            f"({1000 * min_samples / ENCODER_SAMPLE_RATE:.0f} ms at {ENCODER_SAMPLE_RATE} Hz), got {wav.numel()}."
        )
    if not bool(torch.isfinite(wav).all()):
        raise AudioError(f"The audio given to the {name} encoder contains NaN or infinite samples.")
    return wav.unsqueeze(0)
