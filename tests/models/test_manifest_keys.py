"""upstream_state_dict() has exactly the keys and shapes of real upstream checkpoints (manifests)."""
from __future__ import annotations

import json

import pytest

CASES = [  # (manifest, manifest whose config builds the model)
    ("G_small_vec768l12", "G_small_vec768l12"),
    ("G_small_hubertsoft_vol", "G_small_hubertsoft_vol"),
    ("G_small_tiny_vec768l12", "G_small_tiny_vec768l12"),
    ("G_full_vec768l12", "G_full_vec768l12"),
    ("G_full_hubertsoft", "G_full_hubertsoft"),
    ("G_full_vec768l12_release", "G_full_vec768l12"),
]


@pytest.mark.parametrize("manifest,config_from", CASES)
def test_upstream_keys_and_shapes_match_manifest(manifests_dir, build_from_config, manifest, config_from):
    expected = json.loads((manifests_dir / f"{manifest}.json").read_text())["state_dict"]
    config = json.loads((manifests_dir / f"{config_from}.json").read_text())["config"]
    ours = build_from_config(config).upstream_state_dict()
    if manifest.endswith("_release"):
        ours = {k: v for k, v in ours.items() if "enc_q" not in k}
    assert sorted(ours) == sorted(expected)
    wrong = {k: (list(v.shape), expected[k]["shape"]) for k, v in ours.items() if list(v.shape) != expected[k]["shape"]}
    assert wrong == {}
    assert {str(v.dtype) for v in ours.values()} == {"torch.float32"}
