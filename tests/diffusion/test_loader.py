"""load_diffusion / find_diffusion_files: strict loading, yaml-vs-tensor checks naming field, file and key, and
refusal of other model families by name."""
from __future__ import annotations

import os

import pytest
import torch
import yaml

from diffusion_factories import diffusion_inputs, edit_diffusion_yaml, make_diffusion_model
from factories import make_upstream_checkpoint
from svc_core.diffusion import Unit2Mel, find_diffusion_files, load_diffusion, save_diffusion_checkpoint
from svc_core.errors import ModelError, UnsafeFileError


def test_upstream_fixture_loads_strictly(parity_dir):
    models = parity_dir / "diffusion" / "models" / "diffusion_dev"
    model = load_diffusion(models / "model_0.pt", models / "config.yaml")
    assert isinstance(model, Unit2Mel) and not model.training
    assert model.global_step == 0 and model.config.n_layers == 4 and model.out_dims == 128
    assert all(not p.requires_grad for p in model.parameters())
    stored = torch.load(models / "model_0.pt", weights_only=True)["model"]
    ours = model.state_dict()
    assert sorted(ours) == sorted(stored)
    assert all(torch.equal(ours[k], stored[k]) for k in stored)


@pytest.mark.parametrize("layout", ["training", "with_optimizer", "bare"])
def test_factory_layouts_load(tmp_path, layout):
    model_path, config_path = make_diffusion_model(
        tmp_path, step=2000, with_optimizer=layout == "with_optimizer", bare_state_dict=layout == "bare")
    model = load_diffusion(model_path, config_path)
    assert model.global_step == (None if layout == "bare" else 2000)
    inputs = diffusion_inputs(model.config.encoder_out_channels)
    with torch.no_grad():
        cond = model.condition(inputs["units"], inputs["f0"], inputs["vol"], inputs["spk_id"])
    assert cond.shape == (1, 16, model.config.n_hidden) and torch.isfinite(cond).all()


def test_single_speaker_hubertsoft_without_pitch_aug(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path, encoder="hubertsoft", n_spk=1, use_pitch_aug=False)
    model = load_diffusion(model_path, config_path)
    keys = model.state_dict().keys()
    assert "spk_embed.weight" not in keys and "aug_shift_embed.weight" not in keys
    assert model.state_dict()["unit_embed.weight"].shape == (16, 256)


@pytest.mark.parametrize("section,changes,expected", [
    ("model", {"n_layers": 20}, "config.yaml model.n_layers is 20 but model_0.pt has 2 residual layers "
                                "(decoder.denoise_fn.residual_layers.0-1); set model.n_layers to 2"),
    ("model", {"n_chans": 512}, "model.n_chans is 512 but model_0.pt has 16 WaveNet channels "
                                "(decoder.denoise_fn.input_projection.weight [16, 128, 1]); set model.n_chans to 16"),
    ("model", {"n_hidden": 256}, "model.n_hidden is 256 but model_0.pt has 16 condition width "
                                 "(unit_embed.weight [16, 768]); set model.n_hidden to 16"),
    ("model", {"n_spk": 3}, "model.n_spk is 3 but model_0.pt has 2 speakers (spk_embed.weight [2, 16]); "
                            "set model.n_spk to 2"),
    ("model", {"use_pitch_aug": False}, "model.use_pitch_aug is false but model_0.pt has true pitch-augmentation "
                                        "embedding (aug_shift_embed.weight present); set model.use_pitch_aug to true"),
    ("model", {"timesteps": 500}, "model.timesteps is 500 but model_0.pt has 1000 diffusion steps "
                                  "(decoder.betas [1000]); set model.timesteps to 1000"),
    ("data", {"encoder": "hubertsoft", "encoder_out_channels": 256},
     "data.encoder_out_channels is 256 (encoder hubertsoft) but model_0.pt takes 768-dim units "
     "(unit_embed.weight [16, 768]); set data.encoder"),
])
def test_yaml_mismatch_names_field_file_key_and_fix(tmp_path, section, changes, expected):
    model_path, config_path = make_diffusion_model(tmp_path)
    edit_diffusion_yaml(config_path, section, **changes)
    with pytest.raises(ModelError) as err:
        load_diffusion(model_path, config_path)
    assert expected in str(err.value)


def test_every_mismatch_listed_at_once(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path)
    edit_diffusion_yaml(config_path, "model", n_layers=20, n_chans=512, n_spk=1)
    edit_diffusion_yaml(config_path, "spk", spk1=None)
    with pytest.raises(ModelError) as err:
        load_diffusion(model_path, config_path)
    message = str(err.value)
    assert message.startswith("config.yaml does not match model_0.pt:")
    assert all(f"model.{f}" in message for f in ("n_layers", "n_chans", "n_spk"))


def test_wider_wavenet_kernel_refused(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path)
    ckpt = torch.load(model_path, weights_only=True)
    for key in list(ckpt["model"]):
        if key.endswith("dilated_conv.weight"):
            ckpt["model"][key] = torch.zeros(*ckpt["model"][key].shape[:2], 5)
    torch.save(ckpt, model_path)
    with pytest.raises(ModelError, match="kernel size 5 .*DiffusionV2"):
        load_diffusion(model_path, config_path)


def test_missing_or_extra_tensor_is_refused(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path)
    ckpt = torch.load(model_path, weights_only=True)
    del ckpt["model"]["decoder.posterior_mean_coef2"]
    ckpt["model"]["decoder.extra"] = torch.zeros(3)
    torch.save(ckpt, model_path)
    with pytest.raises(ModelError, match=r"missing \['decoder.posterior_mean_coef2'\].*unexpected \['decoder.extra'\]"):
        load_diffusion(model_path, config_path)


