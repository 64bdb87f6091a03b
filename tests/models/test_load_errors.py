"""load_upstream_state_dict: clear errors for mismatched files; release/fp16 files load."""
from __future__ import annotations

import pytest
import torch

from svc_core.errors import ModelError


def test_missing_key_is_named(small_model):
    state = small_model().upstream_state_dict()
    del state["dec.conv_post.weight_v"]
    with pytest.raises(ModelError, match=r"missing keys: dec\.conv_post\.weight_v"):
        small_model().load_upstream_state_dict(state)


def test_unexpected_key_is_named(small_model):
    state = dict(small_model().upstream_state_dict())
    state["emb_spk.weight"] = torch.zeros(3, 32)
    with pytest.raises(ModelError, match=r"unexpected keys: emb_spk\.weight"):
        small_model().load_upstream_state_dict(state)


def test_wrong_shape_is_named_with_both_shapes(small_model):
    state = small_model(n_speakers=5).upstream_state_dict()
    with pytest.raises(ModelError, match=r"emb_g\.weight \[5, 32\] \(model expects \[3, 32\]\)"):
        small_model().load_upstream_state_dict(state)


def test_many_problems_are_summarised(small_model):
    state = small_model().upstream_state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("enc_p.")}
    with pytest.raises(ModelError, match=r"and \d+ more"):
        small_model().load_upstream_state_dict(state)


def test_release_file_without_enc_q_and_fp16_loads(small_model, small_inputs):
    source = small_model()
    release = {k: v.half() for k, v in source.upstream_state_dict().items() if "enc_q" not in k}
    target = small_model(n_speakers=3)
    target.load_upstream_state_dict(release)
    assert all(p.dtype == torch.float32 for p in target.parameters())
    expected = {k: v.half().float() for k, v in source.upstream_state_dict().items() if "enc_q" not in k}
    loaded = target.upstream_state_dict()
    assert all(torch.equal(loaded[k], expected[k]) for k in expected)


def test_folded_model_reads_and_writes_upstream_layout(small_model, small_inputs):
    inputs = small_inputs()
    folded = small_model().fold_weight_norm()
    reference, _ = folded.infer(**inputs, noise_scale=0.3)
    state = folded.upstream_state_dict()
    assert "dec.conv_pre.weight_g" in state and "dec.conv_pre.weight" not in state
    fresh = small_model(resblock="1")
    with torch.no_grad():
        for p in fresh.parameters():
            p.mul_(0.5)
    fresh.load_upstream_state_dict(state)
    audio, _ = fresh.infer(**inputs, noise_scale=0.3)
    assert float((audio - reference).abs().max()) <= 1e-5
    refolded = small_model().fold_weight_norm()
    refolded.load_upstream_state_dict(state)
    again, _ = refolded.infer(**inputs, noise_scale=0.3)
    assert float((again - reference).abs().max()) <= 1e-5


def test_non_tensor_state_is_refused(small_model):
    with pytest.raises(ModelError, match="not a dict of tensors"):
        small_model().load_upstream_state_dict({"emb_g.weight": [1, 2]})
