"""DiffTrainSettings: every knob of a diffusion training run, with the defaults of upstream's diffusion template
(the yaml's `train` section and data.duration); `from_config` reads them from a diffusion.yaml."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...errors import OptionError
from ..config import DiffusionConfig

AMP_DTYPES = ("fp32", "fp16", "bf16")
# yaml train key -> settings field
_TRAIN_KEYS = {"epochs": "epochs", "batch_size": "batch_size", "lr": "learning_rate", "decay_step": "decay_step",
               "gamma": "gamma", "weight_decay": "weight_decay", "amp_dtype": "amp_dtype",
               "interval_log": "interval_log", "interval_val": "interval_val",
               "interval_force_save": "interval_force_save", "save_opt": "save_opt", "cache_fp16": "cache_fp16",
               "cache_all_data": "cache_all_data", "keep_best": "keep_best", "seed": "seed"}


@dataclass
class DiffTrainSettings:
    """Defaults are upstream's template values; durations in seconds, intervals in optimizer steps."""

    steps: int | None = None  # stop after this many optimizer steps in total (None: run `epochs` epochs)
    epochs: int = 100000
    batch_size: int = 48
    learning_rate: float = 1e-4
    decay_step: int = 100000  # StepLR step_size (optimizer steps)
    gamma: float = 0.5  # StepLR factor
    weight_decay: float = 0.0  # AdamW
    amp_dtype: str = "fp32"  # fp16 / bf16 autocast (CUDA; bf16 also on CPUs with native bf16)
    duration: float = 2.0  # training crop, seconds (data.duration); shorter clips are left out
    interval_log: int = 10
    interval_val: int = 2000  # steps between checkpoint + validation
    interval_force_save: int = 5000  # checkpoints at multiples of this are never deleted (upstream's rule)
    keep_best: int = 3  # also keep the best N checkpoints by validation loss (0 = keep every checkpoint)
    save_opt: bool = False  # store the AdamW state in model_{step}.pt (upstream: train.save_opt)
    cache_all_data: bool = True  # hold every clip's mel / units in memory
    cache_fp16: bool = True  # ... as float16 (half the memory; cast back for the step)
    seed: int = 1234
    device: str = "cpu"
    num_workers: int | None = None  # DataLoader workers (None: 0 on CPU, the yaml's num_workers on CUDA)
    val_repeats: int = 4  # (t, noise) draws per validation clip for the loss, from a fixed seed
    max_eval_clips: int = 4  # validation clips sampled to mel / audio at each checkpoint
    eval_audio: bool = True  # run the sampler on validation clips (mel, and audio with a vocoder)
    infer_speedup: int = 10
    infer_method: str = "dpm-solver++"
    vocoder: str | None = None  # NSF-HiFiGAN for validation audio (None: mel only)
    base: str | None = None  # pretrained model_0.pt copied into the run folder and loaded

    def __post_init__(self) -> None:
        if self.amp_dtype not in AMP_DTYPES:
            raise OptionError(f"amp_dtype must be one of {', '.join(AMP_DTYPES)}, got {self.amp_dtype!r}.")
        positive = {"batch_size": self.batch_size, "decay_step": self.decay_step, "interval_log": self.interval_log,
                    "interval_val": self.interval_val, "interval_force_save": self.interval_force_save,
                    "val_repeats": self.val_repeats}
        for name, value in positive.items():
            if int(value) < 1:
                raise OptionError(f"{name} must be 1 or more, got {value}.")
        if not self.duration > 0:
            raise OptionError(f"The training crop (data.duration) must be positive seconds, got {self.duration}.")
        if self.learning_rate <= 0 or not 0 < self.gamma <= 1:
            raise OptionError(f"lr must be > 0 and gamma in (0, 1]; got lr {self.learning_rate}, gamma {self.gamma}.")
        if self.steps is not None and self.steps < 0:
            raise OptionError(f"--steps must be 0 or more, got {self.steps}.")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step `step` (1-based), as upstream's StepLR setup gives it:
        lr * gamma ** ((step - 2) // decay_step), never above lr."""
        return self.learning_rate * self.gamma ** max((step - 2) // self.decay_step, 0)

    @classmethod
    def from_config(cls, config: DiffusionConfig, **overrides: Any) -> "DiffTrainSettings":
        """Values from the yaml (train section, data.duration, infer), then `overrides` (None values ignored)."""
        train = config.train or {}
        values: dict[str, Any] = {}
        for key, name in _TRAIN_KEYS.items():
            if train.get(key) is not None:
                values[name] = train[key]
        duration = (config.doc.get("data") or {}).get("duration")
        if duration is not None:
            values["duration"] = float(duration)
        values["infer_speedup"], values["infer_method"] = config.infer_speedup, config.infer_method
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = [k for k in overrides if k not in names]
        if unknown:
            raise TypeError(f"unknown diffusion training settings: {unknown}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("num_workers") is None and str(values.get("device", "cpu")).startswith("cuda"):
            values["num_workers"] = int(train.get("num_workers", 0) or 0)
        return cls(**values)
