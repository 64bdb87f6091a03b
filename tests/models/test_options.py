"""Every model option builds, round-trips the upstream state dict, and infers deterministically."""
from __future__ import annotations

import logging

import pytest
import torch

from svc_core.errors import ModelError

OPTIONS = {
    "default": {},
    "vol_embedding": {"vol_embedding": True},
    "depthwise": {"use_depthwise_conv": True},
    "shared_flow": {"flow_share_parameter": True},
    "transformer_flow": {"use_transformer_flow": True},
    "transformer_flow_shared": {"use_transformer_flow": True, "flow_share_parameter": True},
    "n_flow_layer_3": {"n_flow_layer": 3},
    "n_flow_layer_6": {"n_flow_layer": 6},
    "no_f0_decoder": {"use_automatic_f0_prediction": False},
    "resblock_2": {"resblock": "2"},
}


def _infer(model, inputs, **kw):
    args = dict(inputs)
    args.update(kw)
    return model.infer(**args)


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_option_round_trips_and_infers_deterministically(option, small_model, small_inputs):
    model = small_model(**OPTIONS[option])
    inputs = small_inputs()
    state = model.upstream_state_dict()
    assert any(k.endswith(".weight_g") for k in state) and not any("parametrizations" in k for k in state)

    other = small_model(**OPTIONS[option])
    with torch.no_grad():  # make the second model differ, then load the first one's weights into it
        for p in other.parameters():
            p.add_(0.01)
    other.load_upstream_state_dict(state)
    reloaded = other.upstream_state_dict()
    assert list(reloaded) == list(state)
    assert all(torch.equal(reloaded[k], state[k]) for k in state)

    model.fold_weight_norm()
    audio, f0 = _infer(model, inputs, noise_scale=0.5)
    again, _ = _infer(model, inputs, noise_scale=0.5)
    other_seed, _ = _infer(model, inputs, noise_scale=0.5, seed=7)
    frames = inputs["c"].shape[-1]
    assert audio.shape == (1, 1, frames * 512) and f0.shape == (1, frames)
    assert torch.isfinite(audio).all()
    assert torch.equal(audio, again)
    assert not torch.equal(audio, other_seed)
    reference, _ = _infer(other.fold_weight_norm(), inputs, noise_scale=0.5)
    assert float((reference - audio).abs().max()) <= 1e-6


def test_shared_flow_state_has_wn_and_duplicates(small_model):
    state = small_model(flow_share_parameter=True).upstream_state_dict()
    wn_keys = [k for k in state if k.startswith("flow.wn.")]
    assert wn_keys
    for k in (0, 2, 4, 6):
        for key in wn_keys:
            dup = key.replace("flow.wn.", f"flow.flows.{k}.enc.")
            assert torch.equal(state[dup], state[key])


def test_shared_flow_loads_without_duplicate_keys(small_model, small_inputs):
    source = small_model(flow_share_parameter=True)
    state = {k: v for k, v in source.upstream_state_dict().items() if ".enc." not in k or not k.startswith("flow.")}
    target = small_model(flow_share_parameter=True)
    target.load_upstream_state_dict(state)
    a, _ = source.infer(**small_inputs(), noise_scale=0.0)
    b, _ = target.infer(**small_inputs(), noise_scale=0.0)
    assert torch.equal(a, b)


@pytest.mark.parametrize("depth", [3, 6])
def test_n_flow_layer_is_wn_depth_in_residual_flow(small_model, depth):
    state = small_model(n_flow_layer=depth).upstream_state_dict()
    in_layers = {k.split(".")[5] for k in state if k.startswith("flow.flows.0.enc.in_layers.")}
    assert len(in_layers) == depth
    assert {k.split(".")[2] for k in state if k.startswith("flow.flows.")} == {"0", "2", "4", "6"}


def test_n_flow_layer_is_flow_count_in_transformer_flow(small_model):
    state = small_model(use_transformer_flow=True, n_flow_layer=3).upstream_state_dict()
    assert {k.split(".")[2] for k in state if k.startswith("flow.flows.")} == {"0", "2", "4"}
    assert "flow.flows.0.enc.cond_pre.weight" in state
    assert "flow.flows.0.enc.cond_layer.weight_g" in state


def test_depthwise_only_changes_wn_in_layers(small_model):
    plain = small_model().upstream_state_dict()
    depthwise = small_model(use_depthwise_conv=True).upstream_state_dict()
    changed = {k for k in set(plain) ^ set(depthwise)}
    assert changed and all(".in_layers." in k and (k.startswith("flow.") or k.startswith("enc_q.")) for k in changed)
    assert depthwise["flow.flows.0.enc.in_layers.0.depth_conv.weight_v"].shape == (32, 1, 5)


def test_vol_changes_output_only_with_vol_embedding(small_model, small_inputs):
    inputs = small_inputs()
    with_vol = small_model(vol_embedding=True).fold_weight_norm()
    a, _ = with_vol.infer(**inputs, noise_scale=0.0)
    b, _ = with_vol.infer(**{**inputs, "vol": inputs["vol"] * 3}, noise_scale=0.0)
    assert not torch.equal(a, b)
    plain = small_model().fold_weight_norm()
    c, _ = plain.infer(**inputs, noise_scale=0.0)
    d, _ = plain.infer(**{**inputs, "vol": None}, noise_scale=0.0)
    assert torch.equal(c, d)


