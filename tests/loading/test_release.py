"""`compress-model`: a release file from a training checkpoint (upstream's compress_model.py), safe and exact."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from factories import infer_inputs, make_config_dict, make_random_synthesizer
from svc_core.checkpoint import load_synthesizer, read_generator_state, save_generator_checkpoint
from svc_core.cli import main
from svc_core.errors import ModelError, OptionError
from svc_core.release import write_release
from svc_core.safe_load import load_torch


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A training checkpoint as upstream writes it mid-run: enc_q plus a filled AdamW state (one step taken)."""
    root = tmp_path_factory.mktemp("trained")
    doc = make_config_dict(speech_encoder="vec256l9", n_speakers=2, speakers={"a": 0, "b": 1})
    model = make_random_synthesizer(doc, seed=5)
    optimizer = torch.optim.AdamW(model.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    torch.manual_seed(0)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    optimizer.step()
    (root / "config.json").write_text(json.dumps(doc), encoding="utf-8")
    save_generator_checkpoint(model, root / "G_800.pth", iteration=800, optimizer=optimizer)
    return root / "G_800.pth", root / "config.json"


def _audio(g: Path, config: Path) -> torch.Tensor:
    model = load_synthesizer(g, config)
    x = infer_inputs(model.config.model.ssl_dim, frames=20)
    return model.infer(x["c"], x["f0"], x["uv"], x["g"], noise_scale=0.0)[0]


def test_release_keeps_every_inference_tensor_exactly(trained, tmp_path):
    g, config = trained
    out = tmp_path / "release.pth"
    info = write_release(g, out, config)
    before, after = read_generator_state(g), read_generator_state(out)
    assert set(after) == {k for k in before if not k.startswith("enc_q.")} and info["dropped"] > 0
    assert all(torch.equal(before[k], after[k]) for k in after)
    stored = load_torch(out)
    assert stored["optimizer"] is None and stored["iteration"] == 800
    assert info["bytes_out"] < info["bytes_in"] / 3  # enc_q and the AdamW moments were most of the file
    assert torch.equal(_audio(g, config), _audio(out, config))


def test_half_release(trained, tmp_path):
    g, config = trained
    out = tmp_path / "half.pth"
    assert main(["compress-model", "-i", str(g), "-c", str(config), "-o", str(out), "-hf"]) == 0
    state = read_generator_state(out)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    full, half = _audio(g, config), _audio(out, config)
    assert 0 < (full - half).abs().max() < 0.05


def test_refusals_leave_nothing_behind(trained, tmp_path, capsys):
    g, config = trained
    with pytest.raises(OptionError, match="is the input checkpoint"):
        write_release(g, g, config)
    with pytest.raises(OptionError, match="to a .pth name"):
        write_release(g, tmp_path / "release.onnx", config)
    wrong = tmp_path / "config.json"
    doc = json.loads(config.read_text())
    doc["model"]["ssl_dim"] = doc["model"]["gin_channels"] = 768
    doc["model"]["speech_encoder"] = "vec768l12"
    wrong.write_text(json.dumps(doc))
    assert main(["compress-model", "-i", str(g), "-c", str(wrong), "-o", str(tmp_path / "r.pth")]) == 2
    assert "768" in capsys.readouterr().err
    with pytest.raises(ModelError, match="does not exist"):
        write_release(tmp_path / "missing.pth", tmp_path / "r.pth", config)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]
