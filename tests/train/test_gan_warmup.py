"""gan_start_step: before it the discriminator is neither run nor updated and the generator still learns."""
import torch

from svc_core.config import config_from_dict
from svc_core.train.settings import TrainSettings
from svc_core.train.trainer import Trainer
from train_factories import tiny_settings


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def test_discriminator_waits_for_its_start_step(tiny_data, tmp_path):
    trainer = Trainer(tiny_data, tmp_path / "run", tiny_settings(gan_start_step=1))
    batch = next(iter(trainer.train_loader))
    d_before, g_before = _params(trainer.net_d), _params(trainer.net_g)
    first = trainer.train_step(batch)
    assert not first.skipped and "d" not in first.losses
    assert first.losses["g_adv"] == 0.0 and first.losses["fm"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(d_before, _params(trainer.net_d)))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, _params(trainer.net_g)))
    second = trainer.train_step(batch)  # step 1: the GAN has started
    assert "d" in second.losses and second.losses["g_adv"] > 0
    assert any(not torch.equal(a, b) for a, b in zip(d_before, _params(trainer.net_d)))


def test_start_step_comes_from_the_config():
    from factories import make_config_dict

    doc = make_config_dict()
    doc["train"]["gan_start_step"] = 500
    assert TrainSettings.from_config(config_from_dict(doc)).gan_start_step == 500
