"""A small openvpi-layout NSF-HiFiGAN vocoder with random weights, for tests (no download needed).

    model_path = make_vocoder(tmp_path / "nsf_hifigan", seed=1)   # writes `model` + config.json
    vocoder = svc_core.vocoders.load_mel_vocoder(model_path)
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from svc_core.models.weight_norm import upstream_items
from svc_core.vocoders.nsf_hifigan import MelGenerator, VocoderConfig

SMALL_CHANNELS = 32  # upsample_initial_channel of the test vocoder (openvpi: 512)
CONV_PRE_GAIN = 0.05  # conv_pre's weight_g: log-mels are ~ -11 where silent, so unit gain saturates the output
BIAS_SCALE = 0.1  # biases scaled down (torch's default init pushes the output towards DC)
# Fields openvpi's config.json carries that this code does not read (kept so the files look like the real ones).
_OPENVPI_EXTRAS: dict[str, Any] = {
    "num_gpus": 4, "batch_size": 10, "learning_rate": 0.0002, "adam_b1": 0.8, "adam_b2": 0.99, "lr_decay": 0.999,
    "seed": 1234, "discriminator_periods": [3, 5, 7, 11, 17, 23, 37], "segment_size": 16384, "num_freq": 1025,
    "fmax_for_loss": None, "num_workers": 16,
    "dist_config": {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1},
}


def vocoder_config_dict(**overrides: Any) -> dict[str, Any]:
    """An openvpi config.json dict (small channels unless overridden)."""
    cfg = dataclasses.asdict(VocoderConfig(upsample_initial_channel=SMALL_CHANNELS))
    cfg = {k: list(map(list, v)) if k == "resblock_dilation_sizes" else list(v) if isinstance(v, tuple) else v
           for k, v in cfg.items()}
    return {**_OPENVPI_EXTRAS, **cfg, **overrides}


def vocoder_state(config: dict[str, Any], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random generator weights in upstream's layout: torch's default init under `seed`, then (like the parity
    vocoder in ../shared/compat/parity/diffusion) every weight_g := 1 (conv_pre's: CONV_PRE_GAIN) and every bias
    scaled by BIAS_SCALE."""
    from svc_core.vocoders.loader import vocoder_config_from_dict

    cfg = vocoder_config_from_dict(config)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        state = upstream_items(MelGenerator(cfg))
    for key, value in state.items():
        if key.endswith(".weight_g"):
            state[key] = torch.full_like(value, CONV_PRE_GAIN if key.startswith("conv_pre.") else 1.0)
        elif key.endswith(".bias"):
            state[key] = value * BIAS_SCALE
    return state


def make_vocoder(folder: str | Path, seed: int = 0, state: dict[str, torch.Tensor] | None = None,
                 top_level: dict[str, Any] | None = None, **config_overrides: Any) -> Path:
    """Write `model` ({'generator': state}) and config.json into `folder`; returns the model path.

    top_level replaces the saved object (for tests of files that are not a vocoder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = vocoder_config_dict(**config_overrides)
    (folder / "config.json").write_text(json.dumps(config, indent=4))
    model = folder / "model"
    if top_level is None:
        top_level = {"generator": state if state is not None else vocoder_state(config, seed)}
    torch.save(top_level, model)
    return model
