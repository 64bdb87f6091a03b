"""Latency bookkeeping of one live session: clock offset, per-block stamps, summaries, a block-size suggestion and
a bounded JSON-lines log.

Clocks: the browser stamps with `performance.now()` (ms), the server with `server_ms()` (monotonic ms). Times of
one side are only compared with times of the same side, except through `ClockOffset` (NTP's estimate: the client
sends t0, the server answers t1 = receive, t2 = send, the client notes t3; offset = ((t1-t0)+(t2-t3))/2 is server
minus client, delay = (t3-t0)-(t2-t1) the round trip; the sample with the smallest delay among the last K is kept,
as its offset error is at most delay/2).

End-to-end latency of block k (mic to ear, all on the client clock):
    e2e = play_ms - capture_ms + algorithmic_delay_ms + holdback_ms
where capture_ms is when input block k's first sample reached the microphone and play_ms when output block k's
first sample reached the speaker (the page plays the output blocks back to back). Output block k's first sample is
not input block k's first sample: it carries the input content that came `holdback + algorithmic_delay` earlier,
where holdback = (input samples given to the engine before block k) - (output samples it returned before block k):
input the engine holds because a step needs a whole model block (its io-rate block is a fraction of a model hop
off, so one call may return no block and a later one two), and algorithmic_delay is what the engine itself adds
inside the output stream (crossfade, SOLA search, resamplers; LiveSession.algorithmic_delay_seconds). Checked with
the starter voice against the lag of the output's envelope (tests/live/test_live_web.py).
"""
from __future__ import annotations

import json
import math
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

CLOCK_SAMPLES = 8  # ping samples kept; the one with the smallest round trip gives the offset
STATS_WINDOW_BLOCKS = 600  # blocks summarised (60 s of 0.1 s blocks)
PENDING_LIMIT = 512  # blocks sent but not yet reported played; older ones are forgotten (counted as unreported)
SLOW_RTF = 1.0  # median inference / block above this: slower than real time, underruns are certain
TIGHT_RTF = 0.8  # above this, inference jitter alone causes underruns: the page warns and suggests a block
TARGET_RTF = 0.6  # the suggestion aims for inference at this share of the block (room for jitter)
SUGGEST_STEP_SECONDS = 0.02  # suggested block sizes are multiples of this
MAX_SUGGEST_SECONDS = 1.0  # beyond this a live conversion is not useful: say so instead
WINDOW_STAGES = ("f0", "encoder", "retrieval")  # stages that read extra + block (the rest: the new block only)
LOG_MAX_BYTES = 4 * 1024**2  # a session log stops growing here (one truncated line says so)


def server_ms() -> float:
    """The server's clock for every stamp: monotonic milliseconds."""
    return time.monotonic() * 1000.0


# ---------------------------------------------------------------------------------------------------- clock
@dataclass(frozen=True)
class ClockSample:
    offset_ms: float  # server clock minus client clock
    delay_ms: float  # round trip less the server's holding time


def clock_sample(t0: float, t1: float, t2: float, t3: float) -> ClockSample:
    """NTP's estimate from one ping: t0 client send, t1 server receive, t2 server send, t3 client receive (ms)."""
    return ClockSample(((t1 - t0) + (t2 - t3)) / 2.0, max(0.0, (t3 - t0) - (t2 - t1)))


class ClockOffset:
    """The offset (server minus client, ms) of the smallest-round-trip ping among the last `keep`."""

    def __init__(self, keep: int = CLOCK_SAMPLES) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=max(1, keep))

    def add(self, t0: float, t1: float, t2: float, t3: float) -> ClockSample:
        sample = clock_sample(t0, t1, t2, t3)
        self._samples.append(sample)
        return sample

    @property
    def best(self) -> ClockSample | None:
        return min(self._samples, key=lambda s: s.delay_ms) if self._samples else None

    @property
    def offset_ms(self) -> float | None:
        best = self.best
        return None if best is None else best.offset_ms

    def to_server(self, client_ms: float) -> float | None:
        offset = self.offset_ms
        return None if offset is None else client_ms + offset


