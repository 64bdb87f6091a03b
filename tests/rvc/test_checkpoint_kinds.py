"""Applio's voice files and RVC's training checkpoints (G_*.pth): what loads, and what is refused by name."""
from __future__ import annotations

import json

import pytest
import torch
from rvc_factories import SMALL_SIZES, make_random_net, make_rvc_model

from svc_core.errors import ModelError
from svc_core.rvc.checkpoint import read_rvc_checkpoint, rvc_kind, save_rvc_small, save_rvc_training
from svc_core.rvc.hparams import preset
from svc_core.rvc.voice import load_rvc_voice
from svc_core.safe_load import load_torch


def _rewrite(path, change):
    obj = torch.load(path, weights_only=True)
    change(obj)
    torch.save(obj, path)
    return path


def test_applio_default_file_loads(tmp_path):
    path = make_rvc_model(tmp_path / "applio.pth", "v2", "48k", kind="applio", speakers=2, seed=2)
    obj = load_torch(path)
    assert rvc_kind(obj) == "applio" and "info" not in obj and obj["sr"] == 48000 and obj["f0"] is True
    voice = load_rvc_voice(path)
    assert voice.meta["kind"] == "applio" and voice.meta["vocoder"] == "HiFi-GAN"
    assert voice.meta["embedder_model"] == "contentvec" and voice.meta["speakers_id"] == 2
    assert voice.config.sampling_rate == 48000 and voice.config.n_speakers == 2


def test_applio_weights_equal_rvc_small_weights(tmp_path):
    """Same network, Applio's fields on top: the loaded weights are the same tensors."""
    a = read_rvc_checkpoint(make_rvc_model(tmp_path / "a.pth", kind="applio", seed=9)).build().rvc_state()
    b = read_rvc_checkpoint(make_rvc_model(tmp_path / "b.pth", kind="rvc-small", seed=9)).build().rvc_state()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("vocoder", ["MRF HiFi-GAN", "RefineGAN"])
def test_applio_other_vocoders_refused_by_name(tmp_path, vocoder):
    path = _rewrite(make_rvc_model(tmp_path / "v.pth", kind="applio"), lambda o: o.__setitem__("vocoder", vocoder))
    with pytest.raises(ModelError, match=f"'{vocoder}' vocoder.*Only Applio's default 'HiFi-GAN'"):
        read_rvc_checkpoint(path)


@pytest.mark.parametrize("embedder", ["spin", "chinese-hubert-base", "custom"])
def test_applio_other_embedders_refused_by_name(tmp_path, embedder):
    path = _rewrite(make_rvc_model(tmp_path / "e.pth", kind="applio"),
                    lambda o: o.__setitem__("embedder_model", embedder))
    with pytest.raises(ModelError, match=f"'{embedder}'.*ContentVec \\('contentvec'"):
        read_rvc_checkpoint(path)


def test_applio_24k_loads_and_odd_rates_are_refused(tmp_path):
    hp = preset("v2", "32k", spk_embed_dim=1, **SMALL_SIZES).with_(sr=24000, upsample_rates=(10, 6, 2, 2),
                                                                      upsample_kernel_sizes=(20, 12, 4, 4))
    path = tmp_path / "24k.pth"
    applio = {"vocoder": "HiFi-GAN", "embedder_model": "contentvec", "sr": 24000, "f0": True, "speakers_id": 1}
    save_rvc_small(make_random_net(hp), hp, path, extra=applio)
    assert load_rvc_voice(path).config.hop_length == 240
    save_rvc_small(make_random_net(hp), hp, path, extra={"sr": 24000})  # RVC has no 24k
    with pytest.raises(ModelError, match="24000 Hz is not one of RVC's"):
        read_rvc_checkpoint(path)
    odd = hp.with_(upsample_rates=(5, 12, 2, 2), upsample_kernel_sizes=(11, 24, 4, 4))
    save_rvc_small(make_random_net(odd), odd, path, extra=applio)
    with pytest.raises(ModelError, match="odd factors \\[5\\]"):
        read_rvc_checkpoint(path)


