"""Per-stage wall-clock timing and real-time factor for one conversion."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import psutil


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux: ru_maxrss)."""
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, AttributeError):  # non-POSIX: current RSS is the best we have
        return psutil.Process().memory_info().rss / 2**20


@dataclass
class StageTimes:
    """Seconds spent per pipeline stage, in first-seen order, plus the audio duration they produced."""

    seconds: dict[str, float] = field(default_factory=dict)
    audio_seconds: float = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio (below 1 is faster than real time)."""
        return self.total / self.audio_seconds if self.audio_seconds > 0 else float("nan")

    def rows(self) -> list[tuple[str, float, float]]:
        """(stage, seconds, share of total) rows."""
        total = self.total or 1.0
        return [(name, sec, sec / total) for name, sec in self.seconds.items()]

    def table(self) -> str:
        lines = [f"{'stage':<14}{'seconds':>10}{'share':>8}"]
        lines += [f"{name:<14}{sec:>10.3f}{share:>7.0%}" for name, sec, share in self.rows()]
        lines.append(f"{'total':<14}{self.total:>10.3f}")
        lines.append(f"audio {self.audio_seconds:.2f} s, real-time factor {self.rtf:.3f}")
        return "\n".join(lines)
