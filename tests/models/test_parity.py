"""SynthesizerTrn.infer against upstream 4.1-Stable outputs on random weights (parity README section A)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

MODELS = ["small_vec768l12", "small_hubertsoft_vol"]
INTERMEDIATE_TOL = 1e-5
AUDIO_TOL = 1e-4
F0_TOL = 1e-3  # Hz; f0_out is the input passed through, f0_predicted goes through 10**x


def _capture(model) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks recording the README's intermediates (hooks return None: outputs unchanged)."""
    seen: dict[str, torch.Tensor] = {}

    def on_pre(_m, _i, out):
        seen["pre_out"] = out

    def on_enc_p(_m, inputs, out):
        seen["enc_p_in_x"] = inputs[0]
        seen["enc_p_z_p"], seen["enc_p_m_p"], seen["enc_p_logs_p"] = out

    def on_flow(_m, _i, out):
        seen["flow_out_z"] = out

    def on_dec(_m, inputs, _o):
        seen["dec_in_x"] = inputs[0]

    def on_source(_m, inputs, out):
        seen["dec_in_f0_upsampled"] = inputs[0]
        seen["dec_har_source"] = out[0]

    handles = [model.pre.register_forward_hook(on_pre), model.enc_p.register_forward_hook(on_enc_p),
               model.flow.register_forward_hook(on_flow), model.dec.register_forward_hook(on_dec),
               model.dec.m_source.register_forward_hook(on_source)]
    return seen, handles


def _inputs(ref):
    vol = torch.from_numpy(ref["in_vol"]) if "in_vol" in ref else None
    return dict(c=torch.from_numpy(ref["in_c"]), f0=torch.from_numpy(ref["in_f0"]), uv=torch.from_numpy(ref["in_uv"]),
                g=torch.from_numpy(ref["in_sid"]), vol=vol)


def _max_abs(ours: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(ours.shape) == ref.shape
    return float((ours.float() - torch.from_numpy(ref)).abs().max())


@pytest.fixture(scope="module", params=MODELS)
def parity_case(request, parity_dir, load_parity_model):
    ref = dict(np.load(parity_dir / f"infer_{request.param}.npz"))
    return request.param, load_parity_model(request.param).fold_weight_norm(), ref


def test_infer_intermediates_and_audio_match_upstream(parity_case):
    name, model, ref = parity_case
    seen, handles = _capture(model)
    try:
        audio, f0 = model.infer(**_inputs(ref), noise_scale=0.0, predict_f0=False)
    finally:
        for h in handles:
            h.remove()
    errors = {key: _max_abs(value, ref[key]) for key, value in seen.items()}
    assert sorted(errors) == sorted(["pre_out", "enc_p_in_x", "enc_p_z_p", "enc_p_m_p", "enc_p_logs_p", "flow_out_z",
                                     "dec_in_x", "dec_in_f0_upsampled", "dec_har_source"])
    assert max(errors.values()) <= INTERMEDIATE_TOL, errors
    assert _max_abs(audio, ref["audio"]) <= AUDIO_TOL
    assert _max_abs(f0, ref["f0_out"]) <= F0_TOL
    assert float(np.abs(ref["audio"]).max()) > 0.05  # the reference is not silence


def test_predict_f0_matches_upstream(parity_case):
    _, model, ref = parity_case
    audio, f0 = model.infer(**_inputs(ref), noise_scale=0.0, predict_f0=True)
    assert _max_abs(f0, ref["f0_predicted"]) <= F0_TOL
    assert _max_abs(audio, ref["audio_predict_f0"]) <= AUDIO_TOL
    assert float(np.abs(ref["f0_predicted"] - ref["f0_out"]).max()) > 1.0  # prediction really differs


def test_unfolded_weight_norm_gives_the_same_audio(parity_dir, load_parity_model):
    ref = dict(np.load(parity_dir / "infer_small_vec768l12.npz"))
    model = load_parity_model("small_vec768l12")  # parametrised (trainable) weights, not folded
    audio, _ = model.infer(**_inputs(ref), noise_scale=0.0)
    assert _max_abs(audio, ref["audio"]) <= AUDIO_TOL


def test_repeated_calls_are_bit_identical_and_noise_scale_matters(parity_case):
    _, model, ref = parity_case
    first, _ = model.infer(**_inputs(ref), noise_scale=0.4)
    second, _ = model.infer(**_inputs(ref), noise_scale=0.4)
    silent_noise, _ = model.infer(**_inputs(ref), noise_scale=0.0)
    assert torch.equal(first, second)
    assert float((first - silent_noise).abs().max()) > 1e-3
