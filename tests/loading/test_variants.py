"""Every config variant the factory writes loads, reproduces the saved model and infers."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from factories import infer_inputs, make_config_dict, make_random_synthesizer, make_upstream_checkpoint
from svc_core.checkpoint import detect_options, load_synthesizer, read_generator_state, save_generator_checkpoint

FRAMES = 8


def _audio(model: torch.nn.Module, ssl_dim: int, vol: bool, predict_f0: bool = False) -> torch.Tensor:
    x = infer_inputs(ssl_dim, frames=FRAMES, speaker=0, vol=vol)
    with torch.no_grad():
        audio, _ = model.infer(x["c"], x["f0"], x["uv"], x["g"], noise_scale=0.35, vol=x["vol"],
                               predict_f0=predict_f0)
    return audio


VARIANTS = {
    "vol_embedding": dict(vol_embedding=True),
    "depthwise": dict(use_depthwise_conv=True),
    "shared_flow": dict(flow_share_parameter=True),
    "transformer_flow": dict(use_transformer_flow=True, n_flow_layer=2),
    "transformer_flow_shared": dict(use_transformer_flow=True, flow_share_parameter=True),
    "n_flow_layer_2": dict(n_flow_layer=2),
    "no_f0_decoder": dict(use_automatic_f0_prediction=False),
    "one_speaker": dict(n_speakers=1),
    "five_speakers": dict(n_speakers=5),
    "hubertsoft": dict(speech_encoder="hubertsoft"),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_round_trip(tmp_path: Path, name: str) -> None:
    kwargs = VARIANTS[name]
    g_path, c_path = make_upstream_checkpoint(tmp_path, seed=11, **kwargs)
    model = load_synthesizer(g_path, c_path)
    hp = model.config.model
    for key, value in kwargs.items():
        if key != "speech_encoder":
            assert getattr(hp, key) == value, key
    found = detect_options(read_generator_state(g_path))
    for flag in ("vol_embedding", "use_depthwise_conv", "flow_share_parameter", "use_transformer_flow",
                 "use_automatic_f0_prediction", "n_speakers", "n_flow_layer"):
        assert found[flag] == getattr(hp, flag), flag

    # The loaded model computes what the in-memory model that was saved computes.
    reference = make_random_synthesizer(make_config_dict(**kwargs), seed=11).fold_weight_norm()
    vol = hp.vol_embedding
    expected = _audio(reference, hp.ssl_dim, vol)
    got = _audio(model, hp.ssl_dim, vol)
    assert got.shape == (1, 1, FRAMES * 512)
    assert torch.isfinite(got).all() and got.abs().max() > 0
    # same weights, same math; the inference attention's block products may round differently with the tensors'
    # memory layout (measured up to 1.8e-6 of audio), so not bit-equal
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_no_f0_decoder_ignores_predict_f0(tmp_path: Path) -> None:
    model = load_synthesizer(*make_upstream_checkpoint(tmp_path, use_automatic_f0_prediction=False, seed=2))
    assert not hasattr(model, "f0_decoder")
    torch.testing.assert_close(_audio(model, 768, False, predict_f0=True), _audio(model, 768, False))


def test_40_config_with_256_dim(tmp_path: Path) -> None:
    g_path, c_path = make_upstream_checkpoint(tmp_path, config_version="4.0", ssl_dim=256, seed=3)
    text = c_path.read_text()
    assert "speech_encoder" not in text and "unit_interpolate_mode" not in text and "vol_embedding" not in text
    model = load_synthesizer(g_path, c_path)
    assert model.config.version == "4.0"
    assert model.config.speech_encoder == "vec256l9" and model.config.speech_encoder_inferred
    assert model.config.unit_interpolate_mode == "left"
    assert torch.isfinite(_audio(model, 256, False)).all()


def test_release_without_enc_q(tmp_path: Path) -> None:
    g_path, c_path = make_upstream_checkpoint(tmp_path, release=True, seed=4)
    saved = torch.load(g_path, weights_only=True)
    assert set(saved) == {"model", "iteration", "optimizer", "learning_rate"}
    assert not any("enc_q" in k for k in saved["model"])
    model = load_synthesizer(g_path, c_path)
    full = load_synthesizer(*make_upstream_checkpoint(tmp_path / "full", seed=4))
    torch.testing.assert_close(_audio(model, 768, False), _audio(full, 768, False), rtol=0, atol=0)


def test_fp16_release_matches_fp32_within_rounding(tmp_path: Path) -> None:
    g16, c16 = make_upstream_checkpoint(tmp_path / "half", release=True, half=True, seed=5)
    g32, c32 = make_upstream_checkpoint(tmp_path / "full", seed=5)
    state16 = read_generator_state(g16)
    assert {v.dtype for v in state16.values() if v.is_floating_point()} == {torch.float16}
    state32 = read_generator_state(g32)
    for key, value in state16.items():
        torch.testing.assert_close(value, state32[key].half(), rtol=0, atol=0)
    m16, m32 = load_synthesizer(g16, c16), load_synthesizer(g32, c32)
    assert all(p.dtype == torch.float32 for p in m16.parameters())
    a16, a32 = _audio(m16, 768, False), _audio(m32, 768, False)
    assert not torch.equal(a16, a32), "fp16 weights should change the output a little"
    err = (a16 - a32).abs().max().item()
    assert err < 0.02 * a32.abs().max().item(), err


def test_training_layout_and_variants_of_container(tmp_path: Path, base_model: tuple[Path, Path]) -> None:
    """Bare state dicts, 'module.' prefixes and dicts without 'iteration' all load to the same tensors."""
    g_path, c_path = base_model
    saved = torch.load(g_path, weights_only=True)
    assert saved["iteration"] == 0 and saved["learning_rate"] == pytest.approx(1e-4)
    assert isinstance(saved["optimizer"], dict) and "param_groups" in saved["optimizer"]
    assert any(k.startswith("enc_q.") for k in saved["model"])
    reference = read_generator_state(g_path)
    variants = {
        "bare.pth": saved["model"],
        "module.pth": {f"module.{k}": v for k, v in saved["model"].items()},
        "model_only.pth": {"model": saved["model"]},
    }
    for file_name, obj in variants.items():
        torch.save(obj, tmp_path / file_name)
        state = read_generator_state(tmp_path / file_name)
        assert state.keys() == reference.keys(), file_name
        assert all(torch.equal(state[k], reference[k]) for k in reference), file_name
    load_synthesizer(tmp_path / "module.pth", c_path)


def test_save_loaded_model_round_trips(tmp_path: Path, base_model: tuple[Path, Path]) -> None:
    """A folded, loaded model saves back to the same upstream tensors (within fold rounding)."""
    g_path, c_path = base_model
    model = load_synthesizer(g_path, c_path)
    save_generator_checkpoint(model, tmp_path / "G_again.pth", iteration=3, lr=2e-4)
    again = torch.load(tmp_path / "G_again.pth", weights_only=True)
    assert again["iteration"] == 3 and again["learning_rate"] == pytest.approx(2e-4)
    original = read_generator_state(g_path)
    assert again["model"].keys() == original.keys()
    reloaded = load_synthesizer(tmp_path / "G_again.pth", c_path)
    torch.testing.assert_close(_audio(reloaded, 768, False), _audio(model, 768, False), rtol=0, atol=1e-5)
