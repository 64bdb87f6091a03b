"""Stage-weighted progress and ETA of one cover (separate -> key -> convert -> remix -> export).

Each stage is weighed in expected seconds: its rate (seconds of work per second of song) times the song's length.
The rates are the defaults below until a separator / voice pair has made a cover on this server, then what that
pair took last time (`CoverRates.learn`). The bar's fraction is the expected work done over all of it, so it moves
with every fraction the pipeline reports (svc_core.cover.pipeline's progress(stage, fraction, message)) and never
goes back; the ETA is the work left times the speed measured so far in this cover.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional

from ..cover.result import STAGES  # the pipeline's stages, in the order they run

# Seconds per second of song before a pair has measured its own. Only their ratios shape the bar at first (the
# ETA uses the speed measured in the job as soon as 2 % is done). From the contract's targets on the 2-core box:
# a 3-min song separated by the starter network in <= 30 s (0.17) and covered with the starter voice in <= 60 s;
# a community network on CPU is slower (Demucs / RoFormer run near real time on 2 cores).
SEPARATE_RATES = {"network": 0.15, "dsp": 0.1, "community": 1.0}
DEFAULT_RATES = {"convert": 0.15, "key": 0.01, "remix": 0.02, "export": 0.02}
SHIFT_RATE = 0.1  # rubberband on the accompaniment, seconds per second of song, when "shift accompaniment" is on
EXPORT_RATE_PER_FORMAT = 0.02  # writing the four stems in one more format (mp3 encodes most of it)
MIN_LEARN_SECONDS = 0.05  # a stage that took less than this is not learnt from (too small to measure)
MIN_MEASURED_SHARE = 0.02  # the ETA uses this job's own speed once this share of the work is done


@dataclass(frozen=True)
class CoverWork:
    """What one cover runs, for its expected work: the separator's kind, the stems' formats, the key shift."""

    separator_kind: str = "network"  # svc_core.separation.registry SeparatorEntry.kind
    formats: int = 1  # how many output formats (wav, flac, mp3)
    shift_accompaniment: bool = False
    extra_passes: int = 0  # lead/backing and de-reverb passes over the vocals (community models)


def default_rates(work: CoverWork) -> dict[str, float]:
    """The expected seconds per second of song of each stage for `work`, before anything was measured."""
    rates = dict(DEFAULT_RATES, separate=SEPARATE_RATES.get(work.separator_kind, SEPARATE_RATES["community"]))
    rates["separate"] += SEPARATE_RATES["community"] * max(0, work.extra_passes)
    if work.shift_accompaniment:
        rates["key"] += SHIFT_RATE
    rates["export"] = EXPORT_RATE_PER_FORMAT * max(1, work.formats)
    return rates


@dataclass
class CoverRates:
    """Measured seconds per second of song for each stage, per "separator|voice" pair (thread-safe)."""

    _learnt: dict[str, dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_pair(self, pair: str, work: CoverWork) -> dict[str, float]:
        with self._lock:
            return {**default_rates(work), **self._learnt.get(pair, {})}

    def learn(self, pair: str, stage_seconds: Mapping[str, float], song_seconds: float) -> None:
        """Remember what a finished cover of `song_seconds` took per stage (CoverResult's per-stage seconds)."""
        if song_seconds <= 0:
            return
        rates = {stage: seconds / song_seconds for stage, seconds in stage_seconds.items()
                 if stage in STAGES and seconds >= MIN_LEARN_SECONDS}
        with self._lock:
            self._learnt.setdefault(pair, {}).update(rates)


class CoverProgress:
    """Fraction done and ETA of one cover. Before the song's length is known the fraction stays at the small
    milestones given to `at_least`; then it follows the stages' expected work. Owned by the job's streaming side."""

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.rates = dict(rates)
        self.fraction = 0.0
        self._base = 0.0  # the fraction when the work started
        self._costs: dict[str, float] = {}
        self._total = 0.0
        self._done = 0.0
        self._start: Optional[float] = None

    def at_least(self, fraction: float) -> None:
        """A fixed milestone before the stages (song read, voice ready)."""
        self.fraction = max(self.fraction, min(1.0, fraction))

    def start(self, song_seconds: float, now: Optional[float] = None) -> None:
        """The song's length is known and the pipeline starts: from here the fraction follows the stages."""
        self._costs = {stage: self.rates.get(stage, 0.0) * song_seconds for stage in STAGES}
        self._total = sum(self._costs.values())
        self._base, self._done = self.fraction, 0.0
        self._start = time.perf_counter() if now is None else now

    def stage(self, name: str, fraction: float) -> None:
        """Stage `name` is `fraction` (0..1) done; the stages before it in STAGES are done."""
        if name not in STAGES or self._total <= 0:
            return
        k = STAGES.index(name)
        done = sum(self._costs[s] for s in STAGES[:k]) + self._costs[name] * min(1.0, max(0.0, fraction))
        self._done = max(self._done, done)
        self.fraction = max(self.fraction, self._base + (1 - self._base) * self._done / self._total)

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left: the work left times this cover's measured speed (nominal until some is done); None
        before `start`."""
        if self._start is None or self._total <= 0:
            return None
        now = time.perf_counter() if now is None else now
        left = max(0.0, self._total - self._done)
        if self._done >= MIN_MEASURED_SHARE * self._total:
            return left * (now - self._start) / self._done
        return left
