"""Training on a tiny generated dataset: overfitting, checkpoint layout, resume, keep-best, bases, NaN guard."""
from __future__ import annotations

import logging
import shutil

import pytest
import torch

from factories import make_upstream_checkpoint
from train_factories import build_dataset, tiny_settings
from svc_core.checkpoint import build_synthesizer, load_synthesizer
from svc_core.config import load_config
from svc_core.train.checkpoints import CheckpointKeeper, latest_pair
from svc_core.train.dataset import collate
from svc_core.train.discriminator import MultiPeriodDiscriminator
from svc_core.train.trainer import Trainer, TrainingError

TOP_KEYS = {"model", "iteration", "optimizer", "learning_rate"}


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def test_training_lowers_mel_loss_on_a_fixed_batch(tiny_data, tmp_path):
    trainer = Trainer(tiny_data, tmp_path / "run", tiny_settings())
    batch = collate([trainer.train_set[0], trainer.train_set[1]])
    before = trainer.losses_on(batch, seed=1)["mel"]
    results = [trainer.train_step(batch) for _ in range(8)]
    after = trainer.losses_on(batch, seed=1)["mel"]
    assert not any(r.skipped for r in results)
    assert trainer.step == 8
    assert after < 0.97 * before, (before, after)


def test_run_writes_upstream_layout_checkpoints(trained_run, tiny_data):
    out, summary = trained_run["out"], trained_run["summary"]
    assert summary.step == 4 and not summary.interrupted
    for step in (2, 4):
        assert (out / f"G_{step}.pth").is_file() and (out / f"D_{step}.pth").is_file()
        assert list((out / "eval" / str(step)).glob("*.wav")), "validation audio per checkpoint"
    g = _load(out / "G_4.pth")
    assert set(g) == TOP_KEYS
    assert isinstance(g["iteration"], int) and g["iteration"] == summary.epoch == 2  # epoch, not step
    assert g["learning_rate"] == pytest.approx(1e-4)
    config = load_config(out / "config.json")
    fresh = build_synthesizer(config).upstream_state_dict()
    assert set(g["model"]) == set(fresh)
    assert any(k.endswith(".weight_g") for k in g["model"]) and any(k.endswith(".weight_v") for k in g["model"])
    assert any(k.startswith("enc_q.") for k in g["model"])
    assert all(tuple(g["model"][k].shape) == tuple(v.shape) for k, v in fresh.items())
    assert len(g["optimizer"]["param_groups"][0]["params"]) == len(fresh)  # upstream: one AdamW param per tensor
    assert g["optimizer"]["state"], "a training checkpoint carries the AdamW moments"

    net = load_synthesizer(out / "G_4.pth", out / "config.json")
    frames = 40
    c = torch.randn(1, config.model.ssl_dim, frames)
    f0 = torch.full((1, frames), 220.0)
    audio, _ = net.infer(c, f0, torch.ones(1, frames), torch.tensor([[1]]))
    assert audio.shape == (1, 1, frames * config.hop_length) and torch.isfinite(audio).all()


def _upstream_d_keys() -> set[str]:
    """D_*.pth key names of upstream's MultiPeriodDiscriminator (weight norm)."""
    keys = set()
    layers = {0: [f"convs.{i}" for i in range(6)] + ["conv_post"]}
    layers.update({d: [f"convs.{i}" for i in range(5)] + ["conv_post"] for d in range(1, 6)})
    for d, names in layers.items():
        for name in names:
            keys |= {f"discriminators.{d}.{name}.{leaf}" for leaf in ("bias", "weight_g", "weight_v")}
    return keys


