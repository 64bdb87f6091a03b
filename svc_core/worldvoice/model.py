"""A WORLD voice as the engine uses it: W_*.pth + config.json, behind the synthesizer's `infer` seam.

The config is a so-vits-svc 4.x config.json (data/model/spk sections: rate, hop, encoder, speakers) with one more
section, "worldvoice": {"format": FORMAT, "net": NetParams}. `Svc` loads such a folder like any other voice: the
pipeline (slicing, f0, content encoder, retrieval, speaker mix, crossfades) is shared; only the model call
differs: the network predicts WORLD frames and WORLD renders them at exactly the f0 the pipeline gives.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Mapping, Optional

import numpy as np
import torch

from ..config import SvcConfig, load_config
from ..errors import ModelError
from ..safe_load import load_torch
from . import features
from .net import NetParams, WorldVoiceNet
from ..models.voice_model import VoiceModel

FORMAT = "svc-studio-worldvoice-1"
SECTION = "worldvoice"
SPAN_LEAD_FRAMES = 3  # frames rendered before a span's first (35 ms at 44.1 kHz): longer than half WORLD's window


def is_world_config(config: SvcConfig) -> bool:
    return isinstance(config.raw.get(SECTION), Mapping)


def world_config(base: SvcConfig, params: NetParams) -> dict[str, Any]:
    """The dataset's config.json plus the worldvoice section."""
    doc = copy.deepcopy(base.to_dict())
    doc[SECTION] = {"format": FORMAT, "net": params.to_dict()}
    return doc


def save_checkpoint(net: WorldVoiceNet, path: str | os.PathLike, step: int,
                    optimizer: Optional[torch.optim.Optimizer] = None, half: bool = False) -> None:
    """{"model", "iteration", "optimizer", "learning_rate"}, like a G_*.pth; half=True stores fp16 weights
    (the normalisation statistics stay fp32) and no optimizer, for release."""
    state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() and k not in ("mean", "std") else v) for k, v in state.items()}
    opt = optimizer.state_dict() if (optimizer is not None and not half) else {}
    lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else 0.0
    torch.save({"model": state, "iteration": int(step), "optimizer": opt, "learning_rate": lr}, os.fspath(path))


class WorldVoice(VoiceModel, torch.nn.Module):
    """Loaded WORLD voice: `.config` (SvcConfig), `infer(c, f0, uv, g, ...)` -> (audio [1, 1, T * hop], f0)."""

    family = "world"

    def __init__(self, net: WorldVoiceNet, config: SvcConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config

    @property
    def n_speakers(self) -> int:
        return self.net.params.n_speakers

    def predict_frames(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """c [1, C, T], f0/uv [1, T], g LongTensor [1, 1] or mix [T, n_spk] -> coded WORLD frames [T, D]"""
        speaker = g.float()[None] if g.is_floating_point() else g.view(-1)[:1]
        with torch.inference_mode():
            y = self.net.denormalise(self.net(c.float(), f0.float(), uv.float(), speaker))
        return y[0].T.contiguous()

    def infer(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor, noise_scale: float = 0.35,
              predict_f0: bool = False, vol: Optional[torch.Tensor] = None, seed: int = 52468,
              chunk_frames: int = 0, span: Optional[tuple[int, int]] = None,
              vocoder_dtype: Optional[torch.dtype] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The synthesizer's signature; noise_scale, vol, seed, chunk_frames and vocoder_dtype do not apply.
        With span (start, stop), WORLD renders only those frames plus SPAN_LEAD_FRAMES before them (its pulses
        and noise need a short run-in) and returns [1, 1, (stop - start) * hop]; the network sees all frames."""
        del noise_scale, vol, seed, chunk_frames, vocoder_dtype
        if predict_f0:
            raise ModelError("This is a WORLD voice: it has no f0 predictor (auto_predict_f0); it sings the f0 of "
                             "the input, moved by the transpose.")
        coded = self.predict_frames(c, f0, uv, g).cpu().numpy()
        f0_out = (f0[0] * (uv[0] > 0.5)).float().cpu().numpy()
        start, stop = span if span is not None else (0, len(f0_out))
        lead = min(start, SPAN_LEAD_FRAMES)
        audio = features.synthesize(coded[start - lead:stop], f0_out[start - lead:stop],
                                    int(self.config.sampling_rate))
        audio = audio[lead * int(self.config.hop_length):]
        return torch.from_numpy(np.ascontiguousarray(audio))[None, None], f0


def load_world_voice(checkpoint_path: str | os.PathLike, config: SvcConfig | str | os.PathLike,
                     device: str | torch.device = "cpu") -> WorldVoice:
    """W_*.pth + its config -> WorldVoice (float32, eval mode). ModelError names what does not match."""
    if not isinstance(config, SvcConfig):
        config = load_config(config)
    section = config.raw.get(SECTION)
    if not isinstance(section, Mapping) or section.get("format") != FORMAT:
        raise ModelError(f"{os.path.basename(config.path)} is not a WORLD voice config (no '{SECTION}' section "
                         f"with format {FORMAT}).")
    name = os.path.basename(os.fspath(checkpoint_path))
    obj = load_torch(checkpoint_path, what="WORLD voice checkpoint")
    state = obj.get("model") if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping) or "head.3.weight" not in state:
        raise ModelError(f"'{name}' is not a WORLD voice checkpoint (W_*.pth): it has no network weights.")
    params = NetParams.from_dict(dict(section.get("net", {})))
    net = WorldVoiceNet(params)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise ModelError(f"'{name}' does not match the network described in {os.path.basename(config.path)}: "
                         f"{str(err).splitlines()[0]}") from None
    if params.n_speakers != config.n_speakers:
        raise ModelError(f"'{name}' has {params.n_speakers} speakers but the config lists {config.n_speakers}.")
    net = net.float().eval().to(device)
    for p in net.parameters():
        p.requires_grad_(False)
    return WorldVoice(net, config)