def test_predict_f0_is_ignored_with_a_warning_without_f0_decoder(small_model, small_inputs, caplog):
    model = small_model(use_automatic_f0_prediction=False)
    assert not any(k.startswith("f0_decoder.") for k in model.upstream_state_dict())
    inputs = small_inputs()
    plain, f0_plain = model.infer(**inputs, noise_scale=0.0)
    with caplog.at_level(logging.WARNING, logger="svc_core.models.synthesizer"):
        ignored, f0_ignored = model.infer(**inputs, noise_scale=0.0, predict_f0=True)
    assert torch.equal(plain, ignored) and torch.equal(f0_ignored, inputs["f0"])
    assert "predict_f0 ignored" in caplog.text


def test_predict_f0_replaces_f0_with_f0_decoder(small_model, small_inputs):
    model = small_model()
    inputs = small_inputs()
    _, f0 = model.infer(**inputs, noise_scale=0.0, predict_f0=True)
    assert f0.shape == inputs["f0"].shape and not torch.allclose(f0, inputs["f0"])


def test_speaker_mix_matrix(small_model, small_inputs):
    model = small_model().fold_weight_norm()
    inputs = small_inputs()
    frames = inputs["c"].shape[-1]
    one_hot = torch.zeros(frames, 3)
    one_hot[:, 1] = 1.0
    by_id, _ = model.infer(**inputs, noise_scale=0.0)
    by_mix, _ = model.infer(**{**inputs, "g": one_hot}, noise_scale=0.0)
    assert float((by_id - by_mix).abs().max()) <= 1e-5
    half = torch.zeros(frames, 3)
    half[:, 0] = half[:, 1] = 0.5
    blended, _ = model.infer(**{**inputs, "g": half}, noise_scale=0.0)
    assert float((blended - by_id).abs().max()) > 1e-3
    expected = 0.5 * (model.emb_g.weight[0] + model.emb_g.weight[1])
    cond = model.speaker_condition(half)
    assert cond.shape == (1, 32, frames)
    assert torch.allclose(cond[0, :, 5], expected, atol=1e-6)


def test_speaker_mix_with_wrong_width_or_length_is_refused(small_model, small_inputs):
    model = small_model()
    inputs = small_inputs()
    with pytest.raises(ModelError, match="speaker-mix matrix must have shape"):
        model.infer(**{**inputs, "g": torch.ones(inputs["c"].shape[-1], 2) / 2})
    with pytest.raises(ModelError, match="one row of speaker weights per frame"):
        model.infer(**{**inputs, "g": torch.ones(5, 3) / 3})


def test_bad_speaker_id_and_content_width_are_refused(small_model, small_inputs):
    model = small_model()
    inputs = small_inputs()
    with pytest.raises(ModelError, match="out of range"):
        model.infer(**{**inputs, "g": torch.LongTensor([[3]])})
    with pytest.raises(ModelError, match="ssl_dim 256"):
        model.infer(**small_inputs(ssl_dim=768))


def test_snake_vocoder_is_refused_clearly(small_model):
    with pytest.raises(ModelError, match="not supported yet"):
        small_model(vocoder_name="nsf-snake-hifigan")


@pytest.mark.parametrize("frames", [1, 3, 9])
def test_short_inputs_shorter_and_longer_than_attention_window(small_model, small_inputs, frames):
    model = small_model()
    audio, _ = model.infer(**small_inputs(frames=frames), noise_scale=0.0)
    assert audio.shape == (1, 1, frames * 512) and torch.isfinite(audio).all()


def test_weight_normed_layers_are_trainable(small_model, small_inputs):
    model = small_model().train()
    inputs = small_inputs()
    x_mask = torch.ones(1, 1, inputs["c"].shape[-1])
    g = model.speaker_condition(inputs["g"])
    z = torch.randn(1, 32, inputs["c"].shape[-1])
    model.flow.flows[0].post.weight.data.normal_(0, 0.1)  # zero-initialised post would block gradients
    out = model.flow(z, x_mask, g=g, reverse=False)
    out.pow(2).mean().backward()
    g_param = model.flow.flows[0].enc.in_layers[0].parametrizations.weight.original0
    v_param = model.flow.flows[0].enc.in_layers[0].parametrizations.weight.original1
    assert g_param.grad is not None and v_param.grad is not None and float(v_param.grad.abs().sum()) > 0


def test_training_forward_shapes_and_gradients(small_model):
    model = small_model().train()
    frames, segment = 24, 20
    gen = torch.Generator().manual_seed(5)
    c = torch.randn(2, 256, frames, generator=gen)
    f0 = torch.full((2, frames), 200.0)
    uv = torch.ones(2, frames)
    spec = torch.rand(2, 1025, frames, generator=gen)
    lengths = torch.LongTensor([frames, frames - 2])
    audio, ids, spec_mask, (z, z_p, m_p, logs_p, m_q, logs_q), pred_lf0, norm_lf0, lf0 = model(
        c, f0, uv, spec, torch.LongTensor([[0], [2]]), lengths, lengths)
    assert audio.shape == (2, 1, segment * 512)
    assert ids.shape == (2,) and int(ids.max()) <= frames - segment
    assert z.shape == z_p.shape == m_p.shape == m_q.shape == (2, 32, frames)
    assert float(spec_mask[1, 0, -2:].sum()) == 0.0
    assert pred_lf0.shape == norm_lf0.shape == lf0.shape == (2, 1, frames)
    (audio.pow(2).mean() + (pred_lf0 - lf0).pow(2).mean() + m_q.pow(2).mean()).backward()
    assert model.dec.conv_pre.parametrizations.weight.original1.grad is not None
    assert model.enc_q.pre.weight.grad is not None and model.f0_decoder.proj.weight.grad is not None
