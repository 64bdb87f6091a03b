"""BS-RoFormer / Mel-Band RoFormer checkpoints (.ckpt + its MSST .yaml), on our network code (roformer_net.py).

The .ckpt is a torch file holding a bare state dict (some wrap it in {"state_dict": ...} or {"state": ...}, keys
maybe prefixed "model."); it is read weights-only (svc_core.safe_load.load_torch). The .yaml (same name beside
the checkpoint, or `config_path`) is MSST's: `model:` (network size; `freqs_per_bands` means BS-RoFormer,
`num_bands` Mel-Band), `audio:` (chunk_size in samples, sample_rate), `training:` (instruments, target_instrument),
`inference:` (num_overlap). The network is built on the "meta" device first and the file's weights compared with
it name by name and shape by shape before anything real is allocated.

Inference follows MSST's demix: windows of chunk_size samples every chunk_size / num_overlap, each weighted by a
window with linear fades (a tenth of the chunk), edges padded by reflection; weighted sum / weight sum.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ...errors import ModelError, OptionError
from ..base import ACCOMPANIMENT, VOCALS, Separator
from .common import read_yaml, require_model_file, yaml_beside
from .roformer_net import RoformerConfig

DEFAULT_NUM_OVERLAP = 2  # windows covering each sample (MSST's default for these configs)
FADE_FRACTION = 10  # fade length = chunk_size / FADE_FRACTION (MSST's window)
STATE_WRAPPERS = ("state_dict", "state", "model")  # keys a training script may nest the weights under
INSTRUMENTAL_NAMES = ("instrumental", "other", "accompaniment", "no_vocals", "music")
_UNSUPPORTED = {"linear_transformer_depth": 0, "use_pope": False}  # options of MSST we do not implement


def roformer_config(doc: Any, source: str) -> tuple[RoformerConfig, dict]:
    """MSST yaml -> (RoformerConfig, {"chunk_size", "sample_rate", "num_overlap", "instruments", "target"})."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("model"), Mapping):
        raise ModelError(f"'{source}' is not a RoFormer config: it has no `model:` section (MSST's layout).")
    model = dict(doc["model"])
    if "freqs_per_bands" in model:
        kind = "bs"
    elif "num_bands" in model:
        kind = "mel"
    else:
        raise ModelError(f"'{source}' describes neither a BS-RoFormer (model.freqs_per_bands) nor a Mel-Band "
                         "RoFormer (model.num_bands); MDX23C, SCNet, Apollo and other MSST models are not supported.")
    for key, plain in _UNSUPPORTED.items():
        if model.get(key, plain) not in (plain, None):
            raise ModelError(f"'{source}': model.{key} = {model[key]!r} is not supported by this loader.")
    known = {f.name for f in fields(RoformerConfig)} - {"kind", "gates", "unsupported"}
    try:
        cfg = RoformerConfig(kind=kind, **{k: v for k, v in model.items() if k in known})
        cfg.freqs_per_bands = tuple(int(n) for n in cfg.freqs_per_bands)
        for name in ("dim", "depth", "num_stems", "dim_head", "heads", "stft_n_fft", "stft_hop_length"):
            if int(getattr(cfg, name)) <= 0:
                raise ValueError(f"{name} must be positive")
    except (TypeError, ValueError) as err:
        raise ModelError(f"'{source}': bad model settings ({err}).") from None
    audio = doc.get("audio") or {}
    training = doc.get("training") or {}
    inference = doc.get("inference") or {}
    run = {"chunk_size": int(audio.get("chunk_size", 352800)), "sample_rate": int(audio.get("sample_rate", 44100)),
           "num_overlap": int(inference.get("num_overlap", DEFAULT_NUM_OVERLAP)),
           "instruments": [str(s) for s in training.get("instruments") or ["vocals", "other"]],
           "target": training.get("target_instrument")}
    if run["chunk_size"] < cfg.stft_n_fft or run["num_overlap"] < 1:
        raise ModelError(f"'{source}': audio.chunk_size {run['chunk_size']} / inference.num_overlap "
                         f"{run['num_overlap']} are out of range.")
    return cfg, run


def _unwrap(state: Any, name: str) -> dict:
    import torch

    for key in STATE_WRAPPERS:
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"'{name}' is not a RoFormer checkpoint: it does not hold a dict of weights.")
    keys = list(state)
    if all(k.startswith("model.") for k in keys):
        state = {k[len("model."):]: v for k, v in state.items()}
    return dict(state)


def load_roformer(path: str | os.PathLike, config_path: Optional[str | os.PathLike] = None):
    """(Roformer network in eval mode, run settings); ModelError / UnsafeFileError naming what is wrong."""
    from ...safe_load import load_torch
    from .roformer_net import build_roformer

    path = require_model_file(path, "RoFormer checkpoint")
    name = os.path.basename(path)
    config = Path(config_path) if config_path else yaml_beside(path)
    if config is None:
        raise ModelError(f"'{name}' needs its config: put the .yaml that came with it beside it as "
                         f"'{Path(path).stem}.yaml' (MSST / UVR publish one per checkpoint).")
    cfg, run = roformer_config(read_yaml(config, "RoFormer config"), config.name)
    state = _unwrap(load_torch(path, "RoFormer checkpoint"), name)
    cfg.gates = any(".to_gates." in k for k in state)
    try:
        skeleton = build_roformer(cfg, "meta")
    except (ValueError, RuntimeError) as err:
        raise ModelError(f"'{config.name}': {err}.") from None
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items()}
    rotary = {k for k in want if k.endswith("rotary_embed.freqs")}  # older checkpoints may lack these
    missing = sorted(set(want) - set(have) - rotary)
    unknown = sorted(set(have) - set(want))
    odd = sorted(k for k in set(want) & set(have) if want[k] != have[k])
    if missing or unknown or odd:
        kind = "BS-RoFormer" if cfg.kind == "bs" else "Mel-Band RoFormer"
        raise ModelError(f"'{name}' does not match the {kind} of '{config.name}': {len(missing)} weights missing "
                         f"{missing[:2]}, {len(unknown)} unknown {unknown[:2]}, {len(odd)} of other shapes "
                         f"{odd[:2]}. Use the yaml published with this checkpoint.")
    net = build_roformer(cfg)
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    return net.eval(), run


