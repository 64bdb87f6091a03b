"""RVC training runs: a few steps on generated audio write RVC's G_/D_ training files and the small model, which
svc_core's RVC loader reads back; resume continues exactly; v2 uses RVC's v2 discriminator; bad input is named."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc_train_factories import tiny_encoder, tiny_settings, write_recordings, write_v2_experiment
from svc_core.errors import OptionError
from svc_core.rvc.checkpoint import read_rvc_checkpoint
from svc_core.rvc.train.cli import settings_from_args
from svc_core.rvc.train.discriminator import PERIODS
from svc_core.rvc.train.prepare import prepare_experiment
from svc_core.rvc.train.trainer import RvcTrainer, RvcTrainingError
from svc_core.rvc.voice import load_rvc_voice
from svc_core.safe_load import load_torch
from svc_core.noise import TorchNoise
from svc_core.train.dataset import DatasetError


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A v1 experiment from recordings, trained for 2 steps (saved after each)."""
    root = tmp_path_factory.mktemp("rvcrun")
    data = write_recordings(root / "raw", ("alto",), seconds=4.5)
    settings = tiny_settings(data, root / "voice", tiny_encoder(root / "cv.pt"), steps=2, keep=0)
    prepare_experiment(settings)
    torch.manual_seed(0)
    summary = RvcTrainer(settings).fit()
    return settings, summary


def test_training_writes_rvcs_training_files(run):
    settings, summary = run
    out = settings.out_dir
    assert summary.step == 2 and not summary.interrupted
    assert [p.name for p in summary.saved] == ["G_1.pth", "D_1.pth", "G_2.pth", "D_2.pth"]
    g = load_torch(out / "G_2.pth", what="test")
    assert set(g) == {"model", "iteration", "optimizer", "learning_rate"} and g["iteration"] == 1
    keys = g["model"]
    assert "enc_p.emb_phone.weight" in keys and "emb_g.weight" in keys and "enc_q.pre.weight" in keys
    assert keys["enc_p.emb_phone.weight"].shape[1] == 256  # v1 content width
    assert any(k.endswith("weight_g") for k in keys)  # RVC's weight-norm names
    d = load_torch(out / "D_2.pth", what="test")["model"]
    assert f"discriminators.{len(PERIODS['v1'])}.convs.0.weight_g" in d  # S + 6 periods (RVC v1)
    assert f"discriminators.{len(PERIODS['v1']) + 1}.convs.0.weight_g" not in d
    ck = read_rvc_checkpoint(out / "G_2.pth")
    assert ck.kind == "rvc-training" and ck.hparams.version == "v1"


def test_the_small_model_is_rvcs_and_converts(run):
    settings, summary = run
    path = summary.small_model
    assert path == settings.out_dir / "voice.pth"
    raw = load_torch(path, what="test")
    assert set(raw) == {"weight", "config", "info", "sr", "f0", "version"}
    assert raw["info"] == "1epoch" and raw["sr"] == "40k" and raw["f0"] == 1 and raw["version"] == "v1"
    assert all(v.dtype == torch.float16 for v in raw["weight"].values())
    assert not any(k.startswith("enc_q") for k in raw["weight"])
    assert raw["config"][2] == 16  # the trained inter_channels (tiny test size), read back by RVC's loader
    voice = load_rvc_voice(path)
    assert voice.hparams.version == "v1" and voice.has_f0
    frames = 50
    pitch = torch.full((1, frames), 100, dtype=torch.long)
    audio = voice.synthesize(torch.randn(1, frames, 256), pitch, torch.full((1, frames), 220.0),
                             torch.LongTensor([0]), TorchNoise.seeded(0))
    assert audio.shape == (frames * 400,) and np.all(np.isfinite(audio))
    trained = load_torch(settings.out_dir / "G_2.pth", what="test")["model"]["enc_p.emb_phone.weight"]
    assert torch.allclose(raw["weight"]["enc_p.emb_phone.weight"].float(), trained, atol=1e-2)


def test_the_trained_voice_converts_through_svc_with_its_index(run):
    """The small model and the index trained here go through the shipped RVC pipeline (Svc), with the same
    (tiny test) encoder the features were made with."""
    from audio_factories import sung_phrase
    from svc_core.pipeline import Svc
    from svc_core.rvc.train.index import train_rvc_index

    settings, summary = run
    index = train_rvc_index(settings.out_dir, "v1")
    svc = Svc(summary.small_model, None, encoder_path=settings.encoder_path, cluster_path=index)
    assert svc.model.family == "rvc" and svc.sample_rate == 40000
    out = svc.slice_inference(sung_phrase(1.5, 44100), 44100, 0, transpose=2, f0_predictor="pm", index_rate=0.5)
    assert abs(out.shape[0] - 1.5 * 40000) <= 0.05 * 40000 and np.all(np.isfinite(out)) and np.abs(out).max() > 0


