"""`mix-models`: upstream's static voice mixing (convex / linear blends of one architecture's models)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from factories import infer_inputs, make_config_dict, make_random_synthesizer
from svc_core.checkpoint import load_synthesizer, read_generator_state, save_generator_checkpoint
from svc_core.cli import main
from svc_core.errors import ModelError, OptionError
from svc_core.model_mix import mix_models, mix_weights


@pytest.fixture(scope="module")
def voices(tmp_path_factory) -> dict[str, Path]:
    """Two single-speaker models of one architecture (different seeds), a third of another, and their configs."""
    root = tmp_path_factory.mktemp("mix")
    files = {}
    for name, encoder, seed in (("a", "vec256l9", 1), ("b", "vec256l9", 2), ("other", "vec768l12", 3)):
        doc = make_config_dict(speech_encoder=encoder, n_speakers=1, speakers={name: 0})
        save_generator_checkpoint(make_random_synthesizer(doc, seed=seed), root / f"G_{name}.pth")
        (root / f"{name}.json").write_text(json.dumps(doc), encoding="utf-8")
        files[name], files[f"{name}_config"] = root / f"G_{name}.pth", root / f"{name}.json"
    return files


def test_weights_follow_upstream():
    expected = torch.softmax(torch.tensor([0.6, 0.4], dtype=torch.float64), 0)
    assert torch.allclose(mix_weights([60, 40], "convex"), expected)
    assert mix_weights([60, 40], "linear").tolist() == pytest.approx([0.6, 0.4])


@pytest.mark.parametrize("mode", ["convex", "linear"])
def test_every_tensor_is_the_weighted_sum(voices, tmp_path, mode):
    out = tmp_path / "mixed.pth"
    info = mix_models([voices["a"], voices["b"]], [70, 30], voices["a_config"], out, mode=mode)
    wa, wb = info["weights"]
    a, b, m = (read_generator_state(p) for p in (voices["a"], voices["b"], out))
    assert set(m) == {k for k in a if not k.startswith("enc_q.")}
    assert all(torch.allclose(m[k], wa * a[k] + wb * b[k], atol=1e-6) for k in m)
    model = load_synthesizer(out, voices["a_config"])  # a working voice
    x = infer_inputs(model.config.model.ssl_dim, frames=16)
    assert torch.isfinite(model.infer(x["c"], x["f0"], x["uv"], x["g"], noise_scale=0.0)[0]).all()


def test_cli_and_refusals(voices, tmp_path, capsys):
    out = tmp_path / "m.pth"
    assert main(["mix-models", "-i", f"{voices['a']}:50", str(voices["b"]), "-c", str(voices["a_config"]),
                 "-o", str(out), "--mode", "linear"]) == 0  # b takes upstream's default 100
    assert "linear mix: G_a.pth x 0.5000, G_b.pth x 1.0000" in capsys.readouterr().out
    with pytest.raises(ModelError):  # another architecture: named by the config check, nothing written
        mix_models([voices["a"], voices["other"]], [50, 50], voices["a_config"], tmp_path / "x.pth")
    with pytest.raises(OptionError, match="is one of the models being mixed"):
        mix_models([voices["a"], out], [50, 50], voices["a_config"], out)
    with pytest.raises(OptionError, match="two or more models"):
        mix_models([voices["a"]], [100], voices["a_config"], tmp_path / "y.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]
