"""Load a so-vits-svc 4.1 diffusion model (`model_*.pt` + `config.yaml`) safely and strictly.

The architecture is read from the tensors and checked against the yaml: each mismatch names the yaml field, the
checkpoint and the tensor, and says what to set. Files of other families (so-vits-svc generators, NSF-HiFiGAN
vocoders, DDSP-SVC DDSP / combined / reflow models, Diffusion-SVC naive / v2 / reflow / combo models, RVC) are
refused with a message saying what the file is.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch

from ..errors import ModelError
from ..safe_load import load_torch
from .config import DiffusionConfig, load_diffusion_config
from .unit2mel import Unit2Mel

WHAT = "diffusion model"
DIFFUSION_DIR = "diffusion"  # a voice folder's subfolder (upstream: logs/44k/diffusion)
CONFIG_NAMES = ("config.yaml", "diffusion.yaml")  # train_diff's copy first, then preprocess's configs/diffusion.yaml
MODEL_FILE = re.compile(r"^model_(\d+)\.pt$")
_LAYER = re.compile(r"^decoder\.denoise_fn\.residual_layers\.(\d+)\.")
_REQUIRED = ("unit_embed.weight", "f0_embed.weight", "volume_embed.weight",
             "decoder.denoise_fn.input_projection.weight", "decoder.betas")
INPUT_PROJECTION = "decoder.denoise_fn.input_projection.weight"
DILATED_KERNEL = 3  # upstream WaveNet's dilated_conv kernel size

# (test on the state-dict keys, what such a file is)
_STATE_FAMILIES: tuple[tuple[Any, str], ...] = (
    (lambda k: any(x.startswith(("emb_g.", "enc_p.", "flow.")) for x in k),
     "a so-vits-svc voice generator (G_*.pth); the diffusion model is the model_*.pt in logs/44k/diffusion"),
    (lambda k: any(x.startswith("discriminators.") for x in k), "a so-vits-svc discriminator (D_*.pth)"),
    (lambda k: any(x.startswith("reflow_model.") for x in k), "a DDSP-SVC 6.x rectified-flow model (reflow)"),
    (lambda k: any(x.startswith("ddsp_model.") for x in k),
     "a DDSP-SVC 'DiffusionNew' / 'DiffusionFast' model (DDSP and diffusion in one network)"),
    (lambda k: any(x.startswith("unit2ctrl.") for x in k), "a DDSP-SVC DDSP model (combsub / sins), not a diffusion "
                                                           "model"),
    (lambda k: any(x.startswith("decoder.velocity_fn.") for x in k), "a Diffusion-SVC 2.x rectified-flow model"),
    (lambda k: any(x.startswith(("decoder.naive_stack.", "naive_stack.", "naive_proj.")) for x in k),
     "a Diffusion-SVC 2.x combo-trained model (naive + diffusion)"),
    (lambda k: any(x.startswith("decoder.denoise_fn.transformer.") for x in k),
     "a Diffusion-SVC 2.x 'DiffusionV2' model (WaveNet with transformer layers)"),
    (lambda k: any(x.startswith("stack.") for x in k) and any(x.startswith("dense_out.") for x in k),
     "a Diffusion-SVC naive model (a transformer that predicts the mel directly, no diffusion)"),
    (lambda k: any(x.startswith("decoder.denoise_fn.") for x in k)
     and not any(_LAYER.match(x) for x in k),
     "a Diffusion-SVC 2.x 'DiffusionV2' model with a ConvNext / NaiveV2 (LYNXNet) denoiser"),
    (lambda k: any(x.startswith("m_source.") for x in k) and any(x.startswith("conv_pre.") for x in k),
     "an NSF-HiFiGAN vocoder generator"),
    (lambda k: any(x.startswith(("encoder.layers", "model.encoder.layers")) for x in k),
     "a content encoder (HuBERT / ContentVec)"),
)


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:6]]
        return f"a dict with keys {keys}{' ...' if len(obj) > 6 else ''}"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"


def _top_level_family(obj: Mapping[str, Any]) -> Optional[str]:
    if "generator" in obj:
        return "an NSF-HiFiGAN vocoder ({'generator': ...}, e.g. pretrain/nsf_hifigan/model); give it as the vocoder"
    if "diff_model" in obj and "naive_model" in obj:
        return "a Diffusion-SVC combo model (diffusion + naive models and their configs in one file)"
    if isinstance(obj.get("weight"), Mapping) and "config" in obj:
        return "an RVC model"
    if "model" in obj and "iteration" in obj:
        return "a so-vits-svc training checkpoint (G_*.pth / D_*.pth)"
    return None


def read_diffusion_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], Optional[int]]:
    """(state dict, global_step or None) of a diffusion checkpoint: `{'global_step', 'model'[, 'optimizer']}` or a
    bare state dict. ModelError saying what the file is for anything else."""
    path = os.fspath(path)
    name = os.path.basename(path)
    obj = load_torch(path, what=WHAT)
    if not isinstance(obj, Mapping):
        raise ModelError(f"'{name}' is not a diffusion model: it holds {_describe(obj)}, but a model_*.pt holds "
                         "{'global_step': ..., 'model': state dict}.")
    family = _top_level_family(obj)
    if family:
        raise ModelError(f"'{name}' is {family}, not a so-vits-svc diffusion model (model_*.pt).")
    step: Optional[int] = None
    if isinstance(obj.get("model"), Mapping):
        state = obj["model"]
        raw_step = obj.get("global_step")
        step = int(raw_step) if isinstance(raw_step, int) and not isinstance(raw_step, bool) else None
    elif obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    else:
        raise ModelError(f"'{name}' is not a diffusion model: it holds {_describe(obj)}, but a model_*.pt holds "
                         "{'global_step': ..., 'model': state dict} or a plain state dict.")
    if not all(isinstance(k, str) for k in state) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"'{name}': the 'model' entry is not a state dict of tensors; the file is damaged or not "
                         "a diffusion model.")
    keys = list(state)
    for test, what in _STATE_FAMILIES:
        if test(keys):
            raise ModelError(f"'{name}' is {what}, not a so-vits-svc diffusion model (Unit2Mel).")
    missing = [k for k in _REQUIRED if k not in state]
    if missing:
        raise ModelError(f"'{name}' is not a so-vits-svc diffusion model: it has no {missing} (found "
                         f"{_describe(state)}).")
    return dict(state), step


@dataclass(frozen=True)
class Architecture:
    """What the tensors say the Unit2Mel is (evidence: the key and shape each value was read from)."""

    input_channel: int
    n_hidden: int
    n_chans: int
    out_dims: int
    n_layers: int
    n_spk: int
    use_pitch_aug: bool
    timesteps: int
    evidence: dict[str, str]


def _shape(state: Mapping[str, torch.Tensor], key: str) -> str:
    return f"{key} {list(state[key].shape)}"


def detect_architecture(state: Mapping[str, torch.Tensor]) -> Architecture:
    """Read the Unit2Mel hyperparameters from a state dict (n_spk 1 when there is no spk_embed)."""
    unit = state["unit_embed.weight"]
    proj = state[INPUT_PROJECTION]
    layers = sorted({int(m.group(1)) for k in state if (m := _LAYER.match(k))})
    spk = state.get("spk_embed.weight")
    layer_note = f"decoder.denoise_fn.residual_layers.0-{layers[-1]}" if layers else "no residual_layers"
    return Architecture(
        input_channel=int(unit.shape[1]), n_hidden=int(unit.shape[0]), n_chans=int(proj.shape[0]),
        out_dims=int(proj.shape[1]), n_layers=len(layers), n_spk=int(spk.shape[0]) if spk is not None else 1,
        use_pitch_aug="aug_shift_embed.weight" in state, timesteps=int(state["decoder.betas"].shape[0]),
        evidence={
            "input_channel": _shape(state, "unit_embed.weight"), "n_hidden": _shape(state, "unit_embed.weight"),
            "n_chans": _shape(state, INPUT_PROJECTION), "out_dims": _shape(state, INPUT_PROJECTION),
            "n_layers": layer_note,
            "n_spk": _shape(state, "spk_embed.weight") if spk is not None else "no spk_embed (one speaker)",
            "use_pitch_aug": "aug_shift_embed.weight " + ("present" if "aug_shift_embed.weight" in state
                                                          else "absent"),
            "timesteps": _shape(state, "decoder.betas"),
        })


def _js(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def check_against_config(config: DiffusionConfig, arch: Architecture, model_name: str) -> None:
    """ModelError listing every yaml field that disagrees with the checkpoint, with both values and the fix."""
    yaml_name = config.source
    problems: list[str] = []
    if config.encoder_out_channels != arch.input_channel:
        problems.append(f"{yaml_name} data.encoder_out_channels is {config.encoder_out_channels} (encoder "
                        f"{config.encoder}) but {model_name} takes {arch.input_channel}-dim units "
                        f"({arch.evidence['input_channel']}); set data.encoder to the encoder the model was trained "
                        f"with and data.encoder_out_channels to {arch.input_channel}")
    fields = (("n_layers", "model.n_layers", "residual layers"), ("n_chans", "model.n_chans", "WaveNet channels"),
              ("n_hidden", "model.n_hidden", "condition width"), ("n_spk", "model.n_spk", "speakers"),
              ("use_pitch_aug", "model.use_pitch_aug", "pitch-augmentation embedding"),
              ("timesteps", "model.timesteps", "diffusion steps"))
    for attr, field_name, label in fields:
        declared, found = getattr(config, attr), getattr(arch, attr)
        if declared != found:
            problems.append(f"{yaml_name} {field_name} is {_js(declared)} but {model_name} has {_js(found)} {label} "
                            f"({arch.evidence[attr]}); set {field_name} to {_js(found)}")
    if problems:
        raise ModelError(f"{yaml_name} does not match {model_name}:\n  - " + "\n  - ".join(problems)
                         + f"\nUse the config.yaml that was saved with {model_name}, or fix the fields above.")


def _check_kernel(state: Mapping[str, torch.Tensor], model_name: str) -> None:
    key = "decoder.denoise_fn.residual_layers.0.dilated_conv.weight"
    if key in state and state[key].dim() == 3 and state[key].shape[2] != DILATED_KERNEL:
        raise ModelError(f"'{model_name}' has a WaveNet with kernel size {state[key].shape[2]} ({_shape(state, key)})"
                         f": a Diffusion-SVC 2.x 'DiffusionV2' model, not a so-vits-svc diffusion model (kernel 3).")


def build_from_state(config: DiffusionConfig, state: Mapping[str, torch.Tensor], model_name: str) -> Unit2Mel:
    """A Unit2Mel with config's architecture holding `state` (strict: every key, every shape)."""
    _check_kernel(state, model_name)
    model = Unit2Mel.from_config(config, out_dims=detect_architecture(state).out_dims)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k}: file {list(v.shape)}, {config.source} gives {list(expected[k].shape)}"
             for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = ([f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}"] if missing else []) \
            + ([f"unexpected {unexpected[:4]}{' ...' if len(unexpected) > 4 else ''}"] if unexpected else []) \
            + (["; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else "")] if wrong else [])
        raise ModelError(f"'{model_name}' does not have the tensors {config.source} describes ("
                         + "; ".join(parts) + "); it is not a so-vits-svc 4.1 diffusion model, or the yaml belongs "
                         "to another model.")
    model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}, strict=True)
    return model


