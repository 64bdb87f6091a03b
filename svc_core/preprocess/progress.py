"""Progress lines with an ETA for long preprocessing stages."""
from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

ProgressFn = Callable[[str, int, int, str], None]  # (stage, done, total, item just finished)


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class EtaPrinter:
    """Callable progress sink: prints '[stage  3/40   7%] ETA 0:42  item' to `stream`.

    The ETA assumes the remaining items take as long on average as the finished ones of the same stage.
    """

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self._stage = ""
        self._start = 0.0

    def __call__(self, stage: str, done: int, total: int, item: str) -> None:
        now = self.clock()
        if stage != self._stage:
            self._stage, self._start = stage, now
        elapsed = now - self._start
        eta = format_seconds(elapsed / done * (total - done)) if done else "?"
        pct = done / total if total else 1.0
        width = len(str(total))
        print(f"[{stage} {done:>{width}}/{total} {pct:4.0%}] ETA {eta}  {item}", file=self.stream, flush=True)