def _save(path, obj):
    torch.save(obj, path)
    return path


def _families(tmp_path, parity_dir):
    z = torch.zeros(2, 2)
    so_vits_g, _ = make_upstream_checkpoint(tmp_path / "sovits")
    yield so_vits_g, "so-vits-svc training checkpoint"
    bare_g = _save(tmp_path / "G_bare.pth", torch.load(so_vits_g, weights_only=True)["model"])
    yield bare_g, "so-vits-svc voice generator (G_*.pth)"
    yield parity_dir / "diffusion" / "models" / "nsf_hifigan_dev" / "model", "NSF-HiFiGAN vocoder"
    yield _save(tmp_path / "combsub.pt", {"global_step": 1, "model": {"unit2ctrl.stack.0.weight": z}}), \
        "DDSP-SVC DDSP model (combsub / sins)"
    yield _save(tmp_path / "ddspdiff.pt", {"global_step": 1, "model": {"ddsp_model.unit2ctrl.x": z,
                                                                       "diff_model.decoder.betas": z}}), \
        "DDSP-SVC 'DiffusionNew' / 'DiffusionFast'"
    yield _save(tmp_path / "reflow.pt", {"global_step": 1, "model": {"ddsp_model.x": z, "reflow_model.y": z}}), \
        "DDSP-SVC 6.x rectified-flow"
    yield _save(tmp_path / "naive.pt", {"global_step": 1, "model": {"stack.0.weight": z, "dense_out.weight_v": z,
                                                                    "unit_embed.weight": z}}), \
        "Diffusion-SVC naive model"
    yield _save(tmp_path / "v2.pt", {"global_step": 1, "model": {"unit_embed.weight": z,
                                                                 "decoder.denoise_fn.conv_in.weight": z}}), \
        "'DiffusionV2' model with a ConvNext / NaiveV2"
    yield _save(tmp_path / "v2flow.pt", {"global_step": 1, "model": {"decoder.velocity_fn.x": z}}), \
        "Diffusion-SVC 2.x rectified-flow"
    yield _save(tmp_path / "combo.ptc", {"diff_model": {}, "naive_model": {}, "diff_config_dict": {}}), \
        "Diffusion-SVC combo model"
    yield _save(tmp_path / "rvc.pth", {"weight": {"a": z}, "config": [1, 2], "f0": 1}), "an RVC model"
    yield _save(tmp_path / "tensor.pt", z), "a single tensor of shape [2, 2]"
    yield _save(tmp_path / "other.pt", {"global_step": 1, "model": {"foo.weight": z}}), "it has no ['unit_embed.weight'"


def test_other_families_refused_by_name(tmp_path, parity_dir):
    config = make_diffusion_model(tmp_path / "diff")[1]
    for path, said in _families(tmp_path, parity_dir):
        with pytest.raises(ModelError) as err:
            load_diffusion(path, config)
        assert said in str(err.value), (path, str(err.value))
        assert os.path.basename(path) in str(err.value)


def test_code_in_checkpoint_is_refused(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path)
    torch.save({"global_step": 0, "model": {}, "hook": os.system}, model_path)  # pickles a global
    with pytest.raises(UnsafeFileError):
        load_diffusion(model_path, config_path)


def test_ddsp_svc_diffusion_model_loads(tmp_path):
    """A DDSP-SVC 3-5 / Diffusion-SVC 1.x 'Diffusion' model: same tensors, their yaml (no timesteps, k_step_max,
    spk; encoder contentvec768l12)."""
    model_path, config_path = make_diffusion_model(tmp_path, n_spk=1)
    doc = yaml.safe_load(config_path.read_text())
    for key in ("timesteps", "k_step_max"):
        del doc["model"][key]
    del doc["spk"], doc["data"]["unit_interpolate_mode"]
    doc["data"]["encoder"] = "contentvec768l12"
    config_path.write_text(yaml.safe_dump(doc))
    model = load_diffusion(model_path, config_path)
    assert (model.config.encoder, model.config.max_k_step, model.decoder.full_chain) == ("vec768l12", 1000, True)


def test_find_diffusion_files(tmp_path):
    voice = tmp_path / "voice"
    assert find_diffusion_files(voice) is None
    (voice / "diffusion").mkdir(parents=True)
    assert find_diffusion_files(voice) is None
    for step in (2000, 10000, 500):
        make_diffusion_model(voice / "diffusion", step=step)
    (voice / "diffusion" / "model_best.pt").write_bytes(b"")
    assert find_diffusion_files(voice) == (str(voice / "diffusion" / "model_10000.pt"),
                                           str(voice / "diffusion" / "config.yaml"))
    os.rename(voice / "diffusion" / "config.yaml", voice / "diffusion" / "diffusion.yaml")
    assert find_diffusion_files(voice)[1] == str(voice / "diffusion" / "diffusion.yaml")
    os.remove(voice / "diffusion" / "diffusion.yaml")
    with pytest.raises(ModelError, match="model_10000.pt but no config.yaml"):
        find_diffusion_files(voice)


def test_save_round_trip(tmp_path):
    model_path, config_path = make_diffusion_model(tmp_path / "a", step=100)
    model = load_diffusion(model_path, config_path)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=1e-4)
    out = tmp_path / "model_200.pt"
    save_diffusion_checkpoint(model, out, 200, optimizer)
    raw = torch.load(out, weights_only=True)
    assert sorted(raw) == ["global_step", "model", "optimizer"] and raw["global_step"] == 200
    again = load_diffusion(out, config_path)
    assert again.global_step == 200
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in again.state_dict().items())
