"""Small models in the upstream layout (random weights) exported to ONNX once per session."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint

VARIANTS = {
    # name: (make_upstream_checkpoint keywords)
    "vec256l9": dict(speech_encoder="vec256l9", n_speakers=1, seed=11),
    "vol": dict(speech_encoder="vec768l12", n_speakers=1, seed=12, vol_embedding=True),
    "mix": dict(speech_encoder="vec256l9", n_speakers=3, seed=13, speakers={"alto": 0, "tenor": 1, "bass": 2}),
}


@dataclass
class Exported:
    model: Path
    config: Path
    onnx: Path
    manifest: dict


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[str, Exported]:
    from svc_core.onnx import export_synthesizer

    root = tmp_path_factory.mktemp("onnx")
    out = {}
    for name, kw in VARIANTS.items():
        g_path, config_path = make_upstream_checkpoint(root / name, **kw)
        onnx_path = root / name / "model.onnx"
        manifest = export_synthesizer(g_path, config_path, onnx_path)
        out[name] = Exported(g_path, config_path, onnx_path, manifest)
    return out


@pytest.fixture(scope="session")
def encoder256(tmp_path_factory) -> Path:
    return make_contentvec_checkpoint(tmp_path_factory.mktemp("enc") / "checkpoint_best_legacy_500.pt",
                                      final_dim=256, seed=3)


@pytest.fixture(scope="session")
def encoder768(tmp_path_factory) -> Path:
    # vec768l12 reads the transformer width (embed_dim), so the encoder must be 768 wide for a 768 model
    return make_contentvec_checkpoint(tmp_path_factory.mktemp("enc768") / "checkpoint_best_legacy_500.pt",
                                      embed_dim=768, ffn_dim=256, heads=4, layers=12, seed=4)


@pytest.fixture(scope="session")
def clip():
    """A 3 s sung phrase at 44.1 kHz (one slicer gap)."""
    return sung_phrase(3.0), 44100
