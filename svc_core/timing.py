"""Per-stage wall-clock timing and real-time factor for one conversion."""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

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

    @contextmanager
    def part(self, name: str, of: str) -> Iterator[None]:
        """Time `name`, a part of the running stage `of`, as a stage of its own: its seconds are moved out of
        `of` (e.g. the vocoder inside the synthesizer), so stages still add up to the total."""
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[of] = self.seconds.get(of, 0.0) - spent
            self.seconds[name] = self.seconds.get(name, 0.0) + spent

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


@contextmanager
def timed_calls(module: Any, times: Optional[StageTimes], name: str, of: str) -> Iterator[None]:
    """While open, every call of `module` (a torch nn.Module; None: nothing timed) is timed as the part `name` of
    the running stage `of` (StageTimes.part), through forward hooks that are removed on exit."""
    if module is None or times is None:
        yield
        return
    running: list = []

    def begin(_module: Any, _args: Any) -> None:
        running.append(times.part(name, of=of))
        running[-1].__enter__()

    def end(_module: Any, _args: Any, _output: Any) -> None:
        if running:
            running.pop().__exit__(None, None, None)

    handles = [module.register_forward_pre_hook(begin), module.register_forward_hook(end)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