def fade_window(size: int, fade: int) -> np.ndarray:
    """float32 [size]: linear fade in over `fade` samples, 1, linear fade out (MSST's window)."""
    w = np.ones(size, np.float32)
    if fade > 0:
        w[:fade] = np.linspace(0, 1, fade, dtype=np.float32)
        w[-fade:] = np.linspace(1, 0, fade, dtype=np.float32)
    return w


class RoformerSeparator(Separator):
    """BS-/Mel-Band RoFormer .ckpt + .yaml. Options: config_path, num_overlap (windows per sample; more is slower
    and smoother)."""

    name = "roformer"
    chunk_seconds = 30.0
    overlap_seconds = 1.0

    def __init__(self, model_path: str | os.PathLike, config_path: Optional[str | os.PathLike] = None,
                 num_overlap: Optional[int] = None) -> None:
        self.model_path = os.fspath(model_path)
        self.net, run = load_roformer(self.model_path, config_path)
        self.sample_rate = run["sample_rate"]
        self.window_size = run["chunk_size"]
        self.num_overlap = int(num_overlap or run["num_overlap"])
        if self.num_overlap < 1:
            raise OptionError(f"num_overlap must be at least 1; got {num_overlap}.")
        target = run["target"]
        self.outputs = [str(target)] if target else run["instruments"][: self.net.cfg.num_stems]
        if len(self.outputs) != self.net.cfg.num_stems:
            raise ModelError(f"'{os.path.basename(self.model_path)}': its config names {len(self.outputs)} output "
                             f"stems ({self.outputs}) for a network with {self.net.cfg.num_stems}.")
        if not self.net.cfg.stereo:
            raise ModelError(f"'{os.path.basename(self.model_path)}' is a mono model; covers need a stereo one.")
        named = {VOCALS, *INSTRUMENTAL_NAMES}
        self.stems = (VOCALS, ACCOMPANIMENT) + tuple(s.lower() for s in self.outputs if s.lower() not in named)

    @property
    def label(self) -> str:
        kind = "BS-RoFormer" if self.net.cfg.kind == "bs" else "Mel-Band RoFormer"
        return f"{kind} {Path(self.model_path).stem}"

    def model_stems(self, audio: np.ndarray) -> np.ndarray:
        """audio float32 [2, T] -> the network's stems float32 [stems, 2, T], MSST's overlapped windows."""
        import torch

        n, size = audio.shape[1], self.window_size
        step = max(1, size // self.num_overlap)
        border = size - step
        x = audio
        if n > 2 * border and border > 0:
            x = np.pad(audio, ((0, 0), (border, border)), mode="reflect")
        else:
            border = 0
        total = x.shape[1]
        out = np.zeros((self.net.cfg.num_stems, 2, total), np.float32)
        weight = np.zeros(total, np.float32)
        base = fade_window(size, size // FADE_FRACTION)
        starts = list(range(0, max(total - size, 0) + 1, step))
        if starts[-1] + size < total:
            starts.append(total - size if total > size else 0)
        with torch.inference_mode():
            for i, start in enumerate(starts):
                piece = x[:, start:start + size]
                length = piece.shape[1]
                padded = np.pad(piece, ((0, 0), (0, size - length)))
                y = self.net(torch.from_numpy(padded)[None])[0, :, :, :length].numpy()
                w = base[:length].copy()
                if i == 0:
                    w[: size // FADE_FRACTION] = 1
                if i == len(starts) - 1:
                    w[-(size // FADE_FRACTION):] = 1
                out[:, :, start:start + length] += y * w
                weight[start:start + length] += w
        out /= np.maximum(weight, 1e-8)
        return out[:, :, border:border + n]

    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """audio float32 [2, T] -> {"vocals", "accompaniment", other named outputs} float32 [2, T]."""
        stems = dict(zip(self.outputs, self.model_stems(audio)))
        lower = {k.lower(): k for k in stems}
        if VOCALS in lower:
            vocals = stems.pop(lower[VOCALS])
            rest = stems.pop(next((lower[k] for k in INSTRUMENTAL_NAMES if k in lower)), None) \
                if any(k in lower for k in INSTRUMENTAL_NAMES) else None
            accompaniment = audio - vocals if rest is None else rest
        else:
            key = next((lower[k] for k in INSTRUMENTAL_NAMES if k in lower), None)
            if key is None:
                raise ModelError(f"'{os.path.basename(self.model_path)}' separates {self.outputs}: neither "
                                 "vocals nor an instrumental.")
            accompaniment = stems.pop(key)
            vocals = audio - accompaniment
        extra = {k.lower(): v.astype(np.float32) for k, v in stems.items()}
        return {VOCALS: vocals.astype(np.float32), ACCOMPANIMENT: accompaniment.astype(np.float32), **extra}
