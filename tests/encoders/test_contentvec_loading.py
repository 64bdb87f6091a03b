"""Loading fairseq HuBERT/ContentVec checkpoints: layouts, config variants and refusals."""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core.encoders import get_encoder, load_hubert_checkpoint
from svc_core.encoders.hubert_config import HubertArch
from svc_core.encoders.hubert_fairseq import HubertModel
from svc_core.errors import ModelError, UnsafeFileError
from svc_core.safe_load import load_torch

FAIRSEQ_DICT = "fairseq.data.dictionary.Dictionary"


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_full_size_config_matches_manifest(manifests_dir: Path) -> None:
    manifest = json.loads((manifests_dir / "contentvec_random.json").read_text())
    labels = manifest["state_dict"]["label_embs_concat"]["shape"][0]
    with torch.device("meta"):  # 95M parameters: shapes only, no memory
        model = HubertModel(HubertArch.from_fields(manifest["cfg_model"], num_labels=labels))
    expected = {k: v["shape"] for k, v in manifest["state_dict"].items()}
    assert _shapes(model) == expected
    assert {v["dtype"] for v in manifest["state_dict"].values()} == {"float32"}
    assert model.hop_length == 320


def test_small_config_matches_small_manifest(manifests_dir: Path, small_checkpoint: str) -> None:
    manifest = json.loads((manifests_dir / "contentvec_hubert_small_dev.json").read_text())
    model = load_hubert_checkpoint(small_checkpoint)
    assert _shapes(model) == {k: v["shape"] for k, v in manifest["state_dict"].items()}


def _small_state_and_fields(path: str) -> tuple[dict, dict]:
    checkpoint = load_torch(path, inert=[FAIRSEQ_DICT])
    return dict(checkpoint["model"]), dict(checkpoint["cfg"]["model"])


def test_argparse_namespace_checkpoint(tmp_path: Path, small_checkpoint: str, fairseq_features: dict) -> None:
    """Old fairseq files keep the config as an argparse Namespace in 'args' with cfg None."""
    state, fields = _small_state_and_fields(small_checkpoint)
    path = tmp_path / "old_style.pt"
    torch.save({"args": argparse.Namespace(**fields), "cfg": None, "model": state}, path)
    feats = get_encoder("vec256l9", str(path)).encode(torch.from_numpy(fairseq_features["wav16k_short"]))
    ref = fairseq_features["wav16k_short__layer9_final_proj"]
    assert float(np.abs(feats.numpy() - ref).max()) <= 1e-4


def test_missing_tensor_is_refused(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    del state["encoder.layers.3.fc1.bias"]
    path = tmp_path / "broken.pt"
    torch.save({"args": None, "cfg": {"model": fields}, "model": state}, path)
    with pytest.raises(ModelError, match="encoder.layers.3.fc1.bias"):
        load_hubert_checkpoint(path)


def test_shape_that_contradicts_config_is_refused(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    fields["encoder_ffn_embed_dim"] = 256  # the file's fc1 is 128 wide
    path = tmp_path / "wrong_cfg.pt"
    torch.save({"args": None, "cfg": {"model": fields}, "model": state}, path)
    with pytest.raises(ModelError, match="shape"):
        load_hubert_checkpoint(path)


def test_training_only_tensors_may_be_absent(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    for key in ("label_embs_concat", "mask_emb", "final_proj.weight", "final_proj.bias"):
        del state[key]
    path = tmp_path / "stripped.pt"
    torch.save({"cfg": {"model": fields}, "model": state}, path)
    assert get_encoder("vec768l12", str(path)).encode(torch.zeros(800)).shape == (1, 64, 2)
    with pytest.raises(ModelError, match="final_proj"):
        get_encoder("vec256l9", str(path))


class _RunsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _RemovesTree:
    def __init__(self, victim: Path) -> None:
        self.victim = victim

    def __reduce__(self):
        return (shutil.rmtree, (str(self.victim),))


def test_checkpoint_with_os_system_is_refused(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"cfg": {"model": fields}, "model": state, "extra": _RunsSystem(marker)}, path)
    # torch blocks the posix module outright; safe_load reports it as UnsafeFileError naming the global.
    with pytest.raises(UnsafeFileError, match="posix.system"):
        get_encoder("vec768l12", str(path))
    assert not marker.exists()


def test_checkpoint_with_unexpected_global_is_unsafe(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    victim = tmp_path / "keep_me"
    victim.mkdir()
    path = tmp_path / "evil2.pt"
    torch.save({"cfg": {"model": fields}, "model": state, "extra": _RemovesTree(victim)}, path)
    with pytest.raises(UnsafeFileError, match="shutil.rmtree"):
        get_encoder("vec256l9", str(path))
    assert victim.is_dir()


def test_conv_spec_with_code_is_refused(tmp_path: Path, small_checkpoint: str) -> None:
    state, fields = _small_state_and_fields(small_checkpoint)
    fields["conv_feature_layers"] = "__import__('os').getcwd() and [(48,10,5)]"
    path = tmp_path / "evil_cfg.pt"
    torch.save({"cfg": {"model": fields}, "model": state}, path)
    with pytest.raises(ModelError, match="conv_feature_layers"):
        load_hubert_checkpoint(path)


def test_hubert_soft_file_is_pointed_to_hubertsoft(tmp_path: Path) -> None:
    path = tmp_path / "soft_like.pt"
    torch.save({"proj.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(ModelError, match="hubertsoft"):
        load_hubert_checkpoint(path)


def test_layer_norm_extractor_and_conv_bias_layout() -> None:
    arch = HubertArch(encoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2,
                      conv_feature_layers="[(8,10,5)] + [(8,3,2)] * 4 + [(8,2,2)] * 2", extractor_mode="layer_norm",
                      conv_bias=True, conv_pos=16, conv_pos_groups=4, final_dim=4, num_labels=6)
    shapes = _shapes(HubertModel(arch))
    assert shapes["feature_extractor.conv_layers.0.0.bias"] == [8]
    assert shapes["feature_extractor.conv_layers.6.2.1.weight"] == [8]
    assert "feature_extractor.conv_layers.0.2.weight" not in shapes
    assert shapes["final_proj.weight"] == [4, 16] and shapes["label_embs_concat"] == [6, 4]


def test_layer_norm_first_applies_final_norm_only_without_output_layer() -> None:
    torch.manual_seed(0)
    arch = HubertArch(encoder_layers=2, encoder_embed_dim=16, encoder_ffn_embed_dim=32, encoder_attention_heads=2,
                      conv_feature_layers="[(8,10,5)] + [(8,3,2)] * 4 + [(8,2,2)] * 2", layer_norm_first=True,
                      conv_pos=16, conv_pos_groups=4)
    model = HubertModel(arch).eval()
    with torch.no_grad():
        model.encoder.layer_norm.weight.fill_(2.0)
        wav = torch.randn(1, 1600)
        tapped = model.extract_features(wav, output_layer=2)
        full = model.extract_features(wav)
        expected = torch.nn.functional.layer_norm(tapped, (16,), model.encoder.layer_norm.weight,
                                                  model.encoder.layer_norm.bias)
    assert torch.allclose(full, expected, atol=1e-6)
    assert not torch.allclose(full, tapped, atol=1e-2)


def test_unsupported_options_are_named() -> None:
    with pytest.raises(ModelError, match="layer_type"):
        HubertArch(layer_type="conformer").validate()
