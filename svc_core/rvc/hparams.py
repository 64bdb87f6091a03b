"""RVC synthesizer hyper-parameters: the 18 positional constructor arguments RVC stores as a model's `config`.

RVC (Retrieval-based-Voice-Conversion-WebUI) writes `config` = [spec_channels, segment_size, inter_channels, ...,
spk_embed_dim, gin_channels, sr] into every small model; `version` ("v1" 256-d content / "v2" 768-d) and `f0`
(pitch model or the *_nono classes) are separate entries of the file. Presets are RVC's configs/v1|v2/<sr>.json
(RVC has no v2/40k.json: its trainer uses v1/40k.json for both versions, and so do we).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Sequence

from ..errors import ModelError

FRAME_RATE = 100  # frames/s of every RVC synthesizer (hop = sr / 100)
SAVED_SEGMENT_FRAMES = 32  # RVC's savee writes config[1] = 32 whatever the training segment was
CONTENT_DIMS = {"v1": 256, "v2": 768}  # enc_p.emb_phone input width (hard-coded per RVC class)
SPEECH_ENCODERS = {"v1": "vec256l9", "v2": "vec768l12"}  # ContentVec layer 9 + final_proj / layer 12
SR_NAMES = {"32k": 32000, "40k": 40000, "48k": 48000}
CONFIG_LEN = 18

# Fields shared by every RVC preset (configs/*/*.json "model" sections).
_COMMON: dict[str, Any] = dict(
    inter_channels=192, hidden_channels=192, filter_channels=768, n_heads=2, n_layers=6, kernel_size=3,
    p_dropout=0.0, resblock="1", resblock_kernel_sizes=(3, 7, 11), resblock_dilation_sizes=((1, 3, 5),) * 3,
    upsample_initial_channel=512, spk_embed_dim=109, gin_channels=256,
)
# (version, sr) -> (filter_length, train segment_size samples, upsample_rates, upsample_kernel_sizes)
_PRESETS: dict[tuple[str, str], tuple[int, int, tuple[int, ...], tuple[int, ...]]] = {
    ("v1", "32k"): (1024, 12800, (10, 4, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v1", "40k"): (2048, 12800, (10, 10, 2, 2), (16, 16, 4, 4)),
    ("v1", "48k"): (2048, 11520, (10, 6, 2, 2, 2), (16, 16, 4, 4, 4)),
    ("v2", "32k"): (1024, 12800, (10, 8, 2, 2), (20, 16, 4, 4)),
    ("v2", "40k"): (2048, 12800, (10, 10, 2, 2), (16, 16, 4, 4)),  # = v1/40k.json, as RVC's trainer picks
    ("v2", "48k"): (2048, 17280, (12, 10, 2, 2), (24, 20, 4, 4)),
}


def _ints(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class RvcHParams:
    """RVC's SynthesizerTrnMs{256|768}NSFsid[_nono] constructor arguments, named, plus version and f0."""

    spec_channels: int  # linear-spectrogram bins (filter_length // 2 + 1), enc_q input width
    segment_size: int  # training crop in frames
    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    spk_embed_dim: int  # rows of emb_g (speakers)
    gin_channels: int
    sr: int  # output sample rate, Hz
    version: str = "v2"
    f0: bool = True
    encoder: str = ""  # content encoder when not RVC's ContentVec tap (voices trained here on another encoder)

    def __post_init__(self) -> None:
        object.__setattr__(self, "resblock_kernel_sizes", _ints(self.resblock_kernel_sizes))
        object.__setattr__(self, "resblock_dilation_sizes", tuple(_ints(d) for d in self.resblock_dilation_sizes))
        object.__setattr__(self, "upsample_rates", _ints(self.upsample_rates))
        object.__setattr__(self, "upsample_kernel_sizes", _ints(self.upsample_kernel_sizes))
        object.__setattr__(self, "resblock", str(self.resblock))
        object.__setattr__(self, "p_dropout", float(self.p_dropout))
        if self.version not in CONTENT_DIMS:
            raise ModelError(f"RVC version {self.version!r} is not known; RVC models are 'v1' or 'v2'.")

    @property
    def content_dim(self) -> int:
        """Width of the content features enc_p.emb_phone takes (768 v2, 256 v1)."""
        return CONTENT_DIMS[self.version]

    @property
    def hop_length(self) -> int:
        """Output samples per frame (product of upsample_rates)."""
        return int(math.prod(self.upsample_rates))

    @property
    def frame_rate(self) -> int:
        return FRAME_RATE

    @property
    def sr_name(self) -> str:
        """RVC's "sr" string ("40k"), or the rate in Hz as text when it is not one of RVC's three."""
        for name, rate in SR_NAMES.items():
            if rate == self.sr:
                return name
        return str(self.sr)

    @property
    def speech_encoder(self) -> str:
        """The svc_core content encoder: RVC's ContentVec tap for the version, or the file's own `encoder`."""
        return self.encoder or SPEECH_ENCODERS[self.version]

    @classmethod
    def from_config_list(cls, values: Sequence[Any], version: str = "v2", f0: bool = True) -> "RvcHParams":
        """RVC's `config` entry (18 positional values; sr may be RVC's '40k' form) -> RvcHParams."""
        if not isinstance(values, (list, tuple)) or len(values) != CONFIG_LEN:
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise ModelError(f"The RVC model's 'config' entry should list {CONFIG_LEN} constructor values, "
                             f"found {got}; the file is damaged or not an RVC model.")
        names = [f.name for f in fields(cls)][:CONFIG_LEN]
        kw = dict(zip(names, values))
        if isinstance(kw["sr"], str):
            if kw["sr"] not in SR_NAMES:
                raise ModelError(f"The RVC model's sample rate {kw['sr']!r} is not one of RVC's "
                                 f"({', '.join(SR_NAMES)}).")
            kw["sr"] = SR_NAMES[kw["sr"]]
        try:
            return cls(**kw, version=version, f0=bool(f0))
        except (TypeError, ValueError) as err:
            raise ModelError(f"The RVC model's 'config' entry has a value of the wrong kind ({err}); "
                             "the file is damaged or not an RVC model.") from None

    def to_config_list(self) -> list:
        """The 18-entry `config` list as RVC's savee writes it (plain lists, sr in Hz)."""
        out = []
        for f in fields(self)[:CONFIG_LEN]:
            value = getattr(self, f.name)
            if f.name == "resblock_dilation_sizes":
                value = [list(d) for d in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif f.name == "p_dropout" and float(value).is_integer():
                value = int(value)  # RVC's json configs say 0
            out.append(value)
        return out

    def with_(self, **changes: Any) -> "RvcHParams":
        return replace(self, **changes)

    def svc_config(self, speakers: Sequence[str] | None = None, source: str = "<file>"):
        """An svc_core SvcConfig describing this voice (rates, content encoder, speakers) for the shared engine."""
        from ..config import config_from_dict

        names = list(speakers) if speakers else []
        if len(names) > self.spk_embed_dim:
            names = names[:self.spk_embed_dim]
        spk = {str(name): i for i, name in enumerate(names)} or {str(i): i for i in range(self.spk_embed_dim)}
        doc = {
            "data": {"sampling_rate": self.sr, "hop_length": self.hop_length,
                     "filter_length": (self.spec_channels - 1) * 2, "win_length": (self.spec_channels - 1) * 2,
                     "unit_interpolate_mode": "nearest"},
            "train": {"segment_size": self.segment_size * self.hop_length},
            "model": {"inter_channels": self.inter_channels, "hidden_channels": self.hidden_channels,
                      "filter_channels": self.filter_channels, "n_heads": self.n_heads, "n_layers": self.n_layers,
                      "kernel_size": self.kernel_size, "p_dropout": self.p_dropout, "resblock": self.resblock,
                      "resblock_kernel_sizes": list(self.resblock_kernel_sizes),
                      "resblock_dilation_sizes": [list(d) for d in self.resblock_dilation_sizes],
                      "upsample_rates": list(self.upsample_rates),
                      "upsample_initial_channel": self.upsample_initial_channel,
                      "upsample_kernel_sizes": list(self.upsample_kernel_sizes),
                      "gin_channels": self.gin_channels, "ssl_dim": self.content_dim,
                      "n_speakers": self.spk_embed_dim, "sampling_rate": self.sr,
                      "speech_encoder": self.speech_encoder, "use_automatic_f0_prediction": False},
            "spk": spk,
            "rvc": {"version": self.version, "f0": self.f0, "config": self.to_config_list()},
        }
        return config_from_dict(doc, source=source)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def preset(version: str = "v2", sr: str | int = "40k", f0: bool = True, **overrides: Any) -> RvcHParams:
    """RVC's configs/<version>/<sr>.json as hparams (segment_size in frames, as the trainer passes it)."""
    name = sr if isinstance(sr, str) else next((k for k, v in SR_NAMES.items() if v == sr), str(sr))
    if (version, name) not in _PRESETS:
        raise ModelError(f"RVC has no {version} {name} configuration; use v1 or v2 with one of "
                         f"{', '.join(SR_NAMES)}.")
    filter_length, segment_samples, rates, kernels = _PRESETS[(version, name)]
    hop = math.prod(rates)
    values = dict(_COMMON, spec_channels=filter_length // 2 + 1, segment_size=segment_samples // hop,
                  upsample_rates=rates, upsample_kernel_sizes=kernels, sr=SR_NAMES[name])
    values.update(overrides)
    return RvcHParams(**values, version=version, f0=f0)
