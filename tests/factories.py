"""Builders of upstream-layout model files with random weights, for tests (no downloads needed).

    g_path, config_path = make_upstream_checkpoint(tmp_path, speech_encoder="hubertsoft", vol_embedding=True)
    model = svc_core.checkpoint.load_synthesizer(g_path, config_path)
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from svc_core.checkpoint import build_synthesizer, save_generator_checkpoint
from svc_core.config import ENCODER_DIMS, config_from_dict, template_config

# Channel sizes of the parity models in ../shared/compat/parity/models (small and fast on a CPU).
SMALL_SIZES: dict[str, int] = {
    "inter_channels": 32,
    "hidden_channels": 32,
    "filter_channels": 64,
    "upsample_initial_channel": 64,
    "gin_channels": 32,
}
DEC_GAIN = 1.2  # decoder weight-norm gain, as in ../shared/compat/parity (README "Models")
DEC_BIAS_SCALE = 0.1  # decoder bias scale, likewise
ZERO_FILL_STD = 0.02  # std of the noise written into parameters that upstream initialises to exactly zero
# Keys a 4.0 config.json does not have (spec a.5).
_KEYS_ADDED_IN_41 = ("speech_encoder", "vol_embedding", "use_depthwise_conv", "flow_share_parameter",
                     "use_automatic_f0_prediction", "use_transformer_flow", "n_flow_layer", "n_layers_trans_flow",
                     "vocoder_name", "speaker_embedding")


def make_config_dict(*, speech_encoder: str = "vec768l12", ssl_dim: int | None = None, n_speakers: int = 2,
                     small: bool = True, config_version: str = "4.1", speakers: Mapping[str, int] | None = None,
                     **model_overrides: Any) -> dict[str, Any]:
    """An upstream-layout config.json dict (4.1, or the 4.0 variant without the 4.1 keys)."""
    if speakers is None:
        speakers = {f"spk{i}": i for i in range(n_speakers)}
    dim = ssl_dim if ssl_dim is not None else ENCODER_DIMS[speech_encoder]
    model: dict[str, Any] = {"ssl_dim": dim, "gin_channels": dim, "n_speakers": n_speakers}
    if small:
        model.update(SMALL_SIZES)
    model.update(model_overrides)
    doc = template_config(speech_encoder, speakers=speakers, **model)
    if config_version == "4.0":
        for key in _KEYS_ADDED_IN_41:
            doc["model"].pop(key, None)
        doc["data"].pop("unit_interpolate_mode", None)
    elif config_version != "4.1":
        raise ValueError(f"config_version must be '4.0' or '4.1', got {config_version!r}")
    return doc


def make_random_synthesizer(config_doc: Mapping[str, Any], seed: int = 0) -> torch.nn.Module:
    """SynthesizerTrn with seeded random weights; exact-zero parameters refilled so every tensor matters."""
    config = config_from_dict(dict(config_doc))
    torch.manual_seed(seed)
    model = build_synthesizer(config)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            if p.numel() and not torch.any(p):
                p.copy_(torch.randn(p.shape, generator=gen) * ZERO_FILL_STD)
    # The parity fixtures' conditioning: with upstream's init the decoder is driven almost only by the NSF
    # source, so content and flow barely change the audio. Decoder weight-norm gains of 1.2 and biases scaled
    # by 0.1 make every input matter (weights only; the file layout is unchanged).
    state = model.upstream_state_dict()
    for key, value in state.items():
        if key.startswith("dec.") and key.endswith("weight_g"):
            state[key] = torch.full_like(value, DEC_GAIN)
        elif key.startswith("dec.") and key.endswith("bias"):
            state[key] = value * DEC_BIAS_SCALE
    model.load_upstream_state_dict(state)
    return model.eval()


def make_upstream_checkpoint(out_dir: str | os.PathLike, *, speech_encoder: str = "vec768l12",
                             ssl_dim: int | None = None, n_speakers: int = 2, small: bool = True, seed: int = 0,
                             release: bool = False, half: bool = False, config_version: str = "4.1",
                             speakers: Mapping[str, int] | None = None,
                             **model_overrides: Any) -> tuple[Path, Path]:
    """Write G_0.pth and config.json in upstream's layout into out_dir; returns (g_path, config_path).

    small=True uses the parity channel sizes (inter/hidden 32, filter 64, upsample_initial_channel 64,
    gin_channels 32; ssl_dim stays the encoder's width). model_overrides are config "model" keys.
    Training files include enc_q and an AdamW state; release=True drops enc_q, half=True stores fp16.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = make_config_dict(speech_encoder=speech_encoder, ssl_dim=ssl_dim, n_speakers=n_speakers, small=small,
                           config_version=config_version, speakers=speakers, **model_overrides)
    model = make_random_synthesizer(doc, seed=seed)
    g_path, config_path = out / "G_0.pth", out / "config.json"
    save_generator_checkpoint(model, g_path, iteration=0, release=release, half=half)
    config_path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return g_path, config_path


def edit_config(config_path: str | os.PathLike, **model_changes: Any) -> Path:
    """Rewrite config.json with model-section keys changed (value None deletes the key); returns the path."""
    path = Path(config_path)
    doc = json.loads(path.read_text(encoding="utf-8"))
    for key, value in model_changes.items():
        if value is None:
            doc["model"].pop(key, None)
        else:
            doc["model"][key] = value
    path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def infer_inputs(config_ssl_dim: int, frames: int = 24, speaker: int = 0, vol: bool = False,
                 seed: int = 0) -> dict[str, torch.Tensor | None]:
    """Small deterministic SynthesizerTrn.infer inputs: c [1, S, T], f0 [1, T] Hz, uv [1, T], g [1, 1], vol."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)
    f0 = 220.0 * 2.0 ** (0.5 * torch.sin(2 * torch.pi * t / 16))
    return {
        "c": torch.randn(1, config_ssl_dim, frames, generator=gen),
        "f0": f0[None],
        "uv": torch.ones(1, frames),
        "g": torch.tensor([[speaker]], dtype=torch.long),
        "vol": (0.05 + 0.1 * torch.rand(1, frames, generator=gen)) if vol else None,
    }