def load_diffusion(model_path: str | os.PathLike, config_path: str | os.PathLike,
                   device: str | torch.device = "cpu") -> Unit2Mel:
    """Load model_*.pt + config.yaml: checked against each other, float32, eval mode, no gradients.

    The returned Unit2Mel carries `.config` (DiffusionConfig) and `.global_step` (int or None)."""
    config = load_diffusion_config(config_path)
    model_name = os.path.basename(os.fspath(model_path))
    state, step = read_diffusion_state(model_path)
    arch = detect_architecture(state)
    check_against_config(config, arch, model_name)
    model = build_from_state(config, state, model_name).to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    model.global_step = step
    return model


def _step(name: str) -> int:
    match = MODEL_FILE.match(name)
    return int(match.group(1)) if match else -1


def find_diffusion_files(voice_dir: str | os.PathLike) -> Optional[tuple[str, str]]:
    """(model_*.pt with the highest step, its config.yaml) in `voice_dir/diffusion/`; None when the folder has no
    diffusion model. ModelError when it has a model but no config.yaml."""
    return find_in_folder(os.path.join(os.fspath(voice_dir), DIFFUSION_DIR))


def find_in_folder(folder: str | os.PathLike) -> Optional[tuple[str, str]]:
    """(model_*.pt with the highest step, its config.yaml) directly in `folder` (upstream's logs/44k/diffusion/);
    None when it holds no diffusion model. ModelError when it has a model but no config.yaml."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return None
    models = [n for n in os.listdir(folder) if MODEL_FILE.match(n) and os.path.isfile(os.path.join(folder, n))]
    if not models:
        return None
    best = max(models, key=_step)
    for name in CONFIG_NAMES:
        config = os.path.join(folder, name)
        if os.path.isfile(config):
            return os.path.join(folder, best), config
    raise ModelError(f"'{folder}' has the diffusion model {best} but no config.yaml; copy the config.yaml it was "
                     "trained with (logs/44k/diffusion/config.yaml) next to it.")


def save_diffusion_checkpoint(model: Unit2Mel, path: str | os.PathLike, step: int,
                              optimizer: Optional[torch.optim.Optimizer] = None) -> None:
    """Write upstream's `model_<step>.pt` layout: {'global_step': step, 'model': state_dict[, 'optimizer': ...]}
    (the optimizer only when given, as upstream's save_opt)."""
    payload: dict[str, Any] = {"global_step": int(step), "model": model.state_dict()}
    if optimizer is not None:
        payload["optimizer"] = optimizer.state_dict()
    torch.save(payload, os.fspath(path))
