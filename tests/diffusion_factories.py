"""Builders of upstream-layout diffusion model files with random weights (fixed seeds), for tests.

    model_path, config_path = make_diffusion_model(tmp_path / "diffusion", n_spk=2)
    model = svc_core.diffusion.load_diffusion(model_path, config_path)

Files are what upstream's train_diff writes: `model_<step>.pt` = {'global_step': step, 'model': state_dict}
(+ 'optimizer' with save_opt) and `config.yaml` (yaml dump of the diffusion config, keys sorted).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml

from svc_core.diffusion.config import diffusion_config_from_dict, template_diffusion_config
from svc_core.diffusion.unit2mel import Unit2Mel

# Small sizes: a few hundred kB, milliseconds per denoiser call on a CPU.
SMALL_MODEL: dict[str, int] = {"n_layers": 2, "n_chans": 16, "n_hidden": 16}
ZERO_FILL_STD = 0.02  # upstream zero-initialises the WaveNet output projection; refilled so eps is not 0
OUTPUT_GAIN = 10.0  # as the parity fixtures (README "Parity conditioning"): output_projection.weight x10
STEP_GAIN = 4.0  # and every diffusion_projection.weight x4, so eps depends visibly on t


def make_diffusion_config_dict(*, encoder: str = "vec768l12", n_spk: int = 2, speakers: Mapping[str, int] | None = None,
                               small: bool = True, **model_overrides: Any) -> dict[str, Any]:
    """An upstream-layout diffusion yaml dict (the template with encoder, sizes and speakers filled in)."""
    if speakers is None:
        speakers = {f"spk{i}": i for i in range(n_spk)}
    model: dict[str, Any] = dict(SMALL_MODEL) if small else {}
    model["n_spk"] = n_spk
    model.update(model_overrides)
    doc = template_diffusion_config(encoder, speakers=speakers, **model)
    doc["device"] = "cpu"
    return doc


def make_random_unit2mel(config_doc: Mapping[str, Any], seed: int = 0, conditioned: bool = True) -> Unit2Mel:
    """Unit2Mel with seeded random weights; `conditioned` applies the parity fixtures' weight conditioning."""
    config = diffusion_config_from_dict(dict(config_doc))
    torch.manual_seed(seed)
    model = Unit2Mel.from_config(config)
    if conditioned:
        wavenet = model.decoder.denoise_fn
        with torch.no_grad():
            wavenet.output_projection.weight.normal_(0.0, ZERO_FILL_STD).mul_(OUTPUT_GAIN)
            for layer in wavenet.residual_layers:
                layer.diffusion_projection.weight.mul_(STEP_GAIN)
    return model.eval()


def make_diffusion_model(out_dir: str | os.PathLike, *, encoder: str = "vec768l12", n_spk: int = 2, seed: int = 0,
                         step: int = 0, with_optimizer: bool = False, bare_state_dict: bool = False,
                         conditioned: bool = True, config_name: str = "config.yaml",
                         **model_overrides: Any) -> tuple[Path, Path]:
    """Write model_<step>.pt + config.yaml into out_dir (created); returns both paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    doc = make_diffusion_config_dict(encoder=encoder, n_spk=n_spk, **model_overrides)
    model = make_random_unit2mel(doc, seed=seed, conditioned=conditioned)
    state = model.state_dict()
    payload: dict[str, Any] = {"global_step": step, "model": state}
    if with_optimizer:
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        payload["optimizer"] = optimizer.state_dict()
    model_path = out / f"model_{step}.pt"
    torch.save(state if bare_state_dict else payload, model_path)
    config_path = out / config_name
    with open(config_path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)
    return model_path, config_path


def edit_diffusion_yaml(config_path: str | os.PathLike, section: str, **changes: Any) -> Path:
    """Rewrite one section's keys of a config.yaml in place (a key set to None is removed)."""
    path = Path(config_path)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    sec = doc.setdefault(section, {})
    for key, value in changes.items():
        if value is None:
            sec.pop(key, None)
        else:
            sec[key] = value
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def diffusion_inputs(input_channel: int, frames: int = 16, batch: int = 1, seed: int = 0,
                     n_mels: int = 128) -> dict[str, torch.Tensor]:
    """Seeded Unit2Mel inputs: units [B,T,C], f0 [B,T,1] Hz (a glide, last quarter unvoiced), vol [B,T,1],
    spk_id [B,1] (0), gt_spec [B,T,M] log-mel in upstream's range."""
    gen = torch.Generator().manual_seed(seed)
    f0 = torch.linspace(140.0, 420.0, frames).repeat(batch, 1)[..., None]
    f0[:, frames * 3 // 4:] = 0.0
    return {
        "units": torch.randn(batch, frames, input_channel, generator=gen),
        "f0": f0,
        "vol": torch.rand(batch, frames, 1, generator=gen) * 0.2,
        "spk_id": torch.zeros(batch, 1, dtype=torch.long),
        "gt_spec": torch.rand(batch, frames, n_mels, generator=gen) * 10.0 - 10.0,
    }
