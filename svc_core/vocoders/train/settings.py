"""VocoderTrainSettings: every knob of a vocoder training run; SIZE_PRESETS: the generator sizes a run can start
from when it does not fine-tune a base (openvpi's full size, and a small one for 2 CPU cores)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ...errors import OptionError
from ..nsf_hifigan import VocoderConfig

# generator sizes (the mel settings stay openvpi's: 44.1 kHz, 128 bins, n_fft 2048, hop 512, 40-16000 Hz)
SIZE_PRESETS: dict[str, VocoderConfig] = {
    "full": VocoderConfig(),  # openvpi nsf_hifigan_20221211: upsample_initial_channel 512 (~14 M parameters)
    # for CPU training: a quarter of the channels and HiFi-GAN V3's lighter ResBlock2 (2 convs per kernel, not 6)
    "small": VocoderConfig(upsample_initial_channel=128, resblock="2",
                           resblock_dilation_sizes=((1, 3), (1, 3), (1, 3))),
}
# openvpi's own training values, written into config.json beside the generator (as their file carries them)
OPENVPI_TRAIN_FIELDS = ("learning_rate", "adam_b1", "adam_b2", "lr_decay", "segment_size", "batch_size", "seed")


@dataclass
class VocoderTrainSettings:
    """Steps count optimizer steps of the generator; sizes in mel frames (hop 512 samples) unless named."""

    steps: int = 2000  # stop at this total step count
    batch_size: int = 4
    segment_frames: int = 32  # training crop: 32 frames = 16384 samples (openvpi's segment_size)
    learning_rate: float = 2e-4  # AdamW, generator and discriminator (HiFi-GAN / openvpi)
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    lr_decay: float = 0.999  # ExponentialLR factor ...
    decay_every: int = 100  # ... applied every this many steps (HiFi-GAN: once per epoch)
    c_mel: float = 45.0  # weight of the mel L1 (HiFi-GAN)
    c_harm: float = 0.0  # weight of svc_core.train.losses.harmonic_loss (0 = off, as HiFi-GAN)
    gan_start_step: int = 0  # discriminator and adversarial terms from this step on (0 = from the start)
    d_width_divisor: int = 4  # discriminator channels / this (1 = so-vits' full-size MultiPeriodDiscriminator)
    size: str = "small"  # generator preset when no base is given (SIZE_PRESETS)
    smooth_init: bool = False  # fresh runs: upsampling layers start as linear interpolation (smooth_init.py)
    base: str | None = None  # `model` file or folder of a trained vocoder to fine-tune (its config.json sets the size)
    interval_log: int = 20  # steps between progress lines
    interval_val: int = 250  # steps between checkpoint + validation
    keep_best: int = 2  # checkpoints kept by validation mel L1 (0 = keep all); the newest is always kept
    val_clips: int = 4  # validation clips decoded at each checkpoint
    max_val_frames: int = 400  # validation clips are cut to this many frames
    seed: int = 1234
    device: str = "cpu"

    def __post_init__(self) -> None:
        positive = {"batch_size": self.batch_size, "segment_frames": self.segment_frames,
                    "decay_every": self.decay_every, "interval_log": self.interval_log,
                    "interval_val": self.interval_val, "d_width_divisor": self.d_width_divisor,
                    "max_val_frames": self.max_val_frames}
        for name, value in positive.items():
            if int(value) < 1:
                raise OptionError(f"{name} must be 1 or more, got {value}.")
        if self.steps < 0:
            raise OptionError(f"--steps must be 0 or more, got {self.steps}.")
        if self.learning_rate <= 0 or not 0 < self.lr_decay <= 1:
            raise OptionError(f"lr must be > 0 and lr_decay in (0, 1]; got {self.learning_rate}, {self.lr_decay}.")
        if self.c_mel < 0 or self.c_harm < 0:
            raise OptionError("--c-mel and --c-harm must be 0 or more.")
        if self.size not in SIZE_PRESETS:
            raise OptionError(f"Unknown vocoder size {self.size!r}; choose one of {', '.join(SIZE_PRESETS)}.")

    def lr_at(self, step: int) -> float:
        """Learning rate of optimizer step `step` (1-based)."""
        return self.learning_rate * self.lr_decay ** ((step - 1) // self.decay_every)

    def replace(self, **changes) -> "VocoderTrainSettings":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def openvpi_fields(self, hop_size: int) -> dict:
        """The training values openvpi's config.json records, from these settings (segment_size in samples)."""
        return {"learning_rate": self.learning_rate, "adam_b1": self.adam_b1, "adam_b2": self.adam_b2,
                "lr_decay": self.lr_decay, "segment_size": self.segment_frames * hop_size,
                "batch_size": self.batch_size, "seed": self.seed}


def vocoder_config_for(settings: VocoderTrainSettings) -> VocoderConfig:
    """The generator config of a fresh run: the size preset."""
    return SIZE_PRESETS[settings.size]
