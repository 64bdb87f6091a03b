"""The contract every loaded voice model keeps with the engine (`svc_core.pipeline.Svc`), whatever its family.

so-vits-svc's SynthesizerTrn, WORLD voices, RVC voices (torch and ONNX Runtime) and the stand-ins for exported or
diffusion-only voices all derive from `VoiceModel`: the engine reads `.family` (a name in `svc_core.families`) and
`.config` (an SvcConfig: rates, content encoder, speakers) and calls `infer` (or, for RVC's recipe,
`synthesize`). Loading goes through `svc_core.families.load_model`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import torch

    from ..config import SvcConfig


class VoiceModel:
    """Base of the synthesizer families. `family`: "so-vits", "world" or "rvc"; `config`: the voice's SvcConfig."""

    family: str = "so-vits"
    config: "SvcConfig"

    def infer(self, c: "torch.Tensor", f0: "torch.Tensor", uv: "torch.Tensor", g: "torch.Tensor",
              noise_scale: float = 0.35, predict_f0: bool = False, vol: Optional["torch.Tensor"] = None,
              seed: int = 52468, chunk_frames: int = 0, span: Optional[tuple[int, int]] = None,
              vocoder_dtype: Optional["torch.dtype"] = None) -> tuple["torch.Tensor", "torch.Tensor"]:
        """c [1, C, T] content units on the f0 grid, f0 [1, T] Hz, uv [1, T] (1 voiced), g speaker (LongTensor [1, 1]
        or mix weights [T, n_spk]) -> (audio [1, 1, T * hop] at config.sampling_rate, f0 [1, T] as used).
        span (start, stop): only those frames' audio; chunk_frames > 0: decode chunk by chunk (same samples)."""
        raise NotImplementedError(f"{type(self).__name__} is converted by its own engine path, not `infer`.")


__all__ = ["VoiceModel"]
