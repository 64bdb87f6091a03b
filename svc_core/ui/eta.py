"""Stage-weighted progress and ETA of one conversion.

The job's work is weighed in expected seconds: every voiced piece costs its length times a rate per stage (f0,
encoder, synthesizer up to the vocoder, vocoder), silent pieces almost nothing, and the output's plot and write a
rate per second of audio. The rates are this server's measured defaults until a voice has converted something, then what that voice took
last time (`StageRates.learn`). The bar's fraction is the work done over all the work, so it moves at every step the
engine reports (each vocoder chunk included) and never goes back; the ETA is the work left times the speed
measured so far in this job (seconds of wall time per second of expected work).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Optional

# In the engine's order, on every voiced piece; the last two only with a second stage (svc_core.second_stage:
# "diffusion" from the so-vits mel or from noise, "mel vocoder" the NSF-HiFiGAN vocoder, also the enhancer's).
PIECE_STAGES = ("f0", "encoder", "synthesizer", "vocoder", "diffusion", "mel vocoder")
# Seconds per second of voiced input until a voice has measured its own (StageRates.learn). The starter so-vits
# voice, torch, 2 threads, on a 2-core box at load 6-9 measured f0 0.33 (fcpe) / 0.02 (pm), encoder 0.17,
# synthesizer 0.8-0.9 before a vocoder of 1.7-3.2; these are about a third of that (an idle box). Only their
# ratios shape the bar before a voice has learnt its own.
DEFAULT_RATES = {"f0": 0.1, "encoder": 0.05, "synthesizer": 0.25, "vocoder": 0.7, "finish": 0.05}
# The second stage's, for jobs that run it (job_rates); "diffusion" is per denoiser call. From the ratios measured
# for job_io's budget (one full-size denoiser call ~0.12, the mel vocoder ~0.5 of a so-vits conversion) applied to
# the rates above, until a voice has measured its own.
SECOND_STAGE_RATES = {"diffusion": 0.13, "mel vocoder": 0.55}
SILENT_RATE = 0.002  # seconds per second of a silent piece (zeros are written, nothing is converted)
MIN_LEARN_SECONDS = 0.05  # a stage that took less than this last time (cached, or tiny) is not learnt from
# How the engine's timing stages fold into the rates (retrieval, loudness and resampling count as synthesis).
STAGE_OF = {"f0": "f0", "encoder": "encoder", "synthesizer": "synthesizer", "vocoder": "vocoder",
            "retrieval": "synthesizer", "loudness": "synthesizer", "resample": "synthesizer",
            "diffusion": "diffusion", "mel vocoder": "mel vocoder", "f0 plot": "finish", "write": "finish"}


@dataclass(frozen=True)
class Work:
    """What a job runs on each voiced piece beyond f0 and the encoder (job_io.ConvertRequest decides)."""

    synthesizer: bool = True  # the so-vits synthesizer and its vocoder (not for only-diffusion)
    denoiser_calls: int = 0  # diffusion model calls per piece (0: no diffusion)
    mel_vocoder: bool = False  # the NSF-HiFiGAN mel vocoder (diffusion or the enhancer)


PLAIN = Work()


def job_rates(rates: Mapping[str, float], work: Work) -> dict[str, float]:
    """A voice's rates for one job: stages the job skips cost 0, diffusion costs its rate per call x calls."""
    out = {**DEFAULT_RATES, **SECOND_STAGE_RATES, **rates}
    out["diffusion"] = out["diffusion"] * work.denoiser_calls
    if not work.mel_vocoder:
        out["mel vocoder"] = 0.0
    if not work.synthesizer:
        out["synthesizer"] = out["vocoder"] = 0.0
    return out


