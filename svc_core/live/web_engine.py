"""The engine side of a Live page session (web_session.py): loading a voice for it, reading the page's settings,
warming the engine up and measuring its cost, and the test-only stall.

Test hook: $SVC_LIVE_TEST_STALL_MS (web.STALL_ENV) makes `Engine.process` sleep that long per block, inside the
measured conversion time, to prove that the page detects a server that cannot keep up. Read only here.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .settings import IO_RATES
from .web import STALL_ENV, LiveServer

MIN_IO_RATE, MAX_IO_RATE = min(IO_RATES), max(IO_RATES)  # Hz the engine takes (an AudioContext runs at 44.1 or 48 kHz)
WARM_UP_BLOCKS = 2  # blocks converted and thrown away before the stream starts (torch's first calls are slow)
CALIBRATION_BLOCKS = 2  # then timed at the session's block and at one CALIBRATION_SECONDS longer (the fastest
CALIBRATION_SECONDS = 0.2  # of each counts): the slope of the cost in the block length (stats.CostModel)
WARM_UP_LEVEL = 0.01  # their noise level (-40 dBFS: above the default gate, so the blocks are converted)


@dataclass
class Engine:
    """The session the worker thread drives, with its voice; `stall` (tests only) sleeps per block."""

    voice: str
    svc: Any
    session: Any  # svc_core.live.LiveSession
    stall_seconds: float = 0.0

    def process(self, samples: np.ndarray):
        if self.stall_seconds:
            time.sleep(self.stall_seconds)
        return self.session.process(samples)


def stall_seconds() -> float:
    """$SVC_LIVE_TEST_STALL_MS in seconds (0 when unset or not a number)."""
    try:
        return max(0.0, float(os.environ.get(STALL_ENV, "0"))) / 1000.0
    except ValueError:
        return 0.0


def load_svc(server: LiveServer, voice: str):
    """A fresh engine for the voice `voice` (its own Svc and encoder, loaded the way the page loads voices, on
    torch): a live session holds it for minutes, so it is not the conversion jobs' cached, locked one."""
    from ..ui import backends
    from ..ui.voice_cache import VoiceCache
    from ..ui.workdir import ONNX_EXPORTS

    entry = server.library.get(voice)  # ModelError names the voices there are
    cache = VoiceCache(1, server.device, server.work_dir / ONNX_EXPORTS, server.threads)
    loaded, _ = cache.get(entry, backends.TORCH)  # also sets this worker thread's torch thread count
    return loaded.svc


def _timed_blocks(session, seconds_wanted: int) -> list[float]:
    """Feed faint noise to `session` until it converted `seconds_wanted` blocks; their inference seconds."""
    noise = np.random.default_rng(0).standard_normal(session.block_samples).astype(np.float32) * WARM_UP_LEVEL
    times: list[float] = []
    for _ in range(2 * seconds_wanted + 2):  # a call may return no block (the engine holds its input)
        out = session.process(noise)
        if out.infer_seconds > 0:
            times.append(out.infer_seconds / max(1, getattr(out, "blocks", 1)))
        if len(times) >= seconds_wanted:
            break
    return times


def warm_up(svc: Any, settings) -> float | None:
    """Convert a few blocks of faint noise in throwaway sessions (gate off), so that the stream's first blocks do
    not pay for torch's first calls (measured: the starter voice's first block costs several times the steady
    one: an underrun at every start); and measure the cost's slope in the block length (stats.CostModel) from the
    session's block and one CALIBRATION_SECONDS longer. Returns the slope (s of inference per s of block), None
    when it could not be measured."""
    from dataclasses import replace

    from .session import LiveSession
    from .settings import RANGES

    base = LiveSession(svc, replace(settings, silence_db=None))
    short = _timed_blocks(base, WARM_UP_BLOCKS + CALIBRATION_BLOCKS)[WARM_UP_BLOCKS:]
    longer_seconds = min(settings.block_seconds + CALIBRATION_SECONDS, RANGES["block_seconds"].high)
    longer = LiveSession(svc, replace(settings, silence_db=None, block_seconds=longer_seconds))
    long = _timed_blocks(longer, CALIBRATION_BLOCKS)
    span = (longer.block_samples - base.block_samples) / settings.io_rate
    if not short or not long or span <= 0:
        return None
    return (min(long) - min(short)) / span


def torch_threads() -> int:
    """The calling (worker) thread's torch thread count (svc_core.threads chose it when the voice loaded)."""
    import torch

    return int(torch.get_num_threads())


def parse_settings(raw: Any):
    """The page's settings object -> LiveSettings (OptionError for unknown keys or values out of range)."""
    from ..errors import OptionError
    from .settings import LiveSettings

    if not isinstance(raw, dict):
        raise OptionError("settings must be a JSON object.")
    rate = raw.get("io_rate", 48000)
    if not isinstance(rate, (int, float)) or not MIN_IO_RATE <= rate <= MAX_IO_RATE:
        raise OptionError(f"io_rate must be {MIN_IO_RATE}-{MAX_IO_RATE} Hz; got {rate!r}.")
    return LiveSettings.from_kwargs(**{**raw, "io_rate": int(rate)})
