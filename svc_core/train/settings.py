"""TrainSettings: every knob of a training run, with upstream's defaults (config.json "train" section)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..config import SvcConfig

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass
class TrainSettings:
    """Defaults are upstream's template values; `from_config` takes them from a config.json instead."""

    steps: int | None = None  # stop after this many optimizer steps (None: run `epochs` epochs)
    epochs: int = 10000
    batch_size: int = 6  # per process
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # ExponentialLR gamma, once per epoch
    warmup_epochs: int = 0
    segment_frames: int = 20  # frames decoded per example (segment_size / hop)
    crop_frames: int = 790  # training clips longer than this are randomly cropped (upstream: > 800 -> 790)
    eval_interval: int = 800  # steps between validation + checkpoint
    log_interval: int = 200  # steps between progress lines
    keep_best: int = 3  # G/D pairs kept by validation mel loss (0 = all); G_0/D_0 and the newest always stay
    seed: int = 1234
    device: str = "cpu"
    precision: str = "fp32"  # fp16 / bf16 autocast (CUDA only)
    c_mel: float = 45.0
    c_kl: float = 1.0
    c_harm: float = 0.0  # weight of the harmonic loss (losses.harmonic_loss); 0 = off, as upstream
    gan_start_step: int = 0  # the discriminator and adversarial losses start at this step (0 = at once, upstream)
    vol_aug: bool = False
    num_workers: int | None = None  # DataLoader workers (None: 0 on CPU, 4 on CUDA)
    max_eval_clips: int = 4  # validation clips inferred per checkpoint
    max_eval_frames: int = 800  # validation clips are cut to this many frames
    nan_patience: int = 3  # consecutive non-finite steps before the last good state is restored
    snapshot_interval: int = 100  # good steps between in-memory "last good state" snapshots
    max_restores: int = 3  # restores without a good step in between before giving up
    d_width_divisor: int = 1  # >1 shrinks the discriminator (tests/experiments; D files then not upstream-sized)
    posterior_input: str = "spectrum"  # enc_q input: "spectrum" (upstream) or "envelope" (train/envelope.py)
    resume: bool = False  # continue from the highest G_/D_ pair in the run folder
    base: tuple[str, str] | None = None  # pretrained (G_0.pth, D_0.pth) copied into the run folder and loaded

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.posterior_input not in ("spectrum", "envelope"):
            raise ValueError(f"posterior_input must be 'spectrum' or 'envelope', got {self.posterior_input!r}")
        self.betas = tuple(self.betas)
        if self.base is not None:
            self.base = tuple(self.base)

    @classmethod
    def from_config(cls, config: SvcConfig, **overrides: Any) -> "TrainSettings":
        """Values from config.json's train section, then `overrides` (None values are ignored)."""
        train = config.raw.get("train", {})
        values: dict[str, Any] = {}
        simple = {"epochs": "epochs", "learning_rate": "learning_rate", "eps": "eps", "batch_size": "batch_size",
                  "lr_decay": "lr_decay", "warmup_epochs": "warmup_epochs", "c_mel": "c_mel", "c_kl": "c_kl",
                  "c_harm": "c_harm", "gan_start_step": "gan_start_step", "eval_interval": "eval_interval",
                  "log_interval": "log_interval", "seed": "seed",
                  "keep_ckpts": "keep_best", "vol_aug": "vol_aug", "crop_frames": "crop_frames",
                  "posterior_input": "posterior_input"}
        for key, name in simple.items():
            if train.get(key) is not None:
                values[name] = train[key]
        if train.get("betas"):
            values["betas"] = tuple(train["betas"])
        values["segment_frames"] = max(1, config.segment_size // config.hop_length)
        if train.get("fp16_run"):
            values["precision"] = "bf16" if str(train.get("half_type", "fp16")).lower() == "bf16" else "fp16"
        names = {f.name for f in dataclasses.fields(cls)}
        values.update({k: v for k, v in overrides.items() if v is not None and k in names})
        unknown = [k for k in overrides if k not in names]
        if unknown:
            raise TypeError(f"unknown training settings: {unknown}")
        return cls(**values)
