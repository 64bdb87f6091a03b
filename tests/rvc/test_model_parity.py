"""RvcSynthesizer.infer against RVC's own outputs (../shared/compat/parity/rvc, README sections 1 and 4).

Three calls per model: rec_ (RVC's recorded random draws replayed through RecordedNoise), zero_ (every draw zero),
skip_ (realtime form skip_head 30 / return_length 50). Every stored intermediate is compared at 1e-4.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from rvc_factories import parity_model

from svc_core.noise import RecordedNoise
from svc_core.rvc.checkpoint import read_rvc_checkpoint
from svc_core.rvc.voice import load_rvc_voice

MODELS = ["v2_40k_f0", "v1_40k_f0"]
TOL = 1e-4  # README section 7: ~1e-6 expected from op order alone
SKIP = {"skip_head": 30, "return_length": 50}


def _capture(net) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks recording the README's intermediates under its names (prefix added by the caller)."""
    seen: dict[str, torch.Tensor] = {}

    def keep(name, pick):
        def hook(_m, args, kwargs, out):
            seen[name] = pick(args, kwargs, out).detach().clone()
        return hook

    def add(module, name, pick):
        return module.register_forward_hook(keep(name, pick), with_kwargs=True)

    out_ = lambda a, k, o: o  # noqa: E731
    handles = [
        add(net.enc_p.emb_phone, "enc_p_emb_phone_out", out_),
        add(net.enc_p.emb_pitch, "enc_p_emb_pitch_out", out_),
        add(net.enc_p.encoder, "enc_p_encoder_in", lambda a, k, o: a[0]),
        add(net.enc_p.encoder, "enc_p_encoder_out", out_),
        add(net.flow, "flow_in", lambda a, k, o: a[0]),
        add(net.flow, "flow_out", out_),
        add(net.dec, "dec_in_x", lambda a, k, o: a[0]),
        add(net.dec, "dec_in_f0", lambda a, k, o: a[1]),
        add(net.dec, "dec_in_g", lambda a, k, o: k["g"]),
        add(net.dec.m_source, "dec_har_source_out", out_),
        add(net.dec.conv_pre, "dec_conv_pre_out", out_),
    ]
    n = len(net.flow.flows)
    for step in range(n):
        j = n - 1 - step
        handles.append(add(net.flow.flows[j], f"flow_rev_step{step}_flows{j}", out_))
    for i, up in enumerate(net.dec.ups):
        handles.append(add(up, f"dec_ups{i}_out", out_))
    return seen, handles


def _draws(data, prefix: str) -> list[np.ndarray]:
    keys = sorted((k for k in data.files if k.startswith(f"{prefix}_noise")), key=lambda k: int(k.split("_")[1][5:]))
    return [data[k] for k in keys]


def _run(voice, data, prefix: str):
    net = voice.net
    t = lambda k: torch.from_numpy(data[k])  # noqa: E731
    draws = _draws(data, "rec" if prefix == "zero" else prefix)
    if prefix == "zero":
        draws = [np.zeros_like(d) for d in draws]
    noise = RecordedNoise(draws)
    seen, handles = _capture(net)
    try:
        g = net.speaker_embedding(t("in_sid"))
        with torch.no_grad():
            out = net.infer(t("in_phone"), t("in_phone_lengths"), t("in_pitch"), t("in_nsff0"), g, noise,
                            **(SKIP if prefix == "skip" else {}))
    finally:
        for h in handles:
            h.remove()
    assert noise.exhausted, "RVC's draws were not all consumed"
    seen.update(o=out.o, x_mask=out.x_mask, z=out.z, z_p=out.z_p, m_p=out.m_p, logs_p=out.logs_p,
                emb_g_out=g[..., 0])
    return seen


@pytest.fixture(scope="module", params=MODELS)
def case(request, parity_dir):
    voice = load_rvc_voice(parity_model(request.param, parity_dir))
    data = np.load(parity_dir / "rvc" / f"infer_{request.param}.npz")
    return voice, data


@pytest.mark.parametrize("prefix", ["rec", "zero", "skip"])
def test_every_stored_array_matches(case, prefix):
    voice, data = case
    seen = _run(voice, data, prefix)
    stored = [k for k in data.files if k.startswith(prefix + "_") and "_noise" not in k]
    assert len(stored) >= 25
    for key in stored:
        name = key[len(prefix) + 1:]
        assert name in seen, f"{key} was not produced"
        ours, theirs = seen[name].float().numpy(), data[key]
        assert ours.shape == theirs.shape, (key, ours.shape, theirs.shape)
        assert np.abs(ours - theirs).max() <= TOL, (key, float(np.abs(ours - theirs).max()))


def test_zero_noise_is_the_prior_mean(case):
    """With zero draws z_p = m_p and the NSF source has no noise: the two runs really differ where noise enters."""
    voice, data = case
    zero = _run(voice, data, "zero")
    assert torch.equal(zero["z_p"], zero["m_p"] * zero["x_mask"])
    rec = _run(voice, data, "rec")
    assert float((rec["o"] - zero["o"]).abs().max()) > 1e-3


def test_loaded_exactly_as_rvc_does(parity_dir):
    """config[-3] := emb_g rows, class from (version, f0), fp16 weights upcast, no enc_q."""
    for name in MODELS:
        path = parity_model(name, parity_dir)
        raw = torch.load(path, weights_only=True)
        ckpt = read_rvc_checkpoint(path)
        expected = list(raw["config"])
        expected[-3] = raw["weight"]["emb_g.weight"].shape[0]
        assert ckpt.hparams.to_config_list() == expected
        assert ckpt.kind == "rvc-small" and ckpt.hparams.version == raw["version"] and ckpt.hparams.f0
        net = ckpt.build()
        assert not net.has_posterior
        ours = net.rvc_state()
        assert set(ours) == set(raw["weight"])
        for key, value in raw["weight"].items():
            assert ours[key].dtype == torch.float32
            assert torch.equal(ours[key], value.float()), key


@pytest.mark.parametrize("model", MODELS)
def test_pipeline_infer_call_matches(parity_dir, model):
    """The net_g.infer call inside RVC's whole pipeline run (one 698-frame segment, README section 5)."""
    voice = load_rvc_voice(parity_model(model, parity_dir))
    data = np.load(parity_dir / "rvc" / f"e2e_{model}.npz")
    t = lambda k: torch.from_numpy(data["vc0_infer_" + k])  # noqa: E731
    noise = RecordedNoise(_draws(data, "vc0"))
    with torch.no_grad():
        out = voice.net.infer(t("phone"), t("phone_lengths"), t("pitch"), t("nsff0"),
                              voice.net.speaker_embedding(t("sid")), noise)
    assert noise.exhausted and out.o.shape == (1, 1, 698 * voice.hparams.hop_length)
    for name in ("o", "x_mask", "z", "z_p", "m_p", "logs_p"):
        diff = np.abs(getattr(out, name).numpy() - data["vc0_infer_" + name]).max()
        assert diff <= TOL, (name, float(diff))
