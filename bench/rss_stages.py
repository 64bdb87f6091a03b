"""Peak resident memory per pipeline stage: a sampling thread reads this process's RSS every INTERVAL_S seconds
and charges it to the StageTimes stage (or part) running then (bench only; wraps StageTimes.stage / .part as
bench.one.record_stage_cpu does). ru_maxrss gives the process's peak; this says which stage reached it."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

INTERVAL_S = 0.025  # sampling period (~40 reads/s: well under 1 % of a core)
OUTSIDE = "outside stages"  # loading, and whatever runs between stages


class RssByStage:
    """Start with `start()`, stop with `stop()` -> {stage: peak RSS MB}."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._current = [OUTSIDE]
        self.peaks: dict[str, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._undo = None

    def _sample(self) -> None:
        while not self._done.is_set():
            self._note()
            self._done.wait(INTERVAL_S)

    def _note(self) -> None:
        rss = self._process.memory_info().rss / 2**20
        name = self._current[-1]
        self.peaks[name] = max(self.peaks.get(name, 0.0), rss)

    def start(self) -> "RssByStage":
        from svc_core import timing

        stage, part = timing.StageTimes.stage, timing.StageTimes.part
        current = self._current

        @contextmanager
        def tracked(name: str, inner) -> Iterator[None]:
            current.append(name)
            try:
                with inner:
                    yield
            finally:
                self._note()
                current.pop()

        def tracked_stage(times, name):
            return tracked(name, stage(times, name))

        def tracked_part(times, name, of):
            return tracked(name, part(times, name, of))

        timing.StageTimes.stage, timing.StageTimes.part = tracked_stage, tracked_part  # type: ignore[method-assign]

        def undo() -> None:
            timing.StageTimes.stage, timing.StageTimes.part = stage, part  # type: ignore[method-assign]

        self._undo = undo
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        if self._undo is not None:
            self._undo()
        return {k: round(v, 1) for k, v in self.peaks.items()}
