"""RVC state-dict layout: the manifests of RVC's own files, and RVC's full-size shapes (spec k) for every preset."""
from __future__ import annotations

import json

import pytest
import torch
from rvc_factories import make_rvc_model

from svc_core.rvc.checkpoint import read_rvc_checkpoint, save_rvc_small
from svc_core.rvc.hparams import RvcHParams, preset
from svc_core.rvc.synthesizer import RvcSynthesizer

MANIFESTS = ["rvc_small_v2_40k_f0", "rvc_small_v1_40k_f0"]
# RVC's configs/<v>/<sr>.json: (upsample_rates, upsample_kernel_sizes, spec_channels) — spec k.
RVC_PRESETS = {
    ("v1", "32k"): ([10, 4, 2, 2, 2], [16, 16, 4, 4, 4], 513), ("v1", "40k"): ([10, 10, 2, 2], [16, 16, 4, 4], 1025),
    ("v1", "48k"): ([10, 6, 2, 2, 2], [16, 16, 4, 4, 4], 1025), ("v2", "32k"): ([10, 8, 2, 2], [20, 16, 4, 4], 513),
    ("v2", "40k"): ([10, 10, 2, 2], [16, 16, 4, 4], 1025), ("v2", "48k"): ([12, 10, 2, 2], [24, 20, 4, 4], 1025),
}


@pytest.mark.parametrize("name", MANIFESTS)
def test_written_file_matches_rvc_manifest(name, manifests_dir, tmp_path):
    """A net built from the manifest's config and written by save_rvc_small has RVC's keys, shapes and dtypes."""
    manifest = json.loads((manifests_dir / f"{name}.json").read_text())
    top = manifest["top_level"]
    hp = RvcHParams.from_config_list(top["config"], top["version"], bool(top["f0"]))
    path = tmp_path / "voice.pth"
    save_rvc_small(RvcSynthesizer(hp), hp, path, info=top["info"])
    obj = torch.load(path, weights_only=True)
    assert list(obj) == list(top)
    assert {k: v for k, v in obj.items() if k != "weight"} == {k: v for k, v in top.items() if k != "weight"}
    ours = {k: {"shape": list(v.shape), "dtype": str(v.dtype).replace("torch.", "")} for k, v in obj["weight"].items()}
    assert ours == manifest["state_dict"]


@pytest.mark.parametrize("version,sr", sorted(RVC_PRESETS))
def test_full_size_presets_have_rvc_shapes(version, sr):
    rates, kernels, spec = RVC_PRESETS[(version, sr)]
    hp = preset(version, sr)
    assert (list(hp.upsample_rates), list(hp.upsample_kernel_sizes), hp.spec_channels) == (rates, kernels, spec)
    assert hp.hop_length * 100 == hp.sr
    state = RvcSynthesizer(hp).rvc_state()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    width = 768 if version == "v2" else 256
    assert shapes["enc_p.emb_phone.weight"] == (192, width)
    assert shapes["enc_p.emb_pitch.weight"] == (256, 192)
    assert shapes["emb_g.weight"] == (109, 256)
    assert shapes["dec.cond.weight"] == (512, 256, 1)
    assert shapes["dec.conv_pre.weight"] == (512, 192, 7) and "dec.conv_pre.weight_g" not in shapes
    assert shapes["dec.conv_post.weight"] == (1, 512 // 2 ** len(rates), 7) and "dec.conv_post.bias" not in shapes
    assert shapes["dec.m_source.l_linear.weight"] == (1, 1)  # harmonic_num 0
    assert shapes["enc_p.encoder.attn_layers.0.emb_rel_k"] == (1, 21, 96)  # window 10, 2 heads
    assert "enc_p.pre.weight" not in shapes and not any(k.startswith("enc_q.") for k in shapes)
    for i, (u, k) in enumerate(zip(rates, kernels)):
        assert shapes[f"dec.ups.{i}.weight_v"] == (512 // 2 ** i, 512 // 2 ** (i + 1), k)
        assert shapes[f"dec.ups.{i}.weight_g"] == (512 // 2 ** i, 1, 1)  # dim 0 = input channels
    for j in (0, 2, 4, 6):
        assert f"flow.flows.{j}.enc.in_layers.2.weight_v" in shapes  # 3-layer WN
        assert f"flow.flows.{j}.enc.in_layers.3.weight_v" not in shapes
    posterior = RvcSynthesizer(hp, posterior=True).rvc_state(include_posterior=True)
    assert posterior["enc_q.pre.weight"].shape == (192, spec, 1)
    assert "enc_q.enc.in_layers.15.weight_v" in posterior


def test_full_size_factory_file_is_rvcs_layout(tmp_path):
    path = make_rvc_model(tmp_path / "full.pth", "v2", "48k", size="full")
    obj = torch.load(path, weights_only=True)
    assert obj["config"] == [1025, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, [12, 10, 2, 2],
                             512, [24, 20, 4, 4], 109, 256, 48000]
    assert (obj["sr"], obj["f0"], obj["version"]) == ("48k", 1, "v2")
    assert all(v.dtype == torch.float16 for v in obj["weight"].values())
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.hparams == preset("v2", "48k").with_(segment_size=32)