# ---------------------------------------------------------------------------------------------------- blocks
@dataclass
class BlockStamps:
    """One block's journey. capture_ms/play_ms: client clock; recv/start/end/send: server clock (ms)."""

    seq: int
    samples: int  # input samples in the block
    capture_ms: float
    recv_ms: float
    start_ms: float | None = None
    end_ms: float | None = None
    send_ms: float | None = None
    play_ms: float | None = None
    gated: bool = False
    out_samples: int = 0
    holdback_ms: float = 0.0  # input the engine held when this block went in (module docstring)

    @property
    def inference_ms(self) -> float | None:
        return None if self.start_ms is None or self.end_ms is None else self.end_ms - self.start_ms

    @property
    def queue_ms(self) -> float | None:
        return None if self.start_ms is None else self.start_ms - self.recv_ms

    def e2e_ms(self, delay_ms: float) -> float | None:
        """Mic to ear (module docstring); None until the client reported the block played."""
        return None if self.play_ms is None else self.play_ms - self.capture_ms + delay_ms + self.holdback_ms

    def uplink_ms(self, offset_ms: float | None) -> float | None:
        """Capture to server receive, network and the client's send queue (needs the clock offset)."""
        return None if offset_ms is None else self.recv_ms - (self.capture_ms + offset_ms)

    def downlink_ms(self, offset_ms: float | None) -> float | None:
        """Server send to speaker: network, the jitter buffer and the output device (needs the clock offset)."""
        if offset_ms is None or self.play_ms is None or self.send_ms is None:
            return None
        return self.play_ms - (self.send_ms - offset_ms)


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0..100, linear between ranks); None for no values."""
    data = sorted(v for v in values if v is not None and math.isfinite(v))
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    low = int(math.floor(pos))
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


# ---------------------------------------------------------------------------------------------------- suggestion
@dataclass(frozen=True)
class CostModel:
    """Inference seconds of one block, at the session's extra (left context), as a line in the block length:
        seconds(block) = intercept + slope * block
    The intercept is what a block costs whatever its length (f0 and the content encoder over the extra context,
    each stage's fixed overhead); the slope is what each second of new audio adds (those stages over the block,
    the synthesizer/vocoder, which renders only the new frames, SOLA, the resamplers).

    `calibrated`: the slope measured from two block lengths (the session's warm-up converts a longer block too,
    web_session.warm_up) and the intercept from the live median: what the suggestion uses. `from_stages`, the
    fallback without that: f0/encoder/retrieval taken as proportional to extra + block, the rest to the block, no
    fixed overhead (measured on the starter voice, that overstates the slope: the synthesizer has a fixed part)."""

    intercept: float  # s
    slope: float  # s of compute per s of block

    @classmethod
    def calibrated(cls, infer_seconds: float, block_seconds: float, slope: float) -> "CostModel":
        slope = max(0.0, slope)
        return cls(max(0.0, infer_seconds - slope * block_seconds), slope)

    @classmethod
    def from_stages(cls, infer_seconds: float, stages: dict[str, float], block_seconds: float,
                    extra_seconds: float) -> "CostModel":
        window = sum(v for k, v in stages.items() if k in WINDOW_STAGES) if stages else infer_seconds
        window_rate = window / max(1e-6, extra_seconds + block_seconds)
        block_rate = max(0.0, infer_seconds - window) / max(1e-6, block_seconds)
        return cls(window_rate * extra_seconds, window_rate + block_rate)

    def seconds(self, block_seconds: float) -> float:
        return self.intercept + self.slope * block_seconds

    def smallest_block(self, target_rtf: float = TARGET_RTF) -> float | None:
        """The smallest block (s, a multiple of SUGGEST_STEP_SECONDS) whose inference stays within target_rtf of
        it; None when no block up to MAX_SUGGEST_SECONDS does (each second of audio alone costs too much)."""
        room = target_rtf - self.slope
        if room <= 0:
            return None
        block = math.ceil(self.intercept / room / SUGGEST_STEP_SECONDS - 1e-9) * SUGGEST_STEP_SECONDS
        block = max(SUGGEST_STEP_SECONDS, round(block, 3))
        return block if block <= MAX_SUGGEST_SECONDS else None


def speed_advice(rtf: float | None, model: CostModel | None, block_seconds: float,
                 extra_seconds: float) -> dict | None:
    """{"level": "slow"|"tight", "message": ..., "suggested_block_seconds": s|None} when the median real-time
    factor is too high, else None."""
    if rtf is None or rtf < TIGHT_RTF or model is None:
        return None
    level = "slow" if rtf >= SLOW_RTF else "tight"
    head = (f"Inference is slower than real time ({rtf:.2f} s per second of audio): the sound will break up."
            if level == "slow" else f"Inference takes {rtf:.0%} of each block: little room left, expect gaps.")
    block = model.smallest_block()
    if block is not None and block > block_seconds:
        tail = (f" Try a block of {block:g} s (estimated inference {model.seconds(block) * 1000:.0f}"
                f" ms per block), or a shorter extra context.")
    elif block is not None:
        tail = " Try a shorter extra context, or close other programs using the CPU."
    else:
        tail = (f" No block size up to {MAX_SUGGEST_SECONDS:g} s keeps up with extra {extra_seconds:g} s; lower "
                "extra, turn the silence gate on, or use a smaller voice.")
    return {"level": level, "message": head + tail, "suggested_block_seconds": block}


# ---------------------------------------------------------------------------------------------------- session
@dataclass
class ClientCounters:
    """What the page reports about playback (cumulative since start)."""

    underruns: int = 0  # times the jitter buffer ran dry while playing
    underrun_ms: float = 0.0  # silence played because of them
    played_samples: int = 0
    received_samples: int = 0
    skipped_ms: float = 0.0  # audio dropped by the jitter buffer to catch up after a burst


@dataclass
class SessionStats:
    """Stamps of one live session, their rolling summary and the advice; `log` (optional) gets a line per block."""

    block_seconds: float
    extra_seconds: float
    delay_seconds: float  # the engine's algorithmic_delay_seconds
    io_rate: int
    log: "SessionLog | None" = None
    clock: ClockOffset = field(default_factory=ClockOffset)
    dropped: int = 0  # blocks dropped on the server (input queue full)
    unreported: int = 0  # blocks whose playback was never reported (client gone or reports lost)
    counters: ClientCounters = field(default_factory=ClientCounters)
    _pending: dict = field(default_factory=dict)
    _done: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW_BLOCKS))
    _stages: deque = field(default_factory=lambda: deque(maxlen=STATS_WINDOW_BLOCKS))
    blocks: int = 0
    slope: float | None = None  # s of inference per s of block, measured at warm-up (CostModel.calibrated)
    in_samples: int = 0  # given to the engine so far
    out_samples: int = 0  # returned by it

    def received(self, seq: int, samples: int, capture_ms: float, recv_ms: float) -> BlockStamps:
        stamps = BlockStamps(seq, samples, capture_ms, recv_ms)
        self._pending[seq] = stamps
        while len(self._pending) > PENDING_LIMIT:
            self._pending.pop(next(iter(self._pending)))
            self.unreported += 1
        return stamps

    def forget(self, stamps: BlockStamps) -> None:
        """A received block that was dropped before conversion."""
        self._pending.pop(stamps.seq, None)
        self.dropped += 1
        if self.log is not None:
            self.log.write({"type": "dropped", "seq": stamps.seq, "recv_ms": stamps.recv_ms})

    def converted(self, stamps: BlockStamps, start_ms: float, end_ms: float, gated: bool, out_samples: int,
                  stages: dict[str, float] | None = None) -> None:
        stamps.start_ms, stamps.end_ms, stamps.gated, stamps.out_samples = start_ms, end_ms, gated, out_samples
        stamps.holdback_ms = (self.in_samples - self.out_samples) * 1000.0 / self.io_rate
        self.in_samples += stamps.samples
        self.out_samples += out_samples
        self.blocks += 1
        if out_samples == 0:  # nothing came out (the engine held the input): no playback to wait for
            self._pending.pop(stamps.seq, None)
        if not gated:
            self._stages.append((end_ms - start_ms, dict(stages or {})))

    def played(self, seq: int, play_ms: float) -> BlockStamps | None:
        """The client played block `seq`'s first sample at play_ms (client clock); the block is finished."""
        stamps = self._pending.pop(seq, None)
        if stamps is None:
            return None
        stamps.play_ms = float(play_ms)
        self._done.append(stamps)
        if self.log is not None:
            offset = self.clock.offset_ms
            self.log.write({"type": "block", **asdict(stamps), "e2e_ms": _round(stamps.e2e_ms(self.delay_ms), 2),
                            "inference_ms": _round(stamps.inference_ms, 2), "queue_ms": _round(stamps.queue_ms, 2),
                            "uplink_ms": _round(stamps.uplink_ms(offset), 2),
                            "downlink_ms": _round(stamps.downlink_ms(offset), 2)})
        return stamps

    def client_report(self, counters: dict) -> None:
        for name in ("underruns", "played_samples", "received_samples"):
            if name in counters:
                setattr(self.counters, name, int(counters[name]))
        for name in ("underrun_ms", "skipped_ms"):
            if name in counters:
                setattr(self.counters, name, float(counters[name]))

    @property
    def delay_ms(self) -> float:
        return self.delay_seconds * 1000.0

    def cost_model(self) -> CostModel | None:
        """From the median converted block: calibrated when the warm-up measured a slope, else from its stages."""
        if not self._stages:
            return None
        ordered = sorted(self._stages, key=lambda item: item[0])
        infer_ms, stages = ordered[len(ordered) // 2]
        if self.slope is not None:
            return CostModel.calibrated(infer_ms / 1000.0, self.block_seconds, self.slope)
        return CostModel.from_stages(infer_ms / 1000.0, stages, self.block_seconds, self.extra_seconds)

    def summary(self) -> dict:
        """Medians and p95 over the last STATS_WINDOW_BLOCKS played blocks (ms), counters, the advice."""
        done = list(self._done)
        offset = self.clock.offset_ms
        e2e = [s.e2e_ms(self.delay_ms) for s in done]
        infer = [ms for ms, _ in self._stages]
        rtf_values = [ms / (self.block_seconds * 1000.0) for ms in infer]
        rtf = percentile(rtf_values, 50)
        out = {
            "blocks": self.blocks, "played_blocks": len(done), "gated_blocks": sum(s.gated for s in done),
            "e2e_median_ms": _round(percentile(e2e, 50)), "e2e_p95_ms": _round(percentile(e2e, 95)),
            "inference_median_ms": _round(percentile(infer, 50)), "inference_p95_ms": _round(percentile(infer, 95)),
            "rtf_median": _round(rtf, 3), "rtf_p95": _round(percentile(rtf_values, 95), 3),
            "queue_median_ms": _round(percentile((s.queue_ms for s in done), 50)),
            "uplink_median_ms": _round(percentile((s.uplink_ms(offset) for s in done), 50)),
            "downlink_median_ms": _round(percentile((s.downlink_ms(offset) for s in done), 50)),
            "algorithmic_delay_ms": _round(self.delay_ms),
            "holdback_median_ms": _round(percentile((s.holdback_ms for s in done), 50)), "block_ms": _round(self.block_seconds * 1000.0),
            "clock_offset_ms": _round(offset, 2),
            "clock_rtt_ms": _round(self.clock.best.delay_ms, 2) if self.clock.best else None,
            "dropped": self.dropped, "unreported": self.unreported, **asdict(self.counters),
        }
        model = self.cost_model()
        out["cost_model"] = None if model is None else {"intercept_ms": round(model.intercept * 1000.0, 1),
                                                        "slope": round(model.slope, 3),
                                                        "calibrated": self.slope is not None}
        out["advice"] = speed_advice(rtf, model, self.block_seconds, self.extra_seconds)
        return out


# ---------------------------------------------------------------------------------------------------- log
class SessionLog:
    """One JSON object per line, at most `max_bytes`: past that one {"type": "truncated"} line ends the file."""

    def __init__(self, path: Path, max_bytes: int = LOG_MAX_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.written = 0
        self.truncated = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def write(self, record: dict) -> None:
        if self.truncated or self._file.closed:
            return
        line = json.dumps({"t_ms": round(server_ms(), 2), **record}, separators=(",", ":")) + "\n"
        if self.written + len(line) > self.max_bytes:
            self.truncated = True
            line = json.dumps({"type": "truncated", "max_bytes": self.max_bytes}) + "\n"
        self._file.write(line)
        self._file.flush()
        self.written += len(line)

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def prune_logs(folder: Path, keep: int) -> None:
    """Remove all but the newest `keep` session logs in `folder`."""
    if not folder.is_dir():
        return
    logs = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in logs[keep:]:
        old.unlink(missing_ok=True)
