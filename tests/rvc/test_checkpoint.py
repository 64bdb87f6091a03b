"""Reading and writing RVC voice files: RVC's small models, round trips, and clear errors for odd files."""
from __future__ import annotations

import pytest
import torch
from rvc_factories import make_hparams, make_random_net, make_rvc_model, parity_model

from svc_core.errors import ModelError, UnsafeFileError
from svc_core.rvc.checkpoint import read_rvc_checkpoint, rvc_kind, save_rvc_small
from svc_core.rvc.voice import load_rvc_voice


def _rewrite(src, dst, change):
    obj = torch.load(src, weights_only=True)
    change(obj)
    torch.save(obj, dst)
    return dst


@pytest.mark.parametrize("half", [True, False])
def test_round_trip_keeps_every_weight(tmp_path, half):
    hp = make_hparams("v2", "32k", speakers=2)
    net = make_random_net(hp, seed=4)
    path = tmp_path / "voice.pth"
    save_rvc_small(net, hp, path, info="7epoch", half=half)
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.kind == "rvc-small" and ckpt.meta["info"] == "7epoch" and ckpt.meta["sr"] == "32k"
    assert ckpt.hparams == hp.with_(segment_size=32)
    back = ckpt.build().rvc_state()
    for key, value in net.rvc_state().items():
        expected = value.half().float() if half else value
        assert torch.equal(back[key], expected), key


def test_kinds():
    assert rvc_kind({"weight": {}, "config": []}) == "rvc-small"
    assert rvc_kind({"weight": {}, "config": [], "vocoder": "HiFi-GAN"}) == "applio"
    assert rvc_kind({"model": {"enc_p.emb_phone.weight": torch.zeros(1)}, "iteration": 1}) == "rvc-training"
    assert rvc_kind({"model": {"enc_p.pre.weight": torch.zeros(1)}}) is None  # so-vits G_*.pth
    assert rvc_kind([1, 2]) is None and rvc_kind({"a": 1}) is None


def test_not_rvc_at_all(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"model": {"enc_p.pre.weight": torch.zeros(2, 2)}, "iteration": 3}, path)
    with pytest.raises(ModelError, match="not an RVC voice.*'model'"):
        read_rvc_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(ModelError, match="single tensor"):
        read_rvc_checkpoint(path)


def test_truncated_file(tmp_path, parity_dir):
    data = parity_model("v2_40k_f0", parity_dir).read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="cut.pth"):
        read_rvc_checkpoint(path)


def test_code_in_a_file_never_runs(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"weight": {}, "config": Evil()}, path)
    with pytest.raises(UnsafeFileError):
        read_rvc_checkpoint(path)


def test_v1_file_claiming_v2(tmp_path, parity_dir):
    path = _rewrite(parity_model("v1_40k_f0", parity_dir), tmp_path / "liar.pth",
                    lambda o: o.__setitem__("version", "v2"))
    with pytest.raises(ModelError, match="says version 'v2'.*256-d content.*RVC v1"):
        read_rvc_checkpoint(path)


def test_missing_version_means_v1_as_in_rvc(tmp_path, parity_dir):
    path = _rewrite(parity_model("v1_40k_f0", parity_dir), tmp_path / "old.pth", lambda o: o.pop("version"))
    assert read_rvc_checkpoint(path).hparams.version == "v1"
    path = _rewrite(parity_model("v2_40k_f0", parity_dir), tmp_path / "old2.pth", lambda o: o.pop("version"))
    with pytest.raises(ModelError, match="768-d content"):
        read_rvc_checkpoint(path)


def test_missing_and_wrong_width_weights(tmp_path, parity_dir):
    src = parity_model("v2_40k_f0", parity_dir)
    path = _rewrite(src, tmp_path / "a.pth", lambda o: o["weight"].pop("dec.conv_post.weight"))
    with pytest.raises(ModelError, match="missing keys: dec.conv_post.weight"):
        read_rvc_checkpoint(path).build()

    def widen(o):
        o["weight"]["enc_p.proj.weight"] = torch.zeros(128, 32, 1, dtype=torch.float16)
    path = _rewrite(src, tmp_path / "b.pth", widen)
    with pytest.raises(ModelError, match=r"wrong shapes: enc_p.proj.weight \[128, 32, 1\] \(expected \[64, 32, 1\]\)"):
        load_rvc_voice(path)
    path = _rewrite(src, tmp_path / "c.pth", lambda o: o["weight"].pop("enc_p.emb_phone.weight"))
    with pytest.raises(ModelError, match="no enc_p.emb_phone.weight"):
        read_rvc_checkpoint(path)


