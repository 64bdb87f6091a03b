"""train-vocoder: a few real steps of the NSF-HiFiGAN generator against the discriminator on a tiny preprocessed
dataset; the output folder loads with load_mel_vocoder and decodes; a second run resumes; bad input is refused."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core.cli import main as cli_main
from svc_core.noise import TorchNoise
from svc_core.errors import ModelError, OptionError
from svc_core.models.weight_norm import upstream_items
from svc_core.train.dataset import DatasetError
from svc_core.vocoders import load_mel_vocoder
from svc_core.vocoders.nsf_hifigan import MelGenerator, VocoderConfig
from svc_core.vocoders.train import VocoderTrainer, VocoderTrainSettings
from svc_core.vocoders.train import files as run_files
from svc_core.vocoders.train.trainer import training_excitation
from train_factories import build_dataset

TINY = VocoderConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 3),))
SEGMENT = 8  # frames per training crop (4096 samples)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return build_dataset(tmp_path_factory.mktemp("vocoder_data") / "dataset", clips_per_speaker=3)


@pytest.fixture(autouse=True)
def _tiny_preset(monkeypatch):
    """The 'small' preset shrunk further so a step takes milliseconds."""
    from svc_core.vocoders.train import settings as settings_module

    monkeypatch.setitem(settings_module.SIZE_PRESETS, "small", TINY)


def tiny(**overrides) -> VocoderTrainSettings:
    values = dict(steps=3, batch_size=2, segment_frames=SEGMENT, d_width_divisor=16, interval_log=1, interval_val=2,
                  keep_best=1, val_clips=1, max_val_frames=48)
    values.update(overrides)
    return VocoderTrainSettings(**values)


def _generator_state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["generator"]


def test_steps_have_finite_losses_and_the_folder_loads_as_a_vocoder(data, tmp_path):
    out = tmp_path / "run"
    trainer = VocoderTrainer(data, out, tiny(steps=3, c_harm=1.0))
    before = {k: v.clone() for k, v in upstream_items(trainer.generator).items()}
    summary = trainer.fit()
    assert summary.step == 3 and not summary.interrupted
    assert set(summary.last_losses) == {"g_total", "d", "adv", "fm", "mel", "harm"}
    assert all(np.isfinite(v) for v in summary.last_losses.values())
    assert summary.val_mel is not None and np.isfinite(summary.val_mel)
    after = upstream_items(trainer.generator)
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the generator learned something
    assert not torch.equal(before["m_source.l_linear.weight"], after["m_source.l_linear.weight"])  # source trained
    # checkpoints at 2 and 3; keep_best 1 keeps the best and the newest; `model` is the best one
    record = json.loads((out / "checkpoints.json").read_text())["val_mel"]
    best = min((int(k) for k, v in record.items()), key=lambda k: record[str(k)])
    assert (out / f"model_{best}").read_bytes() == (out / "model").read_bytes()
    config = json.loads((out / "config.json").read_text())
    assert config["upsample_initial_channel"] == 32 and config["segment_size"] == SEGMENT * 512
    vocoder = load_mel_vocoder(out)
    assert vocoder.config == TINY
    wav, _ = _clip_audio(data)
    mel = vocoder.extract(wav[None])
    audio = vocoder.decode(mel, torch.full(mel.shape[:2], 220.0), noise=TorchNoise.seeded(0))
    assert audio.shape == (1, mel.shape[1] * 512) and torch.isfinite(audio).all()
    assert (out / "eval" / "3").is_dir() and "validation mel L1" in (out / "train.log").read_text()


def _clip_audio(data: Path) -> tuple[torch.Tensor, int]:
    import soundfile as sf

    wav, sr = sf.read(str(next(iter(sorted(data.glob("spk0/*.wav"))))), dtype="float32")
    return torch.from_numpy(wav), sr


def test_a_second_run_resumes_where_the_first_stopped(data, tmp_path):
    out = tmp_path / "run"
    VocoderTrainer(data, out, tiny(steps=2, keep_best=0)).fit()
    step2 = _generator_state(out / "model_2")
    trainer = VocoderTrainer(data, out, tiny(steps=4, keep_best=0))
    assert trainer.resumed_from == 2 and trainer.step == 2
    resumed = upstream_items(trainer.generator)
    assert all(torch.allclose(resumed[k], step2[k]) for k in step2)  # weights of step 2, not a fresh init
    assert trainer.optim_g.state  # AdamW moments restored
    summary = trainer.fit()
    assert summary.step == 4 and summary.resumed_from == 2
    assert not torch.equal(_generator_state(out / "model_4")["conv_post.bias"], step2["conv_post.bias"])
    assert "resumed from step 2" in (out / "train.log").read_text()
    # nothing left to do: a third run returns at once
    assert VocoderTrainer(data, out, tiny(steps=4)).fit().step == 4


def test_fine_tunes_a_base_vocoder_keeping_its_size(data, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    cfg = VocoderConfig(upsample_initial_channel=32, resblock_kernel_sizes=(5,), resblock_dilation_sizes=((1,),))
    torch.manual_seed(3)
    run_files.write_config(base, cfg)
    torch.save(run_files.generator_payload(MelGenerator(cfg)), base / "model")
    trainer = VocoderTrainer(data, tmp_path / "ft", tiny(steps=1, base=str(base)))
    assert trainer.config == cfg
    loaded = upstream_items(trainer.generator)
    assert torch.allclose(loaded["conv_pre.weight_v"], _generator_state(base / "model")["conv_pre.weight_v"])
    trainer.fit()
    assert load_mel_vocoder(tmp_path / "ft").config == cfg


def test_a_base_that_does_not_match_its_config_is_refused_by_name(data, tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    run_files.write_config(base, VocoderConfig(upsample_initial_channel=64, resblock_kernel_sizes=(3,),
                                               resblock_dilation_sizes=((1, 3),)))
    torch.save(run_files.generator_payload(MelGenerator(TINY)), base / "model")
    with pytest.raises(ModelError, match="upsample_initial_channel"):
        VocoderTrainer(data, tmp_path / "ft", tiny(base=str(base)))


def test_excitation_for_training_matches_inference_and_carries_gradients():
    gen = MelGenerator(TINY)
    f0 = torch.full((2, 5), 200.0)
    f0[1, 2:] = 0.0
    with torch.no_grad():
        expected = gen.m_source(f0, TorchNoise.seeded(7))
    got = training_excitation(gen.m_source, f0, TorchNoise.seeded(7))
    assert torch.allclose(got, expected, atol=1e-6)
    got.sum().backward()
    assert gen.m_source.l_linear.weight.grad is not None


def test_bad_input_gets_clear_errors(data, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    for f0 in broken.glob("spk1/*.f0.npy"):
        f0.unlink()
    with pytest.raises(DatasetError, match="f0 cache"):
        VocoderTrainer(broken, tmp_path / "a", tiny())
    with pytest.raises(DatasetError, match="shorter than"):
        VocoderTrainer(data, tmp_path / "b", tiny(segment_frames=10_000))
    with pytest.raises(OptionError, match="size"):
        tiny(size="huge")
    assert cli_main(["train-vocoder", "--data", str(data), "--out", str(tmp_path / "c"), "--size", "small",
                     "--base", str(tmp_path)]) == 2


def test_the_command_line_trains_and_resumes(data, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["train-vocoder", "--data", str(data), "--out", str(out), "--steps", "1", "--batch-size", "2",
            "--segment-frames", str(SEGMENT), "--d-width-divisor", "16", "--interval-val", "1", "--threads", "1"]
    assert cli_main(args) == 0
    assert cli_main(args[:5] + ["--steps", "2"] + args[7:]) == 0
    assert "done: step 2" in capsys.readouterr().out
    assert load_mel_vocoder(out / "model").config == TINY


def test_smooth_init_upsamples_a_constant_without_a_per_frame_pattern(data, tmp_path):
    from svc_core.vocoders.train.smooth_init import smooth_upsampling, triangle_taps

    taps = triangle_taps(8, 16)
    assert torch.allclose(taps[:8] + taps[8:], torch.ones(8))
    gen = MelGenerator(VocoderConfig(upsample_initial_channel=32))
    x = torch.ones(1, 32, 12)
    before = gen.ups[0](x)[0, 0, 16:-16]
    assert before.std() > 1e-3  # random taps: a pattern repeating every input sample
    assert smooth_upsampling(gen) == 5
    with torch.no_grad():
        after = gen.ups[0](x)[0, :, 16:-16]
    assert torch.allclose(after, after[:, :1].expand_as(after), atol=1e-5)  # constant in, constant out
    trainer = VocoderTrainer(data, tmp_path / "smooth", tiny(steps=0, smooth_init=True))
    kernel = trainer.generator.ups[0].weight[0, 0].detach()
    assert torch.allclose(kernel.abs() / kernel.abs().max(), taps / taps.max(), atol=1e-5)
