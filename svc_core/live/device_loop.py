"""The block pump between an audio device callback and a LiveSession, with no PortAudio in it.

The device callback (PortAudio's thread) only copies: `push_input` cuts the incoming samples into blocks of
`block_samples` and queues them, `pull_output` hands back converted samples. A conversion thread calls `step`,
which runs `session.process` on the oldest queued block. Both queues are bounded: when conversion falls behind,
the oldest input block is dropped (counted in `dropped`), and when converted audio piles up beyond
`max_output_blocks`, the oldest of it is dropped too (counted in `dropped`, keeps the latency bounded).

When converted audio first arrives, playback starts after `headroom_samples` of silence (a small jitter buffer for
conversion times that vary: the queue then holds that much audio in hand). When the device then asks for more than
is ready it gets silence for the missing part, `underruns` counts one, and playback waits for the next converted
audio and the headroom again (the start-up wait is not an underrun).

`svc_core.live.devices` runs this around a sounddevice stream; tests can call `push_input` / `step` /
`pull_output` themselves with their own clock.
"""
from __future__ import annotations

import collections
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

MAX_QUEUED_BLOCKS = 3  # input blocks waiting for conversion before the oldest is dropped
MAX_OUTPUT_BLOCKS = 4.0  # converted audio waiting for the device, in blocks, before the oldest is dropped
RECENT_SECONDS = 2.0  # window of the per-block figures shown in the status line, s
WORKER_WAIT_SECONDS = 0.05  # how long the conversion thread waits for a block before checking for stop, s
SILENCE_DB = -120.0  # level reported for digital silence, dBFS
DEFAULT_HEADROOM_SECONDS = 0.03  # converted audio held back before playback (re)starts, s


@dataclass
class BlockRecord:
    """One converted block: what the status line and the JSON-lines log report."""

    seq: int
    at: float  # seconds since the pump started (monotonic clock)
    block_seconds: float  # audio in the block, s
    infer_seconds: float  # wall time of session.process, s
    gated: bool
    level_db: float  # input RMS, dBFS
    queued_in: int  # input blocks still waiting after this one was taken
    stages: dict[str, float] = field(default_factory=dict)
    wait_seconds: float = 0.0  # from the block's last sample arriving to its conversion's end, s (queue + infer)
    backlog_seconds: float = 0.0  # converted audio queued ahead of this block's output, s (played first)
    held_seconds: float = 0.0  # input the session had taken in (this block included) but not yet returned, s,
    # before this block's output: the block itself plus what the engine holds back (its resamplers, start-up)

    @property
    def delay_seconds(self) -> float:
        """How long after its input sample the first sample of this block's output plays, less the device
        latencies and the engine's content shift (algorithmic delay), s: held + wait + backlog."""
        return self.held_seconds + self.wait_seconds + self.backlog_seconds

    @property
    def rtf(self) -> float:
        """Real-time factor: conversion time / audio time (< 1 keeps up)."""
        return self.infer_seconds / self.block_seconds if self.block_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"type": "block", "seq": self.seq, "t": round(self.at, 4),
                "infer_ms": round(self.infer_seconds * 1000, 2), "rtf": round(self.rtf, 4), "gated": self.gated,
                "level_db": round(self.level_db, 1), "queued_in": self.queued_in,
                "wait_ms": round(self.wait_seconds * 1000, 2), "backlog_ms": round(self.backlog_seconds * 1000, 2),
                "held_ms": round(self.held_seconds * 1000, 2),
                "stages_ms": {k: round(v * 1000, 2) for k, v in self.stages.items()}}


@dataclass
class PumpCounters:
    blocks_in: int = 0  # full blocks cut from the input
    converted: int = 0  # blocks converted
    dropped: int = 0  # input blocks dropped (conversion behind) + output chunks dropped (backlog)
    underruns: int = 0  # device callbacks that got less converted audio than they asked for
    gated: int = 0  # converted blocks the silence gate skipped


