"""Figures and the JSON-lines log of one local-device live session (`python -m svc_core live`).

The file is written with the web path's bounded `SessionLog` (svc_core.live.stats: one JSON object per line with
the server's monotonic `t_ms`, at most LOG_MAX_BYTES, then one "truncated" line). Records, by "type":
  start  {"transport": "devices", settings, input/output devices, rate, device latency preset, threads, voice}
  block  one per converted block (device_loop.BlockRecord.to_dict: seq, t, infer_ms, rtf, gated, level_db,
         queued_in, stages_ms)
  status one per second (devices.DeviceStatus.to_dict: latency estimate, infer, RTF, underruns, drops, level)
  end    the summary (`summary()`)
The "too slow" advice is the web page's (stats.speed_advice with its cost model fitted from the blocks' stages).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict
from pathlib import Path
from typing import Any, Optional

from ..errors import OptionError
from .device_loop import BlockRecord
from .stats import STATS_WINDOW_BLOCKS, TIGHT_RTF, CostModel, SessionLog, percentile, speed_advice

ADVICE_EVERY_SECONDS = 10.0  # the advice repeats on the status line at most this often


class DeviceSessionLog:
    """Keeps the last STATS_WINDOW_BLOCKS block records for the summary and the advice; writes to `path` if given.
    `block` is called from the conversion thread, the rest from the runner: writes are serialised."""

    def __init__(self, path: Optional[Path], block_seconds: float, extra_seconds: float) -> None:
        self.block_seconds = block_seconds
        self.extra_seconds = extra_seconds
        try:
            self.file = SessionLog(path) if path is not None else None
        except OSError as err:
            raise OptionError(f"Cannot write the log '{path}' (--log): {err.strerror or err}.") from err
        self.blocks: deque[BlockRecord] = deque(maxlen=STATS_WINDOW_BLOCKS)
        self.latencies: deque[float] = deque(maxlen=STATS_WINDOW_BLOCKS)
        self.last_status: Any = None
        self._advised_at = -ADVICE_EVERY_SECONDS
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Optional[str], settings: Any, plan: Any, svc_name: str, threads: str) -> "DeviceSessionLog":
        log = cls(Path(path) if path else None, settings.block_seconds, settings.extra_seconds)
        log._write({"type": "start", "transport": "devices", "voice": svc_name, "threads": threads,
                    "settings": settings.to_dict(), "rate": plan.rate, "input": asdict(plan.input),
                    "output": asdict(plan.output), "output_channels": plan.output_channels,
                    "device_latency": plan.latency, "headroom_seconds": plan.headroom_seconds})
        return log

    def _write(self, record: dict) -> None:
        if self.file is not None:
            with self._lock:
                self.file.write(record)

    def block(self, record: BlockRecord) -> None:
        self.blocks.append(record)
        self._write(record.to_dict())

    def status(self, status: Any) -> None:
        self.last_status = status
        if status.converted:
            self.latencies.append(status.latency_seconds * 1000.0)
        self._write(status.to_dict())

    def advice(self) -> Optional[dict]:
        """stats.speed_advice over the recent converted (not gated) blocks: None while they keep up."""
        converted = [r for r in self.blocks if not r.gated]
        if not converted:
            return None
        rtf = percentile((r.rtf for r in converted), 50)
        median = sorted(converted, key=lambda r: r.infer_seconds)[len(converted) // 2]
        model = CostModel.from_stages(median.infer_seconds, median.stages, self.block_seconds, self.extra_seconds)
        return speed_advice(rtf, model, self.block_seconds, self.extra_seconds)

    def advice_text(self, status: Any) -> str:
        """' | <advice>' for the status line when conversion is (nearly) too slow, at most every 10 s."""
        if status.rtf < TIGHT_RTF or status.elapsed - self._advised_at < ADVICE_EVERY_SECONDS:
            return ""
        advice = self.advice()
        if advice is None:
            return ""
        self._advised_at = status.elapsed
        return f"\n  {advice['message']}"

    def summary(self, final: Any = None) -> dict:
        converted = [r for r in self.blocks if not r.gated]
        infer = [r.infer_seconds * 1000.0 for r in converted]
        rtf = [r.rtf for r in converted]
        out = {"blocks": len(self.blocks), "gated_blocks": len(self.blocks) - len(converted),
               "inference_median_ms": _round(percentile(infer, 50)), "inference_p95_ms": _round(percentile(infer, 95)),
               "rtf_median": _round(percentile(rtf, 50), 3), "rtf_p95": _round(percentile(rtf, 95), 3),
               "latency_estimate_median_ms": _round(percentile(self.latencies, 50))}
        if final is not None:
            out.update(underruns=final.underruns, dropped=final.dropped, converted=final.converted,
                       device_xruns=final.device_xruns, seconds=round(final.elapsed, 2))
        out["advice"] = self.advice()
        return out

    def close(self, final: Any = None) -> dict:
        """Write the "end" summary, close the file, return the summary."""
        summary = self.summary(final)
        self._write({"type": "end", **summary})
        if self.file is not None:
            self.file.close()
        return summary


def _round(value: Optional[float], digits: int = 1) -> Optional[float]:
    return None if value is None else round(value, digits)
