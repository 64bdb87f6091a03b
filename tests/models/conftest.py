"""Fixtures for the synthesizer tests: small configs and builders (no downloads, no other svc_core packages)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from svc_core.models import SynthesizerTrn

# Upstream 4.1 config_template "model" section with the parity models' small channel sizes.
SMALL_MODEL: dict[str, Any] = {
    "inter_channels": 32, "hidden_channels": 32, "filter_channels": 64, "n_heads": 2, "n_layers": 2,
    "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [8, 8, 2, 2, 2],
    "upsample_initial_channel": 64, "upsample_kernel_sizes": [16, 16, 4, 4, 4], "n_layers_q": 3,
    "n_layers_trans_flow": 3, "n_flow_layer": 4, "use_spectral_norm": False, "gin_channels": 32, "ssl_dim": 256,
    "n_speakers": 3, "vocoder_name": "nsf-hifigan", "speech_encoder": "hubertsoft", "speaker_embedding": False,
    "vol_embedding": False, "use_depthwise_conv": False, "flow_share_parameter": False,
    "use_automatic_f0_prediction": True, "use_transformer_flow": False,
}
SPEC_CHANNELS = 1025  # filter_length 2048 // 2 + 1
SEGMENT_FRAMES = 20  # segment_size 10240 // hop 512


def build_from_config(config: dict[str, Any]) -> SynthesizerTrn:
    """As upstream: SynthesizerTrn(filter_length//2+1, segment_size//hop_length, **config['model'])."""
    data, train = config["data"], config["train"]
    return SynthesizerTrn(data["filter_length"] // 2 + 1, train["segment_size"] // data["hop_length"],
                          **config["model"])


@pytest.fixture(name="build_from_config")
def build_from_config_fixture() -> Callable[[dict[str, Any]], SynthesizerTrn]:
    return build_from_config


@pytest.fixture
def small_model() -> Callable[..., SynthesizerTrn]:
    """small_model(**overrides) -> a freshly initialised small SynthesizerTrn in eval mode (seeded)."""
    def make(**overrides: Any) -> SynthesizerTrn:
        torch.manual_seed(0)
        kwargs = copy.deepcopy(SMALL_MODEL)
        kwargs.update(overrides)
        return SynthesizerTrn(SPEC_CHANNELS, SEGMENT_FRAMES, **kwargs).eval()
    return make


@pytest.fixture
def small_inputs() -> Callable[..., dict[str, torch.Tensor]]:
    """small_inputs(frames, ssl_dim) -> dict(c, f0, uv, g, vol) like the parity README's inputs."""
    def make(frames: int = 12, ssl_dim: int = 256) -> dict[str, torch.Tensor]:
        gen = torch.Generator().manual_seed(123)
        t = torch.arange(frames, dtype=torch.float32)
        uv = torch.ones(1, frames)
        uv[:, frames // 3: frames // 2] = 0
        return {
            "c": torch.randn(1, ssl_dim, frames, generator=gen),
            "f0": (220 * 2 ** (0.5 * torch.sin(2 * torch.pi * t / 40)))[None],
            "uv": uv,
            "g": torch.LongTensor([[1]]),
            "vol": (0.05 + 0.15 * (0.5 + 0.5 * torch.sin(2 * torch.pi * t / 30)))[None],
        }
    return make


@pytest.fixture(scope="module")
def load_parity_model(parity_dir: Path) -> Callable[[str], SynthesizerTrn]:
    """load_parity_model(name) -> parity/models/<name>/G_0.pth loaded into a model built from its config.json."""
    from svc_core.safe_load import load_torch

    def load(name: str) -> SynthesizerTrn:
        folder = parity_dir / "models" / name
        config = json.loads((folder / "config.json").read_text())
        model = build_from_config(config)
        model.load_upstream_state_dict(load_torch(folder / "G_0.pth", what="generator checkpoint")["model"])
        return model.eval()
    return load
