"""HuBERT-Soft: the bshall layout, 'module.'-prefixed files, frame count, and a transitive parity check."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from svc_core.encoders import HubertSoft, get_encoder, load_hubert_checkpoint
from svc_core.encoders.hubert_soft import SoftArch
from svc_core.errors import ModelError

SMALL_SOFT = SoftArch(conv_dim=16, dim=128, ffn_dim=64, layers=2, pos_kernel=16, unit_dim=8, num_labels=5)


def test_default_layout_matches_manifest(manifests_dir: Path) -> None:
    manifest = json.loads((manifests_dir / "hubertsoft_random.json").read_text())
    expected = {k.removeprefix("module."): v["shape"] for k, v in manifest["state_dict"].items()}
    with torch.device("meta"):
        model = HubertSoft()
    assert {k: list(v.shape) for k, v in model.state_dict().items()} == expected
    assert model.arch.heads == 12


@pytest.fixture(scope="module")
def soft_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HubertSoft]:
    """A small random HuBERT-Soft saved like the release file: flat state dict, 'module.' prefixes."""
    torch.manual_seed(3)
    model = HubertSoft(SMALL_SOFT).eval()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.1 * torch.randn(param.shape, generator=generator))
    path = tmp_path_factory.mktemp("soft") / "hubert-soft-0d54a1f4.pt"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    return path, model


@pytest.mark.parametrize("n", [320, 639, 640, 8000, 8319])
def test_frame_count_is_floor_n_over_320(n: int, soft_file) -> None:
    encoder = get_encoder("hubertsoft", soft_file[0])
    feats = encoder.encode(torch.randn(n, generator=torch.Generator().manual_seed(n)) * 0.1)
    assert feats.shape == (1, SMALL_SOFT.unit_dim, n // 320)
    assert encoder.dim == SMALL_SOFT.unit_dim


def test_loaded_file_reproduces_the_saved_model(soft_file) -> None:
    path, original = soft_file
    encoder = get_encoder("hubertsoft", str(path))
    assert encoder.model.arch == SMALL_SOFT
    wav = 0.1 * torch.randn(4000, generator=torch.Generator().manual_seed(9))
    first = encoder.encode(wav)
    with torch.no_grad():
        direct = original(wav[None]).transpose(1, 2)
    assert torch.equal(first, encoder.encode(wav))  # deterministic
    assert torch.allclose(first, direct, atol=1e-6)


def test_file_without_prefix_loads(tmp_path: Path, soft_file) -> None:
    _, original = soft_file
    path = tmp_path / "plain.pt"
    torch.save(original.state_dict(), path)
    assert get_encoder("hubertsoft", str(path)).encode(torch.zeros(960)).shape == (1, 8, 3)


def test_missing_tensor_is_refused(tmp_path: Path, soft_file) -> None:
    _, original = soft_file
    state = original.state_dict()
    del state["encoder.layers.1.norm2.bias"]
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(ModelError, match="encoder.layers.1.norm2.bias"):
        get_encoder("hubertsoft", str(path))


def test_contentvec_file_is_refused_with_hint(small_checkpoint: str) -> None:
    with pytest.raises(ModelError, match="vec"):
        get_encoder("hubertsoft", small_checkpoint)


def _soft_state_from_fairseq(fairseq: dict[str, torch.Tensor], layers: int) -> dict[str, torch.Tensor]:
    """Rename a (post-LN) fairseq HuBERT state dict into the bshall layout; q/k/v stack into in_proj."""
    rename = {
        "feature_extractor.conv_layers.0.2.": "feature_extractor.norm0.",
        "layer_norm.": "feature_projection.norm.",
        "post_extract_proj.": "feature_projection.projection.",
        "encoder.pos_conv.0.": "positional_embedding.conv.",
        "encoder.layer_norm.": "norm.",
        "final_proj.": "proj.",
    }
    out: dict[str, torch.Tensor] = {"masked_spec_embed": fairseq["mask_emb"]}
    for key, value in fairseq.items():
        for old, new in rename.items():
            if key.startswith(old):
                out[new + key[len(old):]] = value
    for i in range(7):
        out[f"feature_extractor.conv{i}.weight"] = fairseq[f"feature_extractor.conv_layers.{i}.0.weight"]
    for i in range(layers):
        src, dst = f"encoder.layers.{i}.", f"encoder.layers.{i}."
        for part in ("weight", "bias"):
            out[dst + f"self_attn.in_proj_{part}"] = torch.cat(
                [fairseq[src + f"self_attn.{p}_proj.{part}"] for p in ("q", "k", "v")]
            )
            out[dst + f"self_attn.out_proj.{part}"] = fairseq[src + f"self_attn.out_proj.{part}"]
            out[dst + f"linear1.{part}"] = fairseq[src + f"fc1.{part}"]
            out[dst + f"linear2.{part}"] = fairseq[src + f"fc2.{part}"]
            out[dst + f"norm1.{part}"] = fairseq[src + f"self_attn_layer_norm.{part}"]
            out[dst + f"norm2.{part}"] = fairseq[src + f"final_layer_norm.{part}"]
    return out


def test_same_math_as_fairseq_hubert(small_checkpoint: str, fairseq_features: dict) -> None:
    """HuBERT-Soft is a post-LN HuBERT: with the small ContentVec weights renamed into its layout, its output on
    wav equals final_proj(layer 12) of the fairseq-parity model on wav zero-padded by 40 samples each side."""
    fairseq_model = load_hubert_checkpoint(small_checkpoint)
    arch = fairseq_model.arch
    soft_arch = SoftArch(conv_dim=arch.conv_dim, dim=arch.encoder_embed_dim, ffn_dim=arch.encoder_ffn_embed_dim,
                         layers=arch.encoder_layers, pos_kernel=arch.conv_pos, unit_dim=arch.proj_dim,
                         attention_heads=arch.encoder_attention_heads)
    soft = HubertSoft(soft_arch).eval()
    state = _soft_state_from_fairseq(fairseq_model.state_dict(), arch.encoder_layers)
    state["label_embedding.weight"] = soft.label_embedding.weight.detach()
    soft.load_state_dict(state, strict=True)
    wav = torch.from_numpy(fairseq_features["wav16k_short"])[None]
    with torch.inference_mode():
        ours = soft(wav)
        ref = fairseq_model.final_proj(fairseq_model.extract_features(torch.nn.functional.pad(wav, (40, 40)), 12))
    assert ours.shape == (1, wav.shape[1] // 320, arch.proj_dim)
    err = float((ours - ref).abs().max())
    print(f"hubert-soft vs fairseq-parity HuBERT: max abs {err:.3g}")
    assert err <= 1e-4
