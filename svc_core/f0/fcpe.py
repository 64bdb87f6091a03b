"""FCPE via torchfcpe (bundled weights, or a torchfcpe-format checkpoint given as weights_path).

so-vits-svc's own `pretrain/fcpe.pt` ({'config', 'model'} with keys `stack.*`, `decoder._layers.*`) is the
older FCPE/PCmer network; torchfcpe's CFNaiveMelPE uses different modules (`input_stack.*`,
`net.encoder_layers.*`), so that layout is recognised and refused with an explanation.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Any, Iterator

import numpy as np
import torch

from ..errors import ModelError
from ..safe_load import load_torch
from ..torchaudio_compat import ensure_torchaudio
from .base import F0Predictor, resize_nearest

DECODER_MODE = "local_argmax"  # weighted average of bins around the argmax, as upstream
log = logging.getLogger(__name__)


@contextlib.contextmanager
def _torchfcpe_quiet() -> Iterator[None]:
    """Keep torchfcpe's print() chatter ("[INFO]: device is not None, use cpu", "[WARN] ... use default") out of
    our console: it has no logger to silence, so its stdout is caught and passed to our log at DEBUG level.
    (sys.stdout is process-wide: another thread's print in this short window goes to the same DEBUG log.)"""
    caught = io.StringIO()
    try:
        with contextlib.redirect_stdout(caught):
            yield
    finally:
        for line in caught.getvalue().splitlines():
            if line.strip():
                log.debug("torchfcpe: %s", line.strip())


def _build_from_checkpoint(path: str, device: torch.device) -> torch.nn.Module:
    """Build torchfcpe's inference model from a user file (read with safe_load)."""
    ckpt: Any = load_torch(path, what="FCPE weights")
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise ModelError(f"FCPE weights '{os.path.basename(path)}' are not a dict with a 'model' entry.")
    if "config_dict" not in ckpt:
        sovits_layout = "config" in ckpt and any(k.startswith("stack.") for k in ckpt["model"])
        hint = (
            "It is so-vits-svc's fcpe.pt (the older FCPE network), which torchfcpe's model cannot load. "
            if sovits_layout
            else ""
        )
        raise ModelError(
            f"FCPE weights '{os.path.basename(path)}' are not in torchfcpe's format (no 'config_dict'). {hint}"
            "Leave weights_path empty to use the FCPE weights bundled with torchfcpe."
        )
    from torchfcpe.models_infer import InferCFNaiveMelPE
    from torchfcpe.tools import DotDict

    config = ckpt["config_dict"]
    config.setdefault("model", {}).update(conv_dropout=0.0, atten_dropout=0.0)
    try:
        with _torchfcpe_quiet():
            model = InferCFNaiveMelPE(DotDict(config), ckpt["model"])
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise ModelError(f"FCPE weights '{os.path.basename(path)}' do not fit torchfcpe's model: {err}") from None
    return model.to(device).eval()


class FCPEPredictor(F0Predictor):
    """FCPE pitch: frames whose confidence <= threshold are unvoiced; nearest resize to p_len."""

    name = "fcpe"

    def __init__(self, *args, weights_path: str | os.PathLike | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        ensure_torchaudio()
        if weights_path is not None:
            self.model = _build_from_checkpoint(os.fspath(weights_path), self.device)
        else:
            with _torchfcpe_quiet():
                import torchfcpe

                self.model = torchfcpe.spawn_bundled_infer_model(device=str(self.device)).eval()

    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        audio = torch.from_numpy(wav)[None, :, None].to(self.device)
        with torch.no_grad(), _torchfcpe_quiet():
            f0 = self.model(audio, self.sampling_rate, DECODER_MODE, self.threshold)[0, :, 0]
        return resize_nearest(f0.float().cpu().numpy(), p_len)
