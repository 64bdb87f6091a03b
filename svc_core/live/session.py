"""`LiveSession`: real-time conversion of a stream, block by block, over the offline pipeline's seams.

Per step (one block of new input):
    io-rate input -> streaming resample to the model rate -> `Svc.piece_features` over [extra | block] (f0 and
    the content encoder need some left context) -> the block's frames join the cached features of past blocks
    (`context_seconds` of them: computed once, never again) -> `Svc.synthesize_piece` over the cache, the vocoder
    decoding only the last block + crossfade + SOLA frames -> SOLA against the previous block's tail, crossfade
    -> a block of output -> streaming resample to the io rate.
The synthesizer sees a long context at little cost (its normalisation and attention see seconds, as offline),
while f0 and the content encoder pay only for extra + block per step. The silence gate skips quiet blocks
(silence out, nothing computed; their features still enter the cache so the context stays continuous).

State lives in `LiveState` (input history, feature cache, the previous block's tail, the two resamplers):
`process` reads and replaces it, `reset` starts a new one.
Latency added by the engine itself: crossfade + SOLA search + the resamplers (`algorithmic_delay_seconds`); the
block length and the conversion time come on top (the transports measure them).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr
import torch

from ..errors import OptionError
from ..options import ConvertOptions
from ..piece import PieceFeatures
from ..timing import StageTimes
from .settings import LiveSettings
from .sola import crossfade, fade_windows, sola_offset

RESAMPLE_QUALITY = "LQ"  # soxr: 0.5-5 ms of delay per direction (HQ: ~16 ms); ample for a live voice
SILENT_DB = -120.0  # level reported for digital silence
PRIME_MARGIN = 16  # model-rate samples of zeros beyond the resampler's hold-back (0.4 ms at 44.1 kHz)
PROBE_CALLS = 64  # calls simulated to find a resampler's largest hold-back
DRIFT_SLACK = 32  # model-rate samples a block may be short and still be converted (see LiveSession.process)


def level_db(samples: np.ndarray) -> float:
    """RMS level of float audio [N] in dBFS (SILENT_DB for silence or no samples)."""
    if len(samples) == 0:
        return SILENT_DB
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENT_DB, 20.0 * np.log10(rms)) if rms > 0 else SILENT_DB


@dataclass
class LiveOutput:
    """What one `process` call gives back.

    audio: float32 [M] at the io rate (M follows the input: the total output equals the total input less a
    constant few ms of resampler delay). gated: the silence gate skipped the conversion. infer_seconds: wall time
    of the conversion (0 when gated or when no block was complete). stages: per-stage seconds of it. level_db:
    the input's RMS level in dBFS. blocks: how many model blocks this call converted (0, 1 or more).
    """

    audio: np.ndarray
    gated: bool = False
    infer_seconds: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    level_db: float = SILENT_DB
    blocks: int = 0


@dataclass
class LiveState:
    """Everything a session carries from one block to the next (model-rate float32 arrays)."""

    history: np.ndarray  # [window] the latest input at the model rate
    context: PieceFeatures  # the synthesizer inputs of the last `context_model` samples
    pending: np.ndarray  # [< block] input not yet part of a block
    tail: np.ndarray  # [crossfade] the previous block's converted continuation, faded into the next block
    to_model: Any  # soxr.ResampleStream io rate -> model rate (None when equal)
    to_io: Any  # soxr.ResampleStream model rate -> io rate (None when equal)
    blocks: int = 0


class LiveSession:
    """One live stream through a loaded voice (`svc_core.pipeline.Svc`, `OnnxSvc`, WORLD and RVC voices alike).

    `process(samples)` takes float32 [N] at settings.io_rate, any N, and returns the converted audio that is
    ready (`LiveOutput`). Sizes below are in model-rate samples, whole hops where it matters.
    """

    def __init__(self, svc: Any, settings: LiveSettings) -> None:
        self.svc = svc
        self.settings = settings
        self.sample_rate = int(svc.sample_rate)
        self.hop = int(svc.hop_length)
        svc.begin_conversion(settings.speaker, 0, self.sample_rate)  # SpeakerError before any audio
        self.options = ConvertOptions.from_kwargs(
            svc.option_defaults(), transpose=settings.transpose, f0_predictor=settings.f0_predictor,
            f0_threshold=settings.f0_threshold, cluster_ratio=settings.cluster_ratio,
            noise_scale=settings.noise_scale, loudness_mix=1.0)
        if settings.cluster_ratio > 0 and getattr(svc, "retriever", None) is None:
            raise OptionError("cluster_ratio is above 0 but this voice has no cluster or index file.")
        self.state = self.new_state()

    # ----------------------------------------------------------------- sizes (model-rate samples)
    def _frames(self, seconds: float, minimum: int = 0) -> int:
        return max(minimum, int(round(seconds * self.sample_rate / self.hop))) * self.hop

    @property
    def block_model(self) -> int:
        """New samples per step at the model rate (whole hops, at least one)."""
        return self._frames(self.settings.block_seconds, 1)

    @property
    def crossfade_model(self) -> int:
        return int(round(self.settings.crossfade_seconds * self.sample_rate))

    @property
    def sola_model(self) -> int:
        return int(round(self.settings.sola_search_seconds * self.sample_rate))

    @property
    def extra_model(self) -> int:
        return self._frames(self.settings.extra_seconds)

    @property
    def decoded_model(self) -> int:
        """Samples of each step's output that are used: block + crossfade + SOLA search."""
        return self.block_model + self.crossfade_model + self.sola_model

    @property
    def window_model(self) -> int:
        """Samples f0 and the content encoder read per step: the left context plus the block (whole hops)."""
        return self.extra_model + self.block_model

    @property
    def context_model(self) -> int:
        """Samples of cached features the synthesizer reads per step (whole hops, at least the decoded part)."""
        least = -(-self.decoded_model // self.hop) * self.hop + self.hop
        return max(self._frames(self.settings.context_seconds), least)

    @property
    def block_samples(self) -> int:
        """Samples per block at the io rate (what a transport should send per step)."""
        return int(round(self.block_model * self.settings.io_rate / self.sample_rate))

    @property
    def block_seconds(self) -> float:
        """The block length actually used (block_seconds rounded to whole model frames)."""
        return self.block_model / self.sample_rate

    @property
    def algorithmic_delay_seconds(self) -> float:
        """How far the output's content lags the input's, beyond the block itself: crossfade + SOLA search (an
        upper bound: SOLA takes back up to its search) + the two resamplers' delay."""
        return (self.crossfade_model + self.sola_model + PRIME_MARGIN) / self.sample_rate + self._resampler_delay

    # ----------------------------------------------------------------- state
    def new_state(self) -> LiveState:
        """A fresh stream: silence as history, no tail, new resamplers."""
        io_rate = self.settings.io_rate

        def stream(a: int, b: int):
            return None if a == b else soxr.ResampleStream(a, b, 1, dtype="float32", quality=RESAMPLE_QUALITY)

        input_delay = _stream_delay(io_rate, self.sample_rate, self.block_samples)
        self._resampler_delay = input_delay + _stream_delay(self.sample_rate, io_rate, self.block_model)
        silence = np.zeros(self.context_model, np.float32)  # also loads the f0 predictor and warms the models up
        context = self.svc.piece_features(silence, self.sample_rate, self.settings.speaker, self.options,
                                          StageTimes(), use_cache=False)
        # The io -> model resampler holds some input back; without these zeros in its place, every block would
        # complete one call late (a whole block of latency). The margin covers its +-1 sample jitter per call.
        held = 0 if io_rate == self.sample_rate else int(np.ceil(input_delay * self.sample_rate)) + PRIME_MARGIN
        return LiveState(history=np.zeros(self.window_model, np.float32), context=context,
                         pending=np.zeros(held, np.float32), tail=np.zeros(self.crossfade_model, np.float32),
                         to_model=stream(io_rate, self.sample_rate), to_io=stream(self.sample_rate, io_rate))

    def reset(self) -> None:
        self.state = self.new_state()

    # ----------------------------------------------------------------- one call
    def process(self, samples: np.ndarray) -> LiveOutput:
        """float32 [N] at the io rate -> LiveOutput with the converted audio ready so far."""
        samples = np.ascontiguousarray(np.asarray(samples, dtype=np.float32).reshape(-1))
        if not np.all(np.isfinite(samples)):
            samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
        state = self.state
        level = level_db(samples)
        incoming = samples if state.to_model is None else state.to_model.resample_chunk(samples)
        pending = np.concatenate([state.pending, incoming])
        blocks, gated_all, total = [], True, StageTimes()
        start = time.perf_counter()
        while len(pending) >= self.block_model - (DRIFT_SLACK if state.to_model is not None else 0):
            # A whole io block is rarely a whole number of model samples (48 kHz -> 44.1 kHz: 0.1 sample short
            # per 0.1 s block), so the input drifts below a block now and then; those few samples are made up
            # by repeating the last one, as a clock-drift corrector would (one sample every ~2 minutes).
            if len(pending) < self.block_model:
                pending = np.pad(pending, (0, self.block_model - len(pending)), mode="edge")
            block, pending = pending[: self.block_model], pending[self.block_model:]
            out, gated = self._step(state, block, total)
            blocks.append(out)
            gated_all = gated_all and gated
        state.pending = pending
        infer_seconds = time.perf_counter() - start if blocks and not gated_all else 0.0
        model_out = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
        with total.stage("resample"):
            audio = model_out if state.to_io is None else state.to_io.resample_chunk(model_out)
        return LiveOutput(audio=np.asarray(audio, dtype=np.float32), gated=bool(blocks) and gated_all,
                          infer_seconds=infer_seconds, stages=dict(total.seconds), level_db=level,
                          blocks=len(blocks))

    def _step(self, state: LiveState, block: np.ndarray, times: StageTimes) -> tuple[np.ndarray, bool]:
        """One block (model rate [block_model]) -> (converted [block_model], gated)."""
        state.history = np.concatenate([state.history[len(block):], block])
        state.blocks += 1
        threshold = self.settings.silence_db
        gated = threshold is not None and level_db(block) < threshold
        frames = self.block_model // self.hop
        if gated:  # no f0 or encoder work: the cache gets silence-like frames (unvoiced, content of zeros)
            new = self._silent_features(state.context, block, frames)
        else:
            window = self.svc.piece_features(state.history, self.sample_rate, self.settings.speaker, self.options,
                                             times, use_cache=False)
            new = window.last(frames, self.hop)
        state.context = state.context.then(new).last(self.context_model // self.hop, self.hop)
        if gated:
            return self._silence(state), True
        converted = self._synthesize(state.context, times)
        with times.stage("sola"):
            return self._splice(state, converted), False

    @staticmethod
    def _silent_features(context: PieceFeatures, block: np.ndarray, frames: int) -> PieceFeatures:
        """Features for a gated block: its samples, f0 held at the last value, unvoiced, the oldest cached
        content frame repeated (the cache starts with the encoding of silence)."""
        f0 = context.f0[:, -1:].expand(1, frames).clone()
        return PieceFeatures(wav=block.astype(np.float32), f0=f0, uv=torch.zeros_like(f0),
                             c=context.c[:, :1].expand(-1, frames).clone())

    def _synthesize(self, context: PieceFeatures, times: StageTimes) -> np.ndarray:
        """The synthesizer over the cached features; the last `decoded_model` samples (float32)."""
        left = context.n_frames * self.hop - self.decoded_model
        out = self.svc.synthesize_piece(context, self.settings.speaker, self.options, times, trim=(left, 0))
        out = np.asarray(out, dtype=np.float32)[-self.decoded_model:]
        if len(out) < self.decoded_model:  # a backend that returns fewer frames than the cache holds
            out = np.pad(out, (self.decoded_model - len(out), 0))
        return out

    def _splice(self, state: LiveState, converted: np.ndarray) -> np.ndarray:
        """SOLA + crossfade of a step's output onto the previous tail -> the block to play [block_model]."""
        fade = self.crossfade_model
        lag = sola_offset(state.tail, converted, self.sola_model)
        aligned = converted[lag:]
        out = aligned[: self.block_model].copy()
        if fade:
            out[:fade] = crossfade(state.tail, aligned[:fade], fade_windows(fade))
        state.tail = aligned[self.block_model: self.block_model + fade].copy()
        return out

    def _silence(self, state: LiveState) -> np.ndarray:
        """A gated block: the previous tail fades out into silence, and the next voiced block fades in."""
        out = np.zeros(self.block_model, np.float32)
        fade = self.crossfade_model
        if fade and np.any(state.tail):
            out[:fade] = state.tail * fade_windows(fade)[1]
        state.tail = np.zeros(fade, np.float32)
        return out


def _stream_delay(a: int, b: int, chunk: int) -> float:
    """Seconds a soxr stream a -> b Hz can hold back when fed `chunk` samples per call (0 when a == b): its
    delay plus its output bursts (soxr emits in blocks of a few hundred samples), the largest shortfall over
    PROBE_CALLS calls on silence."""
    if a == b:
        return 0.0
    probe = soxr.ResampleStream(a, b, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    given = out = 0
    shortfall = 0.0
    for _ in range(PROBE_CALLS):
        given += chunk
        out += len(probe.resample_chunk(np.zeros(chunk, np.float32)))
        shortfall = max(shortfall, given * b / a - out)
    return shortfall / b