def test_resume_continues_from_the_newest_pair(run):
    settings, _ = run
    with pytest.raises(RvcTrainingError, match="--resume"):
        RvcTrainer(settings)
    resumed_settings = tiny_settings(settings.data_dir, settings.out_dir, settings.encoder_path, steps=3, keep=0,
                                     resume=True)
    trainer = RvcTrainer(resumed_settings)
    assert (trainer.step, trainer.epoch) == (2, 1)
    saved = load_torch(settings.out_dir / "G_2.pth", what="test")
    now = trainer.net_g.rvc_state(include_posterior=True)
    assert all(torch.equal(now[k], saved["model"][k]) for k in saved["model"])
    state = trainer.optim_g.state_dict()["state"]
    assert state and all(int(v["step"]) == 2 for v in state.values())  # AdamW moments restored
    summary = trainer.fit()
    assert summary.step == 3 and (settings.out_dir / "G_3.pth").is_file()


def test_v2_trains_with_the_v2_discriminator(tmp_path):
    settings = tiny_settings(tmp_path, tmp_path / "v2voice", None, version="v2", steps=1)
    write_v2_experiment(settings)
    trainer = RvcTrainer(settings)
    assert len(trainer.net_d.discriminators) == 1 + len(PERIODS["v2"])
    summary = trainer.fit()
    raw = load_torch(summary.small_model, what="test")
    assert raw["version"] == "v2" and raw["weight"]["enc_p.emb_phone.weight"].shape[1] == 768
    assert {"d", "mel", "kl", "fm", "g_adv"} <= set(summary.last_losses)


def test_bad_experiments_are_named(tmp_path):
    settings = tiny_settings(tmp_path, tmp_path / "empty", None, version="v2", steps=1)
    settings.out_dir.mkdir()
    with pytest.raises(DatasetError, match="filelist.txt' is missing"):
        RvcTrainer(settings)
    settings = tiny_settings(tmp_path, tmp_path / "wrongsr", None, version="v2", steps=1)
    write_v2_experiment(settings)
    piece = next((settings.out_dir / "0_gt_wavs").glob("*.wav"))
    sf.write(str(piece), np.zeros(32000, np.float32), 32000, subtype="FLOAT")
    with pytest.raises(DatasetError, match="is 32000 Hz but this model trains at 40000 Hz"):
        RvcTrainer(settings)


def _args(*argv: str) -> argparse.Namespace:
    from svc_core.cli import build_parser

    return build_parser().parse_args(["train", "--arch", "rvc", *argv])


def test_the_cli_maps_to_settings_and_refuses_sovits_only_options(tmp_path):
    args = _args("--data", str(tmp_path), "--out", str(tmp_path / "x"), "--version", "v1", "--sr", "48k",
                 "--size", "small", "--steps", "7", "--batch-size", "3", "--speaker", "alto", "--max-minutes", "5")
    s = settings_from_args(args)
    assert (s.version, s.sample_rate, s.size, s.steps, s.batch_size, s.speaker, s.max_minutes) == \
        ("v1", "48k", "small", 7, 3, "alto", 5.0)
    assert s.encoder_name == "vec256l9" and s.f0 and s.build_index
    cpu = settings_from_args(_args("--data", str(tmp_path), "--out", str(tmp_path / "y")))
    assert (cpu.version, cpu.sample_rate, cpu.encoder_name) == ("v2", "40k", "vec768l12")
    assert (cpu.size, cpu.batch_size, cpu.max_frames, cpu.d_width_divisor, cpu.gan_start_step,
            cpu.learning_rate) == ("small", 2, 160, 4, 120, 2e-4)  # the CPU preset
    gpu = settings_from_args(_args("--data", str(tmp_path), "--out", str(tmp_path / "y"), "--device", "cuda"))
    assert (gpu.size, gpu.batch_size, gpu.max_frames, gpu.d_width_divisor, gpu.gan_start_step,
            gpu.learning_rate, gpu.epochs) == ("full", 4, 900, 1, 0, 1e-4, 20)  # RVC's own
    with pytest.raises(OptionError, match="--c-harm is for so-vits training"):
        settings_from_args(_args("--data", str(tmp_path), "--out", str(tmp_path / "z"), "--c-harm", "1"))