def test_discriminator_files_use_upstream_names_and_sizes(trained_run):
    d = _load(trained_run["out"] / "D_4.pth")
    assert set(d) == TOP_KEYS and d["iteration"] == 2
    assert set(d["model"]) == _upstream_d_keys()
    full = MultiPeriodDiscriminator().upstream_state_dict()
    assert set(full) == _upstream_d_keys()
    shapes = {"discriminators.0.convs.0.weight_v": [16, 1, 15], "discriminators.0.convs.1.weight_v": [64, 4, 41],
              "discriminators.0.convs.4.weight_v": [1024, 4, 41], "discriminators.0.conv_post.weight_v": [1, 1024, 3],
              "discriminators.1.convs.0.weight_v": [32, 1, 5, 1],
              "discriminators.5.convs.4.weight_v": [1024, 1024, 5, 1],
              "discriminators.5.conv_post.weight_g": [1, 1, 1, 1], "discriminators.3.convs.2.weight_g": [512, 1, 1, 1]}
    assert {k: list(full[k].shape) for k in shapes} == shapes
    sn = MultiPeriodDiscriminator(use_spectral_norm=True, width_divisor=16)
    sn_keys = set(sn.upstream_state_dict())
    assert "discriminators.0.convs.0.weight_orig" in sn_keys and "discriminators.2.conv_post.weight_u" in sn_keys
    sn.load_upstream_state_dict(sn.upstream_state_dict())


def test_resume_restores_step_optimizer_and_losses(trained_run, tiny_data, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained_run["out"], out)
    with pytest.raises(TrainingError, match="--resume"):
        Trainer(tiny_data, out, tiny_settings(steps=6, eval_interval=2))
    trainer = Trainer(tiny_data, out, tiny_settings(steps=6, eval_interval=2, resume=True))
    assert (trainer.step, trainer.epoch) == (4, 2)
    saved = _load(out / "G_4.pth")["optimizer"]
    state = trainer.optim_g.state_dict()
    assert len(state["state"]) == len(saved["state"])
    for pid, entry in saved["state"].items():
        assert torch.equal(state["state"][pid]["exp_avg"], entry["exp_avg"])
        assert float(state["state"][pid]["step"]) == float(entry["step"]) == 4
    assert trainer.optim_g.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.999875)  # epoch 2
    resumed = trainer.losses_on(trained_run["batch"], seed=3)
    assert resumed == pytest.approx(trained_run["losses"], rel=1e-5)
    summary = trainer.fit()
    assert summary.step == 6 and latest_pair(out)[0] == 6
    assert float(trainer.optim_g.state_dict()["state"][0]["step"]) == 6


def test_keep_best_ranks_by_validation_loss_and_spares_g0(tmp_path):
    def write(step):
        for prefix in "GD":
            (tmp_path / f"{prefix}_{step}.pth").write_bytes(b"x")

    write(0)
    write(1)  # not saved by this run (no record): left alone
    keeper = CheckpointKeeper(tmp_path, keep_best=2)
    deleted = []
    for step, loss in ((2, 0.5), (4, 0.3), (6, 0.4), (8, 0.6)):
        write(step)
        deleted.append(keeper.add(step, loss))
    assert deleted == [[], [], [2], []]  # step 8 is the newest: kept for resuming although worst
    left = sorted(int(p.stem[2:]) for p in tmp_path.glob("G_*.pth"))
    assert left == [0, 1, 4, 6, 8]
    assert sorted(int(p.stem[2:]) for p in tmp_path.glob("D_*.pth")) == left
    assert CheckpointKeeper(tmp_path, keep_best=2).record == {4: 0.3, 6: 0.4, 8: 0.6}  # persisted


