"""Unit2Mel built from a manifest's config.yaml has exactly the keys, shapes and dtypes of upstream's file."""
from __future__ import annotations

import json

import pytest
import torch

from svc_core.diffusion import Unit2Mel, diffusion_config_from_dict

MANIFESTS = ["diffusion_vec768l12", "diffusion_hubertsoft", "diffusion_dev"]


@pytest.mark.parametrize("name", MANIFESTS)
def test_keys_shapes_dtypes_match_manifest(manifests_dir, name):
    manifest = json.loads((manifests_dir / f"{name}.json").read_text())
    assert manifest["state_dict_key"] == "model"
    expected = manifest["state_dict"]
    config = diffusion_config_from_dict(manifest["config"], f"{name} config")
    with torch.device("meta"):  # the full-size models have 55 M parameters: shapes only, no memory
        model = Unit2Mel.from_config(config)
    ours = model.state_dict()
    assert sorted(ours) == sorted(expected)
    wrong = {k: (list(v.shape), expected[k]["shape"]) for k, v in ours.items() if list(v.shape) != expected[k]["shape"]}
    assert wrong == {}
    dtypes = {k: str(v.dtype).replace("torch.", "") for k, v in ours.items()}
    assert dtypes == {k: v["dtype"] for k, v in expected.items()}
    assert sum(v.numel() for v in ours.values()) == manifest["n_params"]  # the manifest counts buffers too
