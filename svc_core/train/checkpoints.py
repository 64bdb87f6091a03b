"""Training checkpoints in upstream's layout, resume, pretrained bases and keep-best pruning.

Files in the run folder (upstream names, spec a.1 / j):
  G_{step}.pth, D_{step}.pth   {'model', 'iteration' (= epoch), 'optimizer' (AdamW state), 'learning_rate'}
  checkpoints.json             our record: validation mel loss of every saved step (for keep-best)
  eval/{step}/<speaker>_<clip>.wav   validation audio written with each checkpoint
G_0.pth / D_0.pth are the pretrained base (or the first save) and are never deleted.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import soundfile as sf
import torch

from ..checkpoint import read_generator_state, save_generator_checkpoint
from ..errors import ModelError
from ..safe_load import load_torch

CHECKPOINT_RE = re.compile(r"^([GD])_(\d+)\.pth$")
RECORD_NAME = "checkpoints.json"
EVAL_DIR = "eval"
BASE_STEP = 0  # G_0 / D_0: never deleted


@dataclass
class TrainingCheckpoint:
    """One G_ or D_ file as read back."""

    model: dict[str, torch.Tensor]
    iteration: int  # epoch
    optimizer: Mapping[str, Any] | None
    learning_rate: float


def checkpoint_steps(out_dir: str | os.PathLike) -> dict[str, list[int]]:
    """{'G': sorted steps, 'D': sorted steps} of the G_*.pth / D_*.pth files in out_dir."""
    found: dict[str, list[int]] = {"G": [], "D": []}
    if os.path.isdir(out_dir):
        for name in os.listdir(out_dir):
            m = CHECKPOINT_RE.match(name)
            if m:
                found[m.group(1)].append(int(m.group(2)))
    return {k: sorted(v) for k, v in found.items()}


def latest_pair(out_dir: str | os.PathLike) -> tuple[int, Path, Path] | None:
    """(step, G path, D path) of the highest step that has both files, or None."""
    steps = checkpoint_steps(out_dir)
    common = sorted(set(steps["G"]) & set(steps["D"]))
    if not common:
        return None
    step = common[-1]
    return step, Path(out_dir) / f"G_{step}.pth", Path(out_dir) / f"D_{step}.pth"


def _replace_atomically(write: Callable[[str], None], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    os.replace(tmp, path)


def save_pair(out_dir: str | os.PathLike, step: int, epoch: int, net_g, net_d, optim_g, optim_d,
              learning_rate: float) -> tuple[Path, Path]:
    """Write G_{step}.pth and D_{step}.pth (iteration = epoch, learning_rate = the initial lr), atomically."""
    out = Path(out_dir)
    g_path, d_path = out / f"G_{step}.pth", out / f"D_{step}.pth"
    _replace_atomically(lambda p: save_generator_checkpoint(net_g, p, iteration=epoch, optimizer=optim_g,
                                                            lr=learning_rate), g_path)
    d_state = {k: v.detach().cpu().clone() for k, v in net_d.upstream_state_dict().items()}
    payload = {"model": d_state, "iteration": int(epoch), "optimizer": optim_d.state_dict(),
               "learning_rate": float(learning_rate)}
    _replace_atomically(lambda p: torch.save(payload, p), d_path)
    return g_path, d_path


def read_checkpoint(path: str | os.PathLike, what: str) -> TrainingCheckpoint:
    """Read a G_/D_ file safely; accepts bare state dicts (iteration 1, no optimizer) and 'module.' prefixes."""
    obj = load_torch(path, what=what)
    if isinstance(obj, Mapping) and isinstance(obj.get("model"), Mapping):
        state, iteration = dict(obj["model"]), obj.get("iteration", 1)
        optimizer, lr = obj.get("optimizer"), obj.get("learning_rate", 1e-4)
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state, iteration, optimizer, lr = dict(obj), 1, None, 1e-4
    else:
        raise ModelError(f"{what} '{os.path.basename(path)}' is not a so-vits-svc training checkpoint.")
    if state and all(str(k).startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return TrainingCheckpoint(state, int(iteration or 1), optimizer, float(lr or 1e-4))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: Mapping[str, Any] | None) -> str | None:
    """Load a saved AdamW state if it fits the optimizer's parameters; returns None or why it was not loaded."""
    if not state or not isinstance(state, Mapping) or "param_groups" not in state:
        return "the checkpoint has no optimizer state"
    params = [p for g in optimizer.param_groups for p in g["params"]]
    saved_ids = [i for g in state["param_groups"] for i in g["params"]]
    if len(saved_ids) != len(params):
        return f"it holds {len(saved_ids)} parameters, the model has {len(params)}"
    id_to_param = dict(zip(saved_ids, params))
    for pid, entry in state.get("state", {}).items():
        p = id_to_param.get(pid)
        avg = entry.get("exp_avg") if isinstance(entry, Mapping) else None
        if p is None or (isinstance(avg, torch.Tensor) and tuple(avg.shape) != tuple(p.shape)):
            return "its parameter shapes differ from the model's"
    optimizer.load_state_dict(dict(state))
    return None


