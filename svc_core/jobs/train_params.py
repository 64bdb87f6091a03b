"""The options of a training job ("train" kind), checked like a conversion's: unknown fields refused by name,
each value typed and in range, defaults filled in. `check_train_params(params)` -> the normalized params the job
record keeps and the worker runs (svc_core.jobs.train_job).

Fields (TRAIN_FIELDS):
  arch            "sovits" (so-vits-svc 4.1 on the shipped phonevec256 content encoder) or "world" (the WORLD
                  starter voice's kind: fast to train and to run on CPU, plainer sound)
  name            the new voice's name in the library ("" -> "trained voice")
  steps           optimizer steps (1..MAX_STEPS)
  batch_size      clips per step (1..MAX_BATCH_SIZE)
  learning_rate   AdamW learning rate (MIN_LR..MAX_LR); null: the model size's default
  eval_interval   steps between checkpoints (null: steps / 4, so a run keeps a few)
  f0_predictor    the pitch tracker of preprocessing: fcpe (default), pm, dio, harvest, rmvpe (needs rmvpe.pt)
  model_size      "starter" (the shipped starter voice's size, 21.7 M parameters), "full" (upstream's template,
                  45 M) or "tiny" (a few hundred thousand parameters: a quick try, or a test); for "world":
                  starter and full are train-world's defaults, tiny a small net
"""
from __future__ import annotations

import math
from typing import Any

from ..errors import OptionError
from .errors import UnknownField

ARCHES = ("sovits", "world")
MODEL_SIZES = ("starter", "full", "tiny")
F0_PREDICTORS = ("fcpe", "pm", "dio", "harvest", "rmvpe", "crepe", "crepe-tiny")
ENCODER = "phonevec256"  # ships with the repo (voices/starter/phonevec256.pt): works offline
MAX_STEPS = 200_000  # the step cap of one job (about 2 days of a starter-size model on 2 CPU cores)
MAX_BATCH_SIZE = 64
MIN_LR, MAX_LR = 1e-6, 1e-2
MAX_NAME_CHARS = 60
DEFAULTS: dict[str, Any] = {"arch": "sovits", "name": "", "steps": 2000, "batch_size": 4, "learning_rate": None,
                            "eval_interval": None, "f0_predictor": "fcpe", "model_size": "starter"}
TRAIN_FIELDS: tuple[str, ...] = tuple(DEFAULTS)


def _int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or float(value) != int(value):
        raise OptionError(f"{name} must be a whole number; got {value!r}.")
    if not low <= int(value) <= high:
        raise OptionError(f"{name} must be between {low} and {high}; got {int(value)}.")
    return int(value)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise OptionError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    return value.strip().lower()


def check_train_params(params: dict[str, Any]) -> dict[str, Any]:
    """The normalized options of a training job, or OptionError / UnknownField naming what is wrong."""
    if not isinstance(params, dict):
        raise OptionError("The options must be a JSON object.")
    unknown = [name for name in params if name not in TRAIN_FIELDS]
    if unknown:
        raise UnknownField(f"Unknown field{'s' if len(unknown) > 1 else ''} for a training run: "
                           f"{', '.join(map(str, unknown))}. Known fields: {', '.join(TRAIN_FIELDS)}.")
    values = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None or DEFAULTS[k] is None}}
    out: dict[str, Any] = {"arch": _choice("arch", values["arch"], ARCHES)}
    name = values["name"]
    if not isinstance(name, str) or len(name.strip()) > MAX_NAME_CHARS or not name.isprintable():
        raise OptionError(f"name must be printable text of at most {MAX_NAME_CHARS} characters.")
    out["name"] = name.strip()
    out["steps"] = _int("steps", values["steps"], 1, MAX_STEPS)
    out["batch_size"] = _int("batch_size", values["batch_size"], 1, MAX_BATCH_SIZE)
    lr = values["learning_rate"]
    if lr is not None:
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not MIN_LR <= float(lr) <= MAX_LR:
            raise OptionError(f"learning_rate must be a number between {MIN_LR:g} and {MAX_LR:g}; got {lr!r}.")
        lr = float(lr)
    out["learning_rate"] = lr
    interval = values["eval_interval"]
    out["eval_interval"] = (max(1, out["steps"] // 4) if interval is None
                            else _int("eval_interval", interval, 1, MAX_STEPS))
    out["f0_predictor"] = _choice("f0_predictor", values["f0_predictor"], F0_PREDICTORS)
    from ..f0 import resolve_predictor

    resolve_predictor(out["f0_predictor"], None)  # usable here (rmvpe needs its weights: OptionError says so)
    out["model_size"] = _choice("model_size", values["model_size"], MODEL_SIZES)
    return out