class BlockPump:
    """Bounded queues and counters between a device callback and `process(samples) -> LiveOutput`.

    process: LiveSession.process (float32 [N] at the device rate -> LiveOutput with .audio float32 [M]).
    block_samples: samples per block at the device rate (LiveSession.block_samples).
    """

    def __init__(self, process: Callable[[np.ndarray], Any], block_samples: int, rate: int,
                 max_queued_blocks: int = MAX_QUEUED_BLOCKS, max_output_blocks: float = MAX_OUTPUT_BLOCKS,
                 headroom_samples: int = 0, on_block: Optional[Callable[[BlockRecord], None]] = None) -> None:
        if block_samples <= 0:
            raise ValueError("block_samples must be positive")
        self.process = process
        self.block_samples = int(block_samples)
        self.rate = int(rate)
        self.on_block = on_block
        self.counters = PumpCounters()
        self.recent: collections.deque[BlockRecord] = collections.deque()
        self._inputs: queue.Queue[tuple[np.ndarray, float]] = queue.Queue(maxsize=max(1, int(max_queued_blocks)))
        self._pending = np.zeros(self.block_samples, dtype=np.float32)  # callback side: the block being filled
        self._filled = 0
        self._out_chunks: collections.deque[np.ndarray] = collections.deque()
        self._out_queued = 0  # samples in _out_chunks (under _lock)
        self._out_head = 0  # samples of _out_chunks[0] already played (callback side)
        self._max_output = int(max_output_blocks * self.block_samples)
        self._in_total = 0  # samples given to process (conversion side)
        self._out_total = 0  # samples process returned
        self._lock = threading.Lock()  # held only to append/pop output chunks (microseconds)
        self._headroom = max(0, int(headroom_samples))
        self._playing = False  # callback side: converted audio is flowing to the device
        self._lead_in = 0  # callback side: silence still to play before the queued audio (the headroom)
        self._start = time.perf_counter()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self.error: Optional[BaseException] = None  # what stopped the conversion thread, if anything did

    # --- device side (must never wait on conversion) ---
    def push_input(self, samples: np.ndarray) -> None:
        """Queue mono float32 samples [N] from the device; full blocks go to the conversion queue."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        pos = 0
        while pos < samples.size:
            take = min(self.block_samples - self._filled, samples.size - pos)
            self._pending[self._filled:self._filled + take] = samples[pos:pos + take]
            self._filled += take
            pos += take
            if self._filled == self.block_samples:
                self._queue_block(self._pending.copy(), time.perf_counter())
                self._filled = 0

    def _queue_block(self, block: np.ndarray, at: float) -> None:
        self.counters.blocks_in += 1
        while True:
            try:
                self._inputs.put_nowait((block, at))
                return
            except queue.Full:
                try:
                    self._inputs.get_nowait()  # drop the oldest: newer audio matters more live
                    self.counters.dropped += 1
                except queue.Empty:
                    pass

    def pull_output(self, frames: int) -> np.ndarray:
        """float32 [frames] of converted audio for the device; silence where none is ready (an underrun)."""
        out = np.zeros(int(frames), dtype=np.float32)
        pos = 0
        if not self._playing:
            if self._out_queued == 0:
                return out  # waiting for the first block (or, after an underrun, for the next)
            self._playing = True
            self._lead_in = self._headroom
        if self._lead_in:
            pos = min(frames, self._lead_in)
            self._lead_in -= pos
        with self._lock:
            while pos < frames and self._out_chunks:
                chunk = self._out_chunks[0]
                take = min(frames - pos, chunk.size - self._out_head)
                out[pos:pos + take] = chunk[self._out_head:self._out_head + take]
                pos += take
                self._out_head += take
                self._out_queued -= take
                if self._out_head == chunk.size:
                    self._out_chunks.popleft()
                    self._out_head = 0
        if pos < frames:
            self.counters.underruns += 1
            self._playing = False
        return out

    @property
    def output_queued_seconds(self) -> float:
        """Converted audio waiting for the device, s (part of the latency)."""
        return self._out_queued / self.rate

    @property
    def input_queued_blocks(self) -> int:
        return self._inputs.qsize()

    # --- conversion side ---
    def step(self, timeout: float = 0.0) -> bool:
        """Convert the oldest queued block (waiting up to `timeout` s for one); False when there was none."""
        try:
            block, queued_at = self._inputs.get(timeout=timeout) if timeout > 0 else self._inputs.get_nowait()
        except queue.Empty:
            return False
        self._in_total += block.size
        result = self.process(block)
        audio = np.asarray(result.audio, dtype=np.float32).reshape(-1)
        held = (self._in_total - self._out_total) / self.rate
        self._out_total += audio.size
        backlog = self._append_output(audio) / self.rate
        record = BlockRecord(seq=self.counters.converted, at=time.perf_counter() - self._start,
                             block_seconds=block.size / self.rate, infer_seconds=float(result.infer_seconds),
                             gated=bool(result.gated), level_db=float(result.level_db),
                             queued_in=self._inputs.qsize(), stages=dict(getattr(result, "stages", {}) or {}),
                             wait_seconds=time.perf_counter() - queued_at, backlog_seconds=backlog,
                             held_seconds=held)
        self.counters.converted += 1
        self.counters.gated += int(record.gated)
        self.recent.append(record)
        while self.recent and record.at - self.recent[0].at > RECENT_SECONDS:
            self.recent.popleft()
        if self.on_block is not None:
            self.on_block(record)
        return True

    def _append_output(self, audio: np.ndarray) -> int:
        """Queue converted samples; returns how many play ahead of them (queued audio, and the headroom's silence
        when playback is about to (re)start)."""
        lead_in = self._lead_in if self._playing else self._headroom
        if audio.size == 0:
            return self._out_queued + lead_in
        with self._lock:
            ahead = self._out_queued + lead_in
            self._out_chunks.append(audio)
            self._out_queued += audio.size
            while self._out_queued > self._max_output and len(self._out_chunks) > 1:
                first = self._out_chunks.popleft()
                self._out_queued -= first.size - self._out_head
                self._out_head = 0
                self.counters.dropped += 1
        return ahead

    def start(self) -> None:
        """Run `step` on a daemon thread until `stop`."""
        self._start = time.perf_counter()
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="live-conversion", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while not self._stop.is_set():
                self.step(timeout=WORKER_WAIT_SECONDS)
        except BaseException as err:  # reported by the runner; the device keeps playing silence meanwhile
            self.error = err

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- figures ---
    def recent_infer_seconds(self) -> float:
        """Median conversion time of the blocks converted (not gated) in the last RECENT_SECONDS, s (0 if none)."""
        converted = [r.infer_seconds for r in self.recent if not r.gated]
        return statistics.median(converted) if converted else 0.0

    def recent_delay_seconds(self) -> float:
        """Median BlockRecord.delay_seconds of the blocks converted (not gated) lately, s (0 if none)."""
        converted = [r.delay_seconds for r in self.recent if not r.gated]
        return statistics.median(converted) if converted else 0.0

    def recent_level_db(self) -> float:
        return self.recent[-1].level_db if self.recent else SILENCE_DB