def test_unknown_sample_rate(tmp_path, parity_dir):
    def odd(o):
        o["config"][-1] = 44100
        o["sr"] = "44k"
    path = _rewrite(parity_model("v2_40k_f0", parity_dir), tmp_path / "sr.pth", odd)
    with pytest.raises(ModelError, match="44100 Hz is not one of RVC's"):
        read_rvc_checkpoint(path)
    path = _rewrite(parity_model("v2_40k_f0", parity_dir), tmp_path / "sr2.pth",
                    lambda o: o.__setitem__("sr", "48k"))
    with pytest.raises(ModelError, match="says sr '48k' but its config says 40000"):
        read_rvc_checkpoint(path)


def test_damaged_config_list(tmp_path, parity_dir):
    path = _rewrite(parity_model("v2_40k_f0", parity_dir), tmp_path / "cfg.pth", lambda o: o["config"].pop(3))
    with pytest.raises(ModelError, match="18 constructor values, found 17"):
        read_rvc_checkpoint(path)


def test_f0_flag_must_match_weights(tmp_path, parity_dir):
    path = _rewrite(parity_model("v2_40k_f0", parity_dir), tmp_path / "f0.pth", lambda o: o.__setitem__("f0", 0))
    with pytest.raises(ModelError, match="says f0=0 but its weights have enc_p.emb_pitch.weight"):
        read_rvc_checkpoint(path)


def test_speaker_rows_come_from_emb_g_as_in_rvc(tmp_path):
    path = make_rvc_model(tmp_path / "spk.pth", speakers=3)
    path = _rewrite(path, path, lambda o: o["config"].__setitem__(-3, 109))  # stale count in config
    ckpt = read_rvc_checkpoint(path)
    assert ckpt.hparams.spk_embed_dim == 3 and ckpt.speakers == ["0"]  # RVC trains speaker 0 only
    config = ckpt.hparams.svc_config(ckpt.speakers)
    assert config.speaker_id(None) == 0 and config.speaker_id(2) == 2  # the other rows: by number


def test_other_training_files_are_named(tmp_path):
    path = tmp_path / "D_1.pth"
    torch.save({"model": {"discriminators.0.conv_post.weight": torch.zeros(1)}, "iteration": 1}, path)
    with pytest.raises(ModelError, match="discriminator.*G_\\*.pth beside it"):
        read_rvc_checkpoint(path)
    torch.save({"model": {"enc_p.pre.weight": torch.zeros(1)}, "iteration": 1}, path)
    with pytest.raises(ModelError, match="so-vits-svc generator"):
        read_rvc_checkpoint(path)


def test_a_voice_trained_on_another_encoder_names_it_and_svc_uses_it(tmp_path):
    """svc-studio's own field "speech_encoder" (RVC WebUI ignores it): a voice trained here on phonevec256."""
    from svc_core.rvc.checkpoint import save_rvc_small
    from svc_core.rvc.voice import load_rvc_voice
    from rvc_factories import make_hparams, make_random_net

    hp = make_hparams("v1").with_(encoder="phonevec256")
    path = tmp_path / "phone.pth"
    save_rvc_small(make_random_net(hp), hp, path)
    voice = load_rvc_voice(path)
    assert voice.config.speech_encoder == "phonevec256" and voice.hparams.content_dim == 256
    obj = torch.load(path, weights_only=True)
    obj["speech_encoder"] = "vec768l12"  # 768-dim features for a 256-dim model
    torch.save(obj, path)
    with pytest.raises(ModelError, match="vec768l12.*768-dim.*256-dim"):
        read_rvc_checkpoint(path)
    obj["speech_encoder"] = "no-such-encoder"
    torch.save(obj, path)
    with pytest.raises(ModelError, match="does not have"):
        read_rvc_checkpoint(path)