def load_generator_base(net_g, path: str | os.PathLike, log: Callable[[str], None]) -> None:
    """Load a pretrained G (training or release file) into net_g, shape-checked.

    Only emb_g may differ in size (a base trained with another speaker count): it is then re-initialised, and
    `log` says so. Any other mismatch raises ModelError.
    """
    name = os.path.basename(path)
    state = read_generator_state(path)
    expected = net_g.upstream_state_dict()
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if "emb_g.weight" in wrong:
        wrong.remove("emb_g.weight")
        log(f"Base {name} has {state['emb_g.weight'].shape[0]} speaker embedding(s) but this dataset has "
            f"{expected['emb_g.weight'].shape[0]}: emb_g is re-initialised (only emb_g; the new speakers are learned "
            "from scratch), every other tensor comes from the base.")
        state = dict(state)
        state["emb_g.weight"] = expected["emb_g.weight"].clone()
    if wrong:
        details = "; ".join(f"{k} {list(state[k].shape)} vs {list(expected[k].shape)}" for k in wrong[:4])
        raise ModelError(f"Base {name} does not fit the model built from config.json ({details}"
                         f"{' ...' if len(wrong) > 4 else ''}). A base must match the speech encoder (ssl_dim), "
                         "the sizes (tiny or not) and vol_embedding of the config.")
    if not any(k.startswith("enc_q.") for k in state):
        log(f"Base {name} is a release file without enc_q: the posterior encoder starts from random weights.")
    try:
        net_g.load_upstream_state_dict(state)
    except ModelError as err:
        raise ModelError(f"Base {name}: {err}") from None


def load_discriminator_base(net_d, path: str | os.PathLike) -> None:
    ckpt = read_checkpoint(path, "discriminator checkpoint")
    try:
        net_d.load_upstream_state_dict(ckpt.model)
    except ModelError as err:
        raise ModelError(f"Base {os.path.basename(path)}: {err}") from None


@dataclass(frozen=True)
class CheckpointLayout:
    """How one model family names its checkpoints in a run folder, for CheckpointKeeper."""

    pattern: re.Pattern  # matches one checkpoint file name; group "step" is the step
    names: Callable[[int], tuple[str, ...]]  # the file names of the checkpoint of a step
    metric: str  # what the recorded score is (written into the record file)
    record_key: str  # key of the step -> score map in the record file


SOVITS_LAYOUT = CheckpointLayout(re.compile(r"^[GD]_(?P<step>\d+)\.pth$"), lambda s: (f"G_{s}.pth", f"D_{s}.pth"),
                                 "validation mel L1 (lower is better)", "val_mel")


def layout_steps(out_dir: str | os.PathLike, layout: CheckpointLayout) -> set[int]:
    """Steps that have at least one file of `layout` in out_dir."""
    if not os.path.isdir(out_dir):
        return set()
    return {int(m.group("step")) for m in map(layout.pattern.match, os.listdir(out_dir)) if m}


class CheckpointKeeper:
    """Remembers each saved step's validation loss and deletes all but the best `keep_best` checkpoints.

    Step 0 (the pretrained base), the newest checkpoint (needed to resume), steps for which `protect(step)` is true
    (diffusion: upstream's interval_force_save multiples) and checkpoints it has no record of are always kept;
    keep_best 0 keeps everything. Checkpoints saved without validation (Ctrl-C) rank last. `layout` names the files
    (default: so-vits G_/D_ pairs).
    """

    def __init__(self, out_dir: str | os.PathLike, keep_best: int, layout: CheckpointLayout = SOVITS_LAYOUT,
                 protect: Callable[[int], bool] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.keep_best = keep_best
        self.layout = layout
        self.protect = protect or (lambda step: False)
        self.path = self.out_dir / RECORD_NAME
        self.record: dict[int, float | None] = {}
        if self.path.is_file():
            try:
                raw = json.loads(self.path.read_text(encoding="utf-8"))
                self.record = {int(k): (None if v is None else float(v))
                               for k, v in raw.get(layout.record_key, {}).items()}
            except (ValueError, AttributeError):
                self.record = {}

    def add(self, step: int, score: float | None) -> list[int]:
        """Record a new checkpoint and prune; returns the deleted steps."""
        self.record[step] = score
        deleted = self.prune(latest=step)
        self._write()
        return deleted

    def _write(self) -> None:
        body = {"metric": self.layout.metric,
                self.layout.record_key: {str(k): v for k, v in sorted(self.record.items())}}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(body, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def prune(self, latest: int) -> list[int]:
        if self.keep_best <= 0:
            return []
        # only checkpoints this run recorded; files copied in from elsewhere (no score) are left alone
        steps = sorted(layout_steps(self.out_dir, self.layout) & set(self.record) - {BASE_STEP})
        score = {s: self.record.get(s) for s in steps}
        ranked = sorted(steps, key=lambda s: (score[s] is None, score[s] if score[s] is not None else 0.0, -s))
        keep = set(ranked[: self.keep_best]) | {latest}
        deleted = [s for s in steps if s not in keep and not self.protect(s)]
        for step in deleted:
            for name in self.layout.names(step):
                (self.out_dir / name).unlink(missing_ok=True)
            shutil.rmtree(self.out_dir / EVAL_DIR / str(step), ignore_errors=True)
            self.record.pop(step, None)
        return deleted


def write_eval_audio(out_dir: str | os.PathLike, step: int, name: str, audio: np.ndarray, sr: int) -> Path:
    """eval/{step}/<speaker>_<clip>.wav, 16-bit."""
    folder = Path(out_dir) / EVAL_DIR / str(step)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name.replace("/", "_").removesuffix(".wav") + ".wav")
    sf.write(str(path), np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16")
    return path