def test_base_with_other_speaker_count_and_keep_best(tiny_data, tmp_path, caplog):
    base_g, _ = make_upstream_checkpoint(tmp_path / "base", speech_encoder="hubertsoft", n_speakers=3, seed=5)
    d = MultiPeriodDiscriminator(width_divisor=16)
    base_d = tmp_path / "base" / "D_0.pth"
    torch.save({"model": d.upstream_state_dict(), "iteration": 0, "optimizer": None, "learning_rate": 1e-4}, base_d)
    out = tmp_path / "run"
    with caplog.at_level(logging.INFO, logger="svc_core.train"):
        trainer = Trainer(tiny_data, out, tiny_settings(steps=6, eval_interval=2, keep_best=1,
                                                        base=(str(base_g), str(base_d))))
    assert "emb_g is re-initialised" in caplog.text and "3 speaker embedding(s)" in caplog.text
    base_state = _load(base_g)["model"]
    mine = trainer.net_g.upstream_state_dict()
    assert torch.equal(mine["pre.weight"], base_state["pre.weight"])
    assert mine["emb_g.weight"].shape[0] == 2
    trainer.fit()
    steps = sorted(int(p.stem[2:]) for p in out.glob("G_*.pth"))
    assert steps[0] == 0 and (out / "D_0.pth").is_file() and 6 in steps and len(steps) <= 3
    removed = {2, 4} - set(steps)
    assert removed, "keep_best=1 removes at least one of the intermediate checkpoints"
    assert all(not (out / "eval" / str(s)).exists() for s in removed)


def test_base_with_other_sizes_is_refused(tiny_data, tmp_path):
    base_g, _ = make_upstream_checkpoint(tmp_path / "base", speech_encoder="vec768l12", n_speakers=2)
    base_d = tmp_path / "base" / "D_0.pth"
    torch.save({"model": MultiPeriodDiscriminator(width_divisor=16).upstream_state_dict()}, base_d)
    with pytest.raises(Exception, match="speech encoder"):
        Trainer(tiny_data, tmp_path / "run", tiny_settings(base=(str(base_g), str(base_d))))


def test_nan_batch_is_skipped_then_last_good_state_restored(tiny_data, tmp_path, caplog):
    trainer = Trainer(tiny_data, tmp_path / "run", tiny_settings(nan_patience=2, snapshot_interval=1))
    batch = collate([trainer.train_set[0], trainer.train_set[1]])
    assert not trainer.train_step(batch).skipped
    good = {k: v.clone() for k, v in trainer.net_g.upstream_state_dict().items()}
    bad = collate([trainer.train_set[0], trainer.train_set[1]])
    bad.c[0, :, 3] = float("nan")
    with caplog.at_level(logging.INFO, logger="svc_core.train"):
        assert trainer.train_step(bad).skipped
        assert trainer.step == 1 and "step skipped" in caplog.text and "spk" in caplog.text
        assert trainer.train_step(bad).skipped
    assert "restored the last good state (step 1" in caplog.text
    now = trainer.net_g.upstream_state_dict()
    assert all(torch.equal(now[k], v) for k, v in good.items())
    result = trainer.train_step(batch)
    assert not result.skipped and trainer.step == 2
    assert all(torch.isfinite(v).all() for v in trainer.net_g.upstream_state_dict().values())


def test_ctrl_c_saves_a_checkpoint(tiny_data, tmp_path, monkeypatch):
    trainer = Trainer(tiny_data, tmp_path / "run", tiny_settings(steps=10, eval_interval=100))
    real_step = trainer.train_step

    def step_then_interrupt(batch):
        if trainer.step == 2:
            raise KeyboardInterrupt
        return real_step(batch)

    monkeypatch.setattr(trainer, "train_step", step_then_interrupt)
    summary = trainer.fit()
    assert summary.interrupted and summary.step == 2
    assert latest_pair(tmp_path / "run")[0] == 2


def test_vol_embedding_dataset_trains(tmp_path):
    data = build_dataset(tmp_path / "data", clips_per_speaker=2, vol_embedding=True)
    trainer = Trainer(data, tmp_path / "run", tiny_settings(batch_size=1, vol_aug=True))
    batch = collate([trainer.train_set[0]])
    assert batch.vol is not None and batch.vol.shape == batch.f0.shape
    assert not trainer.train_step(batch).skipped