@dataclass
class StageRates:
    """Expected seconds per second of audio for each stage, per voice (thread-safe)."""

    defaults: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RATES))
    _learnt: dict[str, dict[str, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_voice(self, voice: str) -> dict[str, float]:
        with self._lock:
            return {**self.defaults, **self._learnt.get(voice, {})}

    def learn(self, voice: str, stage_seconds: Mapping[str, float], voiced_seconds: float,
              audio_seconds: float, work: Work = PLAIN) -> None:
        """Remember what a finished conversion of `voiced_seconds` voiced (`audio_seconds` in all) input took per
        engine stage (StageTimes.seconds); diffusion per denoiser call of `work`. Stages that were skipped or
        cached are left as they were."""
        if voiced_seconds <= 0 or audio_seconds <= 0:
            return
        folded: dict[str, float] = {}
        for name, seconds in stage_seconds.items():
            stage = STAGE_OF.get(name)
            if stage is not None:
                folded[stage] = folded.get(stage, 0.0) + seconds
        if "diffusion" in folded:
            if work.denoiser_calls <= 0:
                del folded["diffusion"]
            else:
                folded["diffusion"] /= work.denoiser_calls
        rates = {stage: seconds / (audio_seconds if stage == "finish" else voiced_seconds)
                 for stage, seconds in folded.items() if seconds >= MIN_LEARN_SECONDS}
        if "synthesizer" in rates and "vocoder" not in folded:  # no vocoder stage (a WORLD voice): none to wait for
            rates["vocoder"] = 0.0
        with self._lock:
            self._learnt.setdefault(voice, {}).update(rates)


def expected_seconds(rates: Mapping[str, float], pieces: list[tuple[float, bool]]) -> float:
    """Seconds a plan of (seconds, silent) pieces is expected to take at `rates`, the plot and write included."""
    voiced = sum(seconds for seconds, silent in pieces if not silent)
    silent = sum(seconds for seconds, is_silent in pieces if is_silent)
    return (voiced * sum(rates.get(s, 0.0) for s in PIECE_STAGES) + silent * SILENT_RATE
            + rates["finish"] * (voiced + silent))


class JobProgress:
    """Fraction done and ETA of one job. Before the engine's plan arrives the fraction moves through fixed small
    steps (reading, loading); from the plan on, by expected work. Not thread-safe: the job's streaming side owns it.
    """

    def __init__(self, rates: Mapping[str, float]) -> None:
        self.rates = dict(rates)
        self.fraction = 0.0
        self._base = 0.0  # the fraction when the plan arrived
        self._costs: list[tuple[float, ...]] = []  # per piece: expected seconds of each PIECE_STAGE
        self._done_before: list[float] = []  # expected seconds of all pieces before each piece
        self._total = 0.0  # expected seconds of the conversion plus the finish
        self._finish = 0.0
        self._done = 0.0
        self._convert_start: Optional[float] = None
        self.pieces = 0  # voiced pieces in the plan

    def at_least(self, fraction: float) -> None:
        """A fixed milestone before the conversion (e.g. voice loaded: 0.04)."""
        self.fraction = max(self.fraction, min(1.0, fraction))

    def plan(self, pieces: list[tuple[float, bool]], now: Optional[float] = None) -> None:
        """The engine's pieces, (seconds, silent) each: from here on the fraction follows the expected work."""
        self._costs, self._done_before, running = [], [], 0.0
        self.pieces = sum(1 for _, silent in pieces if not silent)
        for seconds, silent in pieces:
            costs = (0.0, 0.0, SILENT_RATE * seconds, 0.0, 0.0, 0.0) if silent else tuple(
                self.rates.get(s, 0.0) * seconds for s in PIECE_STAGES)
            self._done_before.append(running)
            self._costs.append(costs)
            running += sum(costs)
        self._finish = self.rates["finish"] * sum(seconds for seconds, _ in pieces)
        self._total = running + self._finish
        self._base, self._done = self.fraction, 0.0
        self._convert_start = time.perf_counter() if now is None else now

    def step(self, piece: int, stage: str, fraction: float) -> None:
        """Piece `piece` is `fraction` through `stage` (stages before it in PIECE_STAGES are done)."""
        if not self._costs or not 0 <= piece < len(self._costs) or stage not in PIECE_STAGES:
            return
        k = PIECE_STAGES.index(stage)
        costs = self._costs[piece]
        done = self._done_before[piece] + sum(costs[:k]) + costs[k] * min(1.0, max(0.0, fraction))
        self._advance(done)

    def converted(self) -> None:
        """Every piece is done (the plot and the write remain)."""
        if self._costs:
            self._advance(self._total - self._finish)

    def _advance(self, done: float) -> None:
        self._done = max(self._done, done)
        if self._total > 0:
            self.fraction = max(self.fraction, self._base + (1 - self._base) * self._done / self._total)

    def eta(self, now: Optional[float] = None) -> Optional[float]:
        """Seconds left: the expected work left times this job's measured speed (the nominal speed until some
        work is done); None before the plan."""
        if self._convert_start is None or self._total <= 0:
            return None
        now = time.perf_counter() if now is None else now
        left = max(0.0, self._total - self._done)
        if self._done >= 0.02 * self._total:
            return left * (now - self._convert_start) / self._done
        return left
