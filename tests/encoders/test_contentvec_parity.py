"""The fairseq-free HuBERT reproduces fairseq's features for the small ContentVec-layout checkpoint.

Reference: ../shared/compat/parity/contentvec/hubert_small_dev (features.npz made by fairseq 0.12 with upstream's
own vencoder calls). The README states a correct plain-torch forward reaches about 3e-6; bugs such as a tanh GELU
move the outputs by >= 5e-4, so 1e-4 separates right from wrong.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.encoders import get_encoder, load_hubert_checkpoint

TOLERANCE = 1e-4  # max abs difference to fairseq's float32 features
INPUTS = ("wav16k", "wav16k_short")
FINAL_TAPS = {"vec768l12": "layer12", "vec256l9": "layer9_final_proj"}
INTERMEDIATES = (
    [f"conv_layer_{i}" for i in range(7)]
    + ["conv_out", "features_ln", "features_proj", "pos_conv_out"]
    + [f"layer_{i}" for i in range(13)]
)


def _max_abs(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape
    return float(np.abs(ours.detach().numpy().astype(np.float64) - ref).max())


@pytest.fixture(scope="module")
def recorded(small_checkpoint: str, fairseq_features: dict) -> dict[str, dict[str, torch.Tensor]]:
    """Every intermediate of one full forward per input."""
    model = load_hubert_checkpoint(small_checkpoint)
    out = {}
    for name in INPUTS:
        record: dict[str, torch.Tensor] = {}
        with torch.inference_mode():
            model.extract_features(torch.from_numpy(fairseq_features[name])[None], None, record)
        out[name] = record
    return out


@pytest.mark.parametrize("inp", INPUTS)
@pytest.mark.parametrize("encoder_name", sorted(FINAL_TAPS))
def test_encoder_output_matches_fairseq(encoder_name: str, inp: str, small_checkpoint: str, fairseq_features: dict):
    encoder = get_encoder(encoder_name, small_checkpoint)
    feats = encoder.encode(torch.from_numpy(fairseq_features[inp]))
    ref = fairseq_features[f"{inp}__{FINAL_TAPS[encoder_name]}"]
    err = _max_abs(feats, ref)
    print(f"{encoder_name} {inp}: max abs {err:.3g}")
    assert feats.dtype == torch.float32
    assert feats.shape[1] == encoder.dim
    assert err <= TOLERANCE


@pytest.mark.parametrize("inp", INPUTS)
@pytest.mark.parametrize("key", INTERMEDIATES)
def test_intermediates_match_fairseq(key: str, inp: str, recorded: dict, fairseq_features: dict) -> None:
    assert _max_abs(recorded[inp][key], fairseq_features[f"{inp}__{key}"]) <= TOLERANCE


@pytest.mark.parametrize("inp", INPUTS)
def test_frame_count_and_sequence_padding(inp: str, recorded: dict, fairseq_features: dict) -> None:
    n = fairseq_features[inp].shape[0]
    frames = int(fairseq_features[f"{inp}__n_frames"])
    assert frames == (n - 400) // 320 + 1
    assert recorded[inp]["layer_12"].shape[1] == frames
    assert int(recorded[inp]["layer_0_pad_frames"]) == int(fairseq_features[f"{inp}__layer_0_pad_frames"])


def test_other_taps_are_consistent(small_checkpoint: str, fairseq_features: dict) -> None:
    """vec768l9 is layer 9 without final_proj; vec256l12 is final_proj(layer 12)."""
    wav = torch.from_numpy(fairseq_features["wav16k_short"])
    vec768l9 = get_encoder("vec768l9", small_checkpoint).encode(wav)
    assert _max_abs(vec768l9, fairseq_features["wav16k_short__layer_9"].transpose(0, 2, 1)) <= TOLERANCE
    vec256l12 = get_encoder("vec256l12", small_checkpoint)
    proj = vec256l12.model.final_proj
    ref = proj(torch.from_numpy(fairseq_features["wav16k_short__layer_12"])).transpose(1, 2).detach().numpy()
    assert _max_abs(vec256l12.encode(wav), ref) <= TOLERANCE


def test_names_share_one_cached_model(small_checkpoint: str) -> None:
    a = get_encoder("vec768l12", small_checkpoint)
    b = get_encoder("vec256l9", small_checkpoint)
    assert a.model is b.model
    assert (a.dim, b.dim) == (64, 32)  # the small checkpoint's encoder_embed_dim and final_dim


def test_input_layouts_agree_and_are_deterministic(small_checkpoint: str, fairseq_features: dict) -> None:
    encoder = get_encoder("vec768l12", small_checkpoint)
    wav = fairseq_features["wav16k_short"]
    first = encoder.encode(torch.from_numpy(wav))
    assert torch.equal(first, encoder.encode(torch.from_numpy(wav)[None]))
    assert torch.equal(first, encoder.encode(wav))  # numpy input
    assert not first.requires_grad
