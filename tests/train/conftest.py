"""Fixtures of the training tests: a shared tiny dataset, one finished run, one torch thread."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train_factories import build_dataset, tiny_settings


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A 2-speaker dataset shared (read-only) by the tests of this folder."""
    return build_dataset(tmp_path_factory.mktemp("train_data") / "dataset")


@pytest.fixture(autouse=True)
def _one_thread():
    """The CPU is shared: one torch thread keeps these tiny models fast and the runs repeatable."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained_run(tiny_data, tmp_path_factory):
    """A finished 4-step run (checkpoints at steps 2 and 4); returns (out_dir, trainer, fixed batch, losses)."""
    from svc_core.train.dataset import collate
    from svc_core.train.trainer import Trainer

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("train_run") / "run"
    trainer = Trainer(tiny_data, out, tiny_settings(steps=4, eval_interval=2))
    summary = trainer.fit()
    batch = collate([trainer.val_set[0], trainer.val_set[1]])
    losses = trainer.losses_on(batch, seed=3)
    torch.set_num_threads(before)
    return {"out": out, "trainer": trainer, "summary": summary, "batch": batch, "losses": losses}
