"""The generator built from a manifest's config.json has exactly the upstream file's keys and shapes, so the real
openvpi nsf_hifigan_20221211 `model` (and the parity one) pass the loader's checks."""
from __future__ import annotations

import json

import pytest

from svc_core.models.weight_norm import to_upstream_key
from svc_core.vocoders.loader import vocoder_config_from_dict
from svc_core.vocoders.nsf_hifigan import MelGenerator


@pytest.mark.parametrize("name", ["nsf_hifigan", "nsf_hifigan_dev"])
def test_keys_and_shapes_match_the_manifest(manifests_dir, name):
    manifest = json.loads((manifests_dir / f"{name}.json").read_text())
    gen = MelGenerator(vocoder_config_from_dict(manifest["config"], source=f"{name}.json"))
    ours = {to_upstream_key(k): list(v.shape) for k, v in gen.state_dict().items()}
    theirs = {k: v["shape"] for k, v in manifest["state_dict"].items()}
    assert ours == theirs
    assert sum(v.numel() for v in gen.state_dict().values()) == manifest["n_params"]
