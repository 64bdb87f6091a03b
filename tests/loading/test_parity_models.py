"""Upstream-made checkpoints (../shared/compat) load through load_synthesizer and reproduce upstream's audio."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize

from svc_core.checkpoint import detect_options, load_synthesizer, read_generator_state
from svc_core.config import SvcConfig

PARITY_MODELS = ["small_vec768l12", "small_hubertsoft_vol"]


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_parity_model_loads_and_matches_upstream(parity_dir: Path, name: str) -> None:
    folder = parity_dir / "models" / name
    model = load_synthesizer(folder / "G_0.pth", folder / "config.json")
    assert isinstance(model.config, SvcConfig)
    assert not model.training
    assert all(p.dtype == torch.float32 and not p.requires_grad for p in model.parameters())
    assert not any(parametrize.is_parametrized(m) for m in model.modules()), "weight norm must be folded"

    ref = np.load(parity_dir / f"infer_{name}.npz")
    vol = torch.from_numpy(ref["in_vol"]) if "in_vol" in ref else None
    with torch.no_grad():
        audio, f0 = model.infer(torch.from_numpy(ref["in_c"]), torch.from_numpy(ref["in_f0"]),
                                torch.from_numpy(ref["in_uv"]), torch.from_numpy(ref["in_sid"]),
                                noise_scale=0.0, vol=vol)
    np.testing.assert_allclose(audio.numpy(), ref["audio"], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", PARITY_MODELS)
def test_parity_detection_matches_config(parity_dir: Path, name: str) -> None:
    folder = parity_dir / "models" / name
    found = detect_options(read_generator_state(folder / "G_0.pth"))
    model_section = json.loads((folder / "config.json").read_text())["model"]
    for key, value in found.items():
        if key in model_section:
            assert model_section[key] == value, key
    assert found["has_enc_q"] is True


def _meta_state(manifest: dict) -> dict[str, torch.Tensor]:
    return {k: torch.empty(v["shape"], dtype=getattr(torch, v["dtype"]), device="meta")
            for k, v in manifest["state_dict"].items()}


def test_detection_on_every_generator_manifest(manifests_dir: Path) -> None:
    """Shape rules of spec b.6 against every upstream G manifest (full-size ones included, shapes only)."""
    paths = sorted(manifests_dir.glob("G_*.json"))
    assert paths
    for path in paths:
        manifest = json.loads(path.read_text())
        found = detect_options(_meta_state(manifest))
        assert found["has_enc_q"] == ("release" not in path.stem), path.name
        model_section = (manifest.get("config") or {}).get("model")
        if not model_section:
            continue
        mismatched = {k: (model_section[k], v) for k, v in found.items() if k in model_section
                      and model_section[k] != v}
        assert not mismatched, f"{path.name}: {mismatched}"


def test_tiny_manifest_flags(manifests_dir: Path) -> None:
    found = detect_options(_meta_state(json.loads((manifests_dir / "G_small_tiny_vec768l12.json").read_text())))
    assert found["use_depthwise_conv"] and found["flow_share_parameter"]
    assert not found["use_transformer_flow"] and not found["vol_embedding"]
    assert found["n_flow_layer"] == 4 and found["ssl_dim"] == 768 and found["gin_channels"] == 32
