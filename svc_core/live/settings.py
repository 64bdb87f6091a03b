"""`LiveSettings`: the knobs of one live (real-time) conversion stream, checked with human messages."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Optional, Union

from ..errors import OptionError
from ..options import Range

Speaker = Union[str, int, Mapping[str, float], None]

DEFAULT_IO_RATE = 48000  # Hz: browsers' and most sound cards' native rate
IO_RATES = (16000, 22050, 24000, 32000, 44100, 48000, 88200, 96000)  # rates the session accepts at its edges

# Every bounded knob. The block and the left context set the cost of one step (the content encoder and the f0
# predictor read extra + block each time), so their bounds also bound the work per block.
RANGES: dict[str, Range] = {
    "block_seconds": Range(0.02, 2.0, "s"),
    "extra_seconds": Range(0.0, 5.0, "s"),
    "context_seconds": Range(0.0, 10.0, "s"),
    "crossfade_seconds": Range(0.0, 0.5, "s"),
    "sola_search_seconds": Range(0.0, 0.1, "s"),
    "silence_db": Range(-120.0, 0.0, "dBFS"),
    "transpose": Range(-48.0, 48.0, "semitones"),
    "f0_threshold": Range(0.0, 1.0),
    "cluster_ratio": Range(0.0, 1.0),
    "noise_scale": Range(0.0, 2.0),
}


@dataclass(frozen=True)
class LiveSettings:
    """One stream's settings (seconds, dBFS, semitones).

    block_seconds: new audio per step (also the least input latency). extra_seconds: left context the content
    encoder and the f0 predictor read before each block. context_seconds: how much of the past the synthesizer
    sees (features of past blocks, cached: costs the synthesizer's network, not the encoder or f0). crossfade_seconds: overlap blended between blocks;
    sola_search_seconds: how far SOLA may shift a block to line its waveform up with the previous one. Both add
    to the delay (LiveSession.algorithmic_delay_seconds). silence_db: blocks quieter than this are not converted
    (silence out; None = never gate). io_rate: sample rate of the audio given to and returned by the session.
    """

    block_seconds: float = 0.1
    extra_seconds: float = 0.5
    context_seconds: float = 0.6
    crossfade_seconds: float = 0.03
    sola_search_seconds: float = 0.01
    silence_db: Optional[float] = -50.0
    transpose: float = 0.0
    speaker: Speaker = None
    f0_predictor: str = "dio"  # ~10 ms per 0.6 s window on 2 cores; fcpe ~30 ms; pm ~2 ms but unsteady at the edge
    f0_threshold: Optional[float] = None
    cluster_ratio: float = 0.0
    noise_scale: float = 0.35
    io_rate: int = DEFAULT_IO_RATE

    def __post_init__(self) -> None:
        for name, allowed in RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("silence_db", "f0_threshold"):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise OptionError(f"{name} must be a number, not {value!r}.") from None
            if number != number or not allowed.contains(number):  # NaN fails every comparison
                raise OptionError(allowed.refusal(name, number))
            object.__setattr__(self, name, number)
        if int(self.io_rate) not in IO_RATES:
            raise OptionError(f"io_rate is {self.io_rate} Hz; the live engine takes "
                              f"{', '.join(str(r) for r in IO_RATES)} Hz.")
        object.__setattr__(self, "io_rate", int(self.io_rate))
        if not isinstance(self.f0_predictor, str) or not self.f0_predictor:
            raise OptionError("f0_predictor must be a predictor name such as fcpe, pm, dio, harvest or rmvpe.")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "LiveSettings":
        """Build from keyword values; unknown names are an OptionError that lists the known ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise OptionError(f"Unknown live setting(s) {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