@pytest.mark.parametrize("version,sr,f0", [("v2", "40k", True), ("v1", "32k", True), ("v2", "48k", False)])
def test_training_checkpoint_with_its_config(tmp_path, version, sr, f0):
    path = make_rvc_model(tmp_path / "logs" / "exp" / "G_2333.pth", version, sr, f0, kind="rvc-training", seed=4)
    assert (path.parent / "config.json").is_file()
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.kind == "rvc-training" and ckpt.meta["iteration"] == 5
    assert ckpt.meta["hparams_from"].endswith("config.json")
    assert ckpt.hparams.sr == int(sr[:2]) * 1000 and ckpt.hparams.f0 == f0 and ckpt.hparams.version == version
    assert any(k.startswith("enc_q.") for k in ckpt.state)
    net = ckpt.build(posterior=True)  # a training checkpoint resumes with its posterior
    saved = torch.load(path, weights_only=True)["model"]
    back = net.rvc_state(include_posterior=True)
    assert back.keys() == saved.keys() and all(torch.equal(back[k], v) for k, v in saved.items())
    voice = load_rvc_voice(path)  # and loads directly as a voice
    assert voice.config.sampling_rate == ckpt.hparams.sr


@pytest.mark.parametrize("version,sr,f0", [("v2", "32k", True), ("v1", "48k", True), ("v1", "40k", False)])
def test_training_checkpoint_without_config_uses_shapes(tmp_path, version, sr, f0):
    path = make_rvc_model(tmp_path / "G_1.pth", version, sr, f0, kind="rvc-training")
    (tmp_path / "config.json").unlink()
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.meta["hparams_from"] == "tensor shapes"
    expected = make_rvc_model(tmp_path / "small.pth", version, sr, f0)
    assert ckpt.hparams.to_config_list()[2:] == read_rvc_checkpoint(expected).hparams.to_config_list()[2:]
    ckpt.build(posterior=True)


def test_ambiguous_training_checkpoint_asks_for_its_config(tmp_path):
    """No-pitch v1 32k and 48k decoders have identical shapes: the sample rate needs config.json."""
    path = make_rvc_model(tmp_path / "G_1.pth", "v1", "48k", f0=False, kind="rvc-training")
    (tmp_path / "config.json").unlink()
    with pytest.raises(ModelError, match="fits 32k and 48k alike.*config.json"):
        read_rvc_checkpoint(path)
    net = make_random_net(preset("v1", "48k", False, spk_embed_dim=1, **SMALL_SIZES), posterior=True)
    save_rvc_training(net, tmp_path / "G_1.pth")  # config.json written beside it
    assert read_rvc_checkpoint(path).hparams.sr == 48000
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["data"]["hop_length"] == 480 and config["model"]["upsample_rates"] == [10, 6, 2, 2, 2]


def test_applio_training_checkpoint_keys(tmp_path):
    """Applio's G_*.pth holds parametrised weight-norm names (and DDP's module. prefix in some runs)."""
    net = make_random_net(preset("v2", "40k", spk_embed_dim=1, **SMALL_SIZES), posterior=True)
    path = tmp_path / "G_9.pth"
    torch.save({"model": {"module." + k: v for k, v in net.state_dict().items()}, "iteration": 9}, path)
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.hparams.sr == 40000 and ckpt.hparams.version == "v2"
    ckpt.build(posterior=True)


def test_training_config_that_does_not_fit(tmp_path):
    path = make_rvc_model(tmp_path / "G_1.pth", "v2", "40k", kind="rvc-training")
    config = json.loads((tmp_path / "config.json").read_text())
    config["model"]["upsample_rates"] = [12, 10, 2, 2]
    config["model"]["upsample_kernel_sizes"] = [24, 20, 4, 4]
    config["data"]["sampling_rate"] = 48000
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="wrong shapes: dec.ups.0"):
        load_rvc_voice(path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="could not be read as JSON"):
        read_rvc_checkpoint(path)
