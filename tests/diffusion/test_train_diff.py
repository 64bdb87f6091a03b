"""`train-diff`: a few steps on a tiny dataset, checkpoints in upstream's layout read back by the inference loader,
resume, StepLR, keep rule, bases, validation audio, and clear errors for bad datasets / options."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from diffusion_factories import make_diffusion_model
from diffusion_train_factories import build_diff_dataset, edit_yaml, make_tiny_vocoder, tiny_diff_settings
from svc_core.cli import main
from svc_core.diffusion.config import load_diffusion_config
from svc_core.diffusion.loader import load_diffusion
from svc_core.diffusion.train.checkpoints import keeper, latest_checkpoint
from svc_core.diffusion.train.dataset import DiffDataset
from svc_core.diffusion.train.trainer import DiffTrainer
from svc_core.diffusion.train.validation import validation_loss
from svc_core.errors import ModelError, OptionError
from svc_core.precision import cpu_has_native_bf16
from svc_core.safe_load import load_torch
from svc_core.train.dataset import DatasetError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_diff_dataset(tmp_path_factory.mktemp("diffdata") / "data")


@pytest.fixture()
def data(dataset, tmp_path) -> Path:
    """A private copy (tests that break or edit the dataset)."""
    copy = tmp_path / "data"
    shutil.copytree(dataset, copy)
    edit_yaml(copy / "diffusion.yaml", "data", training_files=str(copy / "filelists" / "train.txt"),
              validation_files="filelists/val.txt")
    (copy / "filelists" / "train.txt").write_text(
        "".join(f"{copy / Path(line).parent.name / Path(line).name}\n"
                for line in (dataset / "filelists" / "train.txt").read_text().split()), encoding="utf-8")
    return copy


def test_steps_checkpoints_and_the_inference_loader(dataset, tmp_path):
    out = tmp_path / "run"
    trainer = DiffTrainer(dataset, out, tiny_diff_settings(steps=4, save_opt=True))
    summary = trainer.fit()
    assert summary.step == 4 and np.isfinite(summary.last_loss)
    assert summary.validation is not None and np.isfinite(summary.validation.loss)
    # upstream's layout: {'global_step', 'model', 'optimizer'} + config.yaml
    ckpt = load_torch(out / "model_4.pt")
    assert set(ckpt) == {"global_step", "model", "optimizer"} and ckpt["global_step"] == 4
    config = load_diffusion_config(out / "config.yaml")
    assert config.speakers == {"spk0": 0, "spk1": 1} and config.train["batch_size"] == 2
    loaded = load_diffusion(out / "model_4.pt", out / "config.yaml")
    for key, value in trainer.model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.cpu(), rtol=0, atol=0)
    # the validation loss uses fixed draws: checkpoints are ranked on the same t and noise
    first = validation_loss(trainer.model, trainer.val_set, 2, trainer.device)
    assert first == validation_loss(trainer.model, trainer.val_set, 2, trainer.device)
    # the sampled validation mel of the last checkpoint is written
    assert (out / "eval" / "4" / "spk0_clip0.mel.npy").is_file()
    assert "step 4/4" in (out / "train.log").read_text()


def test_loss_falls_on_a_repeated_batch(data, tmp_path):
    edit_yaml(data / "diffusion.yaml", "model", n_chans=64, n_hidden=64)  # 16 channels cannot hold 128 mel bins
    trainer = DiffTrainer(data, tmp_path / "run", tiny_diff_settings(learning_rate=3e-3, cache_fp16=True))
    batch = next(iter(trainer.train_loader))
    losses = []
    for _ in range(25):
        torch.manual_seed(7)  # the same steps t and noise every time: the model can learn this batch
        losses.append(trainer.train_step(batch))
    assert all(np.isfinite(losses)) and trainer.step == 25
    assert losses[-1] < 0.7 * losses[0]


def test_resume_continues_the_step_count_and_the_step_lr(dataset, tmp_path):
    out = tmp_path / "run"
    settings = dict(decay_step=2, gamma=0.5, learning_rate=1e-3, save_opt=True, eval_audio=False)
    first = DiffTrainer(dataset, out, tiny_diff_settings(steps=3, **settings))
    lrs = []
    for _ in range(3):
        lrs.append(first.optimizer.param_groups[0]["lr"])
        first.train_step(next(iter(first.train_loader)))
    first.checkpoint()
    assert lrs == [first.settings.lr_at(k) for k in (1, 2, 3)] == [1e-3, 1e-3, 1e-3]
    second = DiffTrainer(dataset, out, tiny_diff_settings(steps=6, **settings))
    assert second.step == 3
    torch.testing.assert_close(second.model.state_dict(), first.model.state_dict())
    assert second.optimizer.state_dict()["state"][0]["step"] == 3  # AdamW state came back
    resumed = []
    while second.step < 6:
        resumed.append(second.optimizer.param_groups[0]["lr"])
        second.train_step(next(iter(second.train_loader)))
    # upstream's StepLR: lr * gamma ** ((step - 2) // decay_step) for steps 4, 5, 6
    assert resumed == pytest.approx([1e-3 * 0.5, 1e-3 * 0.5, 1e-3 * 0.25])
    assert resumed == pytest.approx([second.settings.lr_at(k) for k in (4, 5, 6)])
    summary = second.fit()  # already at --steps: saves nothing new, trains no further
    assert summary.step == 6 and latest_checkpoint(out)[0] == 6


def test_keep_rule_force_save_multiples_best_and_latest(tmp_path):
    k = keeper(tmp_path, keep_best=1, force_save=4)
    (tmp_path / "model_0.pt").write_bytes(b"base")
    scores = {2: 0.5, 4: 0.9, 6: 0.3, 8: 0.8, 10: 0.7, 12: 0.6}
    for step, score in scores.items():
        (tmp_path / f"model_{step}.pt").write_bytes(b"x")
        k.add(step, score)
    left = sorted(int(p.stem.split("_")[1]) for p in tmp_path.glob("model_*.pt"))
    # 0: base; 4, 8, 12: multiples of interval_force_save; 6: best; 12: newest
    assert left == [0, 4, 6, 8, 12]
    record = json.loads((tmp_path / "checkpoints.json").read_text())
    assert "val_loss" in record and set(record["val_loss"]) == {"4", "6", "8", "12"}
    keep_all = keeper(tmp_path, keep_best=0, force_save=4)
    (tmp_path / "model_14.pt").write_bytes(b"x")
    assert keep_all.add(14, 9.0) == []


def test_base_model_0_with_another_speaker_count_and_a_wrong_size(dataset, tmp_path, caplog):
    base_path, _ = make_diffusion_model(tmp_path / "base", n_spk=1, encoder="hubertsoft", k_step_max=0)
    out = tmp_path / "run"
    trainer = DiffTrainer(dataset, out, tiny_diff_settings(base=str(base_path), eval_audio=False))
    base = load_torch(base_path)["model"]
    torch.testing.assert_close(trainer.model.unit_embed.weight, base["unit_embed.weight"])
    assert (out / "model_0.pt").is_file() and trainer.step == 0
    assert "spk_embed" in (out / "train.log").read_text()
    placed = tmp_path / "placed"  # upstream's way: model_0.pt put into the run folder by hand
    placed.mkdir()
    shutil.copyfile(base_path, placed / "model_0.pt")
    again = DiffTrainer(dataset, placed, tiny_diff_settings(eval_audio=False))
    torch.testing.assert_close(again.model.unit_embed.weight, base["unit_embed.weight"])
    wrong, _ = make_diffusion_model(tmp_path / "wrong", n_spk=2, encoder="hubertsoft", n_chans=8)
    with pytest.raises(ModelError, match=r"model\.n_chans is 16 but .* has 8(?s:.*)--diff-size full"):
        DiffTrainer(dataset, tmp_path / "run2", tiny_diff_settings(base=str(wrong)))


def test_validation_audio_through_a_vocoder(dataset, tmp_path):
    vocoder = make_tiny_vocoder(tmp_path / "nsf_hifigan")
    out = tmp_path / "run"
    trainer = DiffTrainer(dataset, out, tiny_diff_settings(steps=2, vocoder=str(vocoder)))
    trainer.fit()
    wav = out / "eval" / "2" / "spk0_clip0.wav"
    audio, sr = sf.read(wav)
    mel = np.load(out / "eval" / "2" / "spk0_clip0.mel.npy")
    assert sr == 44100 and len(audio) == mel.shape[0] * 512


def test_cli_trains_and_resumes(dataset, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train-diff", "--data", str(dataset), "--out", str(out), "--interval-val", "2", "--no-eval-audio",
            "--threads", "1"]
    assert main(argv + ["--steps", "2"]) == 0
    assert main(argv + ["--steps", "3"]) == 0
    assert "resumed from model_2.pt" in capsys.readouterr().out
    assert latest_checkpoint(out)[0] == 3


def test_amp_dtypes_on_the_cpu(dataset, tmp_path):
    with pytest.raises(OptionError, match="fp16"):
        DiffTrainer(dataset, tmp_path / "a", tiny_diff_settings(amp_dtype="fp16"))
    if cpu_has_native_bf16():
        DiffTrainer(dataset, tmp_path / "b", tiny_diff_settings(amp_dtype="bf16", steps=1)).fit()
    else:
        with pytest.raises(OptionError, match="bf16"):
            DiffTrainer(dataset, tmp_path / "b", tiny_diff_settings(amp_dtype="bf16"))


def test_missing_diffusion_caches_name_the_preprocess_option(data, tmp_path):
    next(data.glob("spk1/*.wav.aug_mel.npy")).unlink()
    with pytest.raises(DatasetError, match="--use-diff"):
        DiffTrainer(data, tmp_path / "run", tiny_diff_settings())


def test_upstream_pickled_aug_mel_is_refused_not_opened(data):
    target = next(data.glob("spk0/clip1.wav.aug_mel.npy"))
    np.save(target, np.asanyarray((np.load(target), 1.5), dtype=object), allow_pickle=True)
    config = load_diffusion_config(data / "diffusion.yaml")
    with pytest.raises(DatasetError, match="pickled"):
        DiffDataset(data, config, "train", crop_seconds=0.5)


def test_clips_shorter_than_the_crop_and_unknown_speakers(data, tmp_path):
    with pytest.raises(DatasetError, match="data.duration"):
        DiffTrainer(data, tmp_path / "run", tiny_diff_settings(duration=5.0))
    edit_yaml(data / "diffusion.yaml", "spk", spk0=0, other=1)
    doc = (data / "diffusion.yaml").read_text().replace("  spk1: 1\n", "")
    (data / "diffusion.yaml").write_text(doc)
    with pytest.raises(DatasetError, match="spk1"):
        DiffTrainer(data, tmp_path / "run2", tiny_diff_settings())


def test_cli_without_a_dataset_yaml(tmp_path, capsys):
    assert main(["train-diff", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert "diffusion.yaml" in capsys.readouterr().err
