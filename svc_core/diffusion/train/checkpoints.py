"""Diffusion checkpoints in upstream's layout, resume, pretrained bases and the keep rule.

Files in the run folder (upstream's names, spec f.2):
  model_{step}.pt      torch.save({'global_step': int, 'model': state_dict[, 'optimizer': AdamW state]})
  model_0.pt           a pretrained base (Diffusion-SVC / DDSP-SVC-compatible); never deleted
  config.yaml          the diffusion yaml the run trains with (upstream's Saver writes it too)
  checkpoints.json     our record: validation loss of every saved step (svc_core.train.checkpoints)
  eval/{step}/         validation mel (.npy) and audio (.wav, with a vocoder) of that checkpoint
Keep rule: upstream deletes the previous checkpoint unless its step is a multiple of interval_force_save; here a
checkpoint also stays while it is among the `keep_best` best by validation loss (svc_core.train CheckpointKeeper).
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from ...errors import ModelError
from ...safe_load import load_torch
from ...train.checkpoints import CheckpointKeeper, CheckpointLayout, layout_steps
from ..config import DiffusionConfig
from ..loader import check_against_config, detect_architecture, read_diffusion_state, save_diffusion_checkpoint

DIFF_LAYOUT = CheckpointLayout(re.compile(r"^model_(?P<step>\d+)\.pt$"), lambda step: (f"model_{step}.pt",),
                               "validation diffusion loss: noise-prediction MSE (lower is better)", "val_loss")
CONFIG_NAME = "config.yaml"
# keys a base may lack or have in another size (re-initialised): upstream loads bases with strict=False
OPTIONAL_PREFIXES = ("spk_embed.", "aug_shift_embed.")


def checkpoint_path(out_dir: str | os.PathLike, step: int) -> Path:
    return Path(out_dir) / f"model_{step}.pt"


def latest_checkpoint(out_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(step, path) of the highest-numbered model_{step}.pt in out_dir (upstream's resume pick), or None."""
    steps = layout_steps(out_dir, DIFF_LAYOUT)
    if not steps:
        return None
    step = max(steps)
    return step, checkpoint_path(out_dir, step)


def keeper(out_dir: str | os.PathLike, keep_best: int, force_save: int) -> CheckpointKeeper:
    """Upstream's rule (multiples of `force_save` stay) plus the `keep_best` best; keep_best 0 keeps all."""
    return CheckpointKeeper(out_dir, keep_best, DIFF_LAYOUT, protect=lambda step: step % force_save == 0)


def save_checkpoint(out_dir: str | os.PathLike, step: int, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None) -> Path:
    """Write model_{step}.pt atomically (svc_core.diffusion.loader's writer; optimizer state only when given, as
    upstream's save_opt)."""
    path = checkpoint_path(out_dir, step)
    tmp = path.with_name(path.name + ".tmp")
    save_diffusion_checkpoint(model, tmp, step, optimizer)
    os.replace(tmp, path)
    return path


@dataclass
class DiffCheckpoint:
    step: int
    model: dict[str, torch.Tensor]
    optimizer: Mapping[str, Any] | None


def read_checkpoint(path: str | os.PathLike) -> DiffCheckpoint:
    """Read model_{step}.pt safely with the inference loader's reader (svc_core.diffusion.loader: ModelError naming
    what the file is when it is not a diffusion model), plus its AdamW state when it has one."""
    state, step = read_diffusion_state(path)
    obj = load_torch(path, what="diffusion checkpoint")  # tensors are memory-mapped: the second read is cheap
    optimizer = obj.get("optimizer") if isinstance(obj, Mapping) else None
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return DiffCheckpoint(int(step or 0), state, optimizer if isinstance(optimizer, Mapping) else None)


def load_state(model: torch.nn.Module, config: DiffusionConfig, state: Mapping[str, torch.Tensor], name: str,
               base: bool, log: Callable[[str], None]) -> None:
    """Load `state` into `model` (built from `config`), checking the architecture field by field (ModelError naming
    the yaml field, as the inference loader) and then every key and shape.

    For a pretrained base (`base`), the speaker and pitch-augmentation embeddings may be absent or differ in size
    (another speaker count): they keep their fresh initialisation and `log` says so.
    """
    arch = detect_architecture(state)
    if base:  # a base may have another speaker count or no pitch-augmentation embedding
        config = dataclasses.replace(config, n_spk=arch.n_spk, use_pitch_aug=arch.use_pitch_aug)
    try:
        check_against_config(config, arch, name)
    except ModelError as err:
        if not base:
            raise
        raise ModelError(f"{err}\nA pretrained base fixes the model size: `preprocess --use-diff --diff-size full` "
                         "writes upstream's (20 layers x 512 channels), which the published model_0.pt files use.") \
            from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    extra = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    fresh: list[str] = []
    if base:
        for group in (missing, extra, wrong):
            fresh += [k for k in group if k.startswith(OPTIONAL_PREFIXES)]
            group[:] = [k for k in group if not k.startswith(OPTIONAL_PREFIXES)]
    problems = []
    if wrong:
        problems.append("; ".join(f"{k} {list(state[k].shape)} vs {list(expected[k].shape)}" for k in wrong[:3]))
    if missing:
        problems.append(f"missing {', '.join(missing[:3])}" + (" ..." if len(missing) > 3 else ""))
    if extra:
        problems.append(f"unexpected {', '.join(extra[:3])}" + (" ..." if len(extra) > 3 else ""))
    if problems:
        raise ModelError(f"'{name}' does not fit the model built from the diffusion yaml ({'; '.join(problems)}). "
                         "Its model.n_layers / n_chans / n_hidden / data.encoder_out_channels / timesteps must match "
                         "the checkpoint (a pretrained model_0.pt needs preprocess --diff-size full).")
    keep = {k: v for k, v in state.items() if k in expected and k not in fresh}
    merged = {**expected, **keep}
    model.load_state_dict(merged, strict=True)
    if fresh:
        log(f"{name}: {', '.join(sorted({k.split('.')[0] for k in fresh}))} start(s) from fresh weights (absent or "
            "another size in the base); everything else comes from the base.")

