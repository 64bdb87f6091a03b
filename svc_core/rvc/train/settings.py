"""RvcTrainSettings: every knob of an RVC training run. Defaults: RVC's configs where they exist, sized for 2 CPU
cores where RVC assumes a GPU (stated per field)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import OptionError
from .. import hparams as rvc_hparams

VERSIONS = tuple(rvc_hparams.CONTENT_DIMS)  # "v1", "v2"
SAMPLE_RATES = tuple(rvc_hparams.SR_NAMES)  # "32k", "40k", "48k"
SIZES = ("full", "small")
# "small": narrower networks that train several times faster on a CPU; the file keeps RVC's layout (RVC builds the
# model from the config list, so RVC WebUI loads it too). full = RVC's own sizes.
SMALL_SIZE = dict(inter_channels=128, hidden_channels=128, filter_channels=384, upsample_initial_channel=256)
# What `train --arch rvc` uses on a CPU unless told otherwise (the field defaults below are RVC's own, used on a
# GPU): measured on 2 shared cores at ~0.3-0.5 steps/s for a 40k voice (docs: RVC training).
CPU_PRESET = dict(size="small", batch_size=2, max_frames=160, d_width_divisor=4, gan_start_step=120,
                  learning_rate=2e-4)
MEL_CHANNELS = {"32k": 80, "40k": 125, "48k": 128}  # RVC's configs "data.n_mel_channels"
MAX_SPEAKERS = 109  # RVC's spk_embed_dim
DEFAULT_ENCODERS = {"v1": "vec256l9", "v2": "vec768l12"}


@dataclass
class RvcTrainSettings:
    """One `train --arch rvc` run: where the data is, what to train, and for how long."""

    data_dir: Path  # preprocess output (config.json + filelists/) or a folder of raw audio (one folder per speaker)
    out_dir: Path  # the experiment folder (RVC's logs/<name>); its name names the index and the small model
    version: str = "v2"
    sample_rate: str = "40k"
    f0: bool = True  # pitch model (False: RVC's *_nono)
    size: str = "full"
    encoder: str | None = None  # content encoder (None: vec768l12 for v2, vec256l9 for v1)
    encoder_path: str | None = None
    f0_method: str = "auto"  # svc_core.f0 name; auto = rmvpe when rmvpe.pt is found, else fcpe
    f0_weights: str | None = None
    speaker: str | None = None  # train only this speaker folder (id 0); None = every speaker, ids in sorted order
    name: str | None = None  # small model / index name (default: the out folder's name)
    steps: int | None = None  # stop after this many steps (None: `epochs`)
    epochs: int = 20  # RVC's WebUI default total_epoch is 20
    batch_size: int = 4  # RVC's configs
    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-9
    lr_decay: float = 0.999875  # ExponentialLR per epoch
    c_mel: float = 45.0
    c_kl: float = 1.0
    segment_frames: int | None = None  # decoded frames per example (None: RVC's segment_size / hop: 32 at 40k)
    max_frames: int = 900  # frames per piece (RVC: its first 900; lower: a random window of this many, faster)
    max_minutes: float | None = None  # stop (and save) after this much training wall time
    save_every: int = 200  # steps between G_/D_ saves (RVC saves per epoch; steps fit a CPU better)
    keep: int = 2  # newest G_/D_ pairs kept (0 = all); RVC's "save latest only" keeps one
    save_every_weights: bool = False  # also a small model <name>_e<epoch>_s<step>.pth at every save (RVC's option)
    log_interval: int = 10
    seed: int = 1234
    d_width_divisor: int = 1  # > 1: narrower discriminator (faster; D files then not RVC-sized)
    gan_start_step: int = 0  # adversarial terms from this step on (0 = from the start, as RVC)
    resume: bool = False
    base: tuple[str, str] | None = None  # pretrained (G, D), e.g. RVC's f0G40k.pth / f0D40k.pth
    device: str = "cpu"
    threads: int = 0  # torch threads (0 = torch's default)
    build_index: bool = True  # train the faiss index after training
    model_overrides: dict = field(default_factory=dict)  # RvcHParams fields over the size preset (Python API, tests)

    def __post_init__(self) -> None:
        self.data_dir = Path(os.path.abspath(os.fspath(self.data_dir)))
        self.out_dir = Path(os.path.abspath(os.fspath(self.out_dir)))
        self.betas = tuple(self.betas)
        if self.base is not None:
            self.base = tuple(self.base)

    @classmethod
    def for_device(cls, device: str = "cpu", **values) -> "RvcTrainSettings":
        """Settings for `device`: on a CPU, CPU_PRESET fills what `values` leaves out (None counts as left out);
        elsewhere RVC's own defaults."""
        preset = CPU_PRESET if str(device).startswith("cpu") else {}
        given = {k: v for k, v in values.items() if v is not None}
        return cls(**{**preset, **given, "device": device})

    @property
    def encoder_name(self) -> str:
        return self.encoder or DEFAULT_ENCODERS[self.version]

    @property
    def model_name(self) -> str:
        return self.name or self.out_dir.name

    def hparams(self) -> "rvc_hparams.RvcHParams":
        """The synthesizer's hyper-parameters: RVC's preset for version/sr, narrowed for size "small"."""
        overrides = {**(SMALL_SIZE if self.size == "small" else {}), **self.model_overrides}
        hp = rvc_hparams.preset(self.version, self.sample_rate, self.f0, **overrides)
        if self.segment_frames:
            hp = hp.with_(segment_size=int(self.segment_frames))
        return hp

    def validate(self) -> None:
        """OptionError for impossible settings, before any file is touched."""
        if self.version not in VERSIONS:
            raise OptionError(f"--version must be one of {', '.join(VERSIONS)}, got {self.version!r}.")
        if self.sample_rate not in SAMPLE_RATES:
            raise OptionError(f"--sr must be one of {', '.join(SAMPLE_RATES)}, got {self.sample_rate!r}.")
        if self.size not in SIZES:
            raise OptionError(f"--size must be one of {', '.join(SIZES)}, got {self.size!r}.")
        if not self.data_dir.is_dir():
            what = "is a file, not a folder" if self.data_dir.exists() else "does not exist"
            raise OptionError(f"The data folder '{self.data_dir}' {what}; pass a preprocessed dataset or a folder "
                              "of recordings.")
        if self.out_dir == self.data_dir or self.data_dir.is_relative_to(self.out_dir):
            raise OptionError(f"--out '{self.out_dir}' must not be the data folder or contain it.")
        for name, value, low in (("--batch-size", self.batch_size, 1), ("--save-every", self.save_every, 1),
                                 ("--log-interval", self.log_interval, 1), ("--keep", self.keep, 0),
                                 ("--epochs", self.epochs, 1), ("--d-width-divisor", self.d_width_divisor, 1),
                                 ("--gan-start-step", self.gan_start_step, 0)):
            if value < low:
                raise OptionError(f"{name} must be at least {low}, got {value}.")
        if self.steps is not None and self.steps < 1:
            raise OptionError(f"--steps must be at least 1, got {self.steps}.")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise OptionError(f"--max-minutes must be above 0, got {self.max_minutes}.")
        if self.max_frames < (self.segment_frames or 1):
            raise OptionError(f"--max-frames ({self.max_frames}) must be at least the training segment.")
        if self.segment_frames is not None and self.segment_frames < 2:
            raise OptionError(f"the training segment must be at least 2 frames, got {self.segment_frames}.")
        if "." in self.model_name or os.sep in self.model_name:
            raise OptionError(f"The model name {self.model_name!r} must not contain '.' or '{os.sep}'.")
