"""The event pump shared by the page's jobs (a conversion, jobs.py; a cover, cover_job.py).

A job's worker thread puts events, tuples `(kind, *fields)`, on a queue; `pump_events` starts the worker and turns
the events into a stream of snapshots for the page: one after each event, and one every HEARTBEAT_SECONDS when
nothing happens (the elapsed/ETA tick; a closed stream can only land while the generator is paused at a yield).
The kinds every job has are handled here ("log", "stage", "rates", "done", "error"); a job adds its own kinds as
a dict kind -> handler. Closing the stream (or abandoning it) cancels the job's watch, which stops the worker.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .. import cancel

HEARTBEAT_SECONDS = 0.5  # an update at least this often: elapsed/ETA tick, and a close of the stream (which can
# only land while the generator is paused at a yield) reaches the worker within this time
SKIP = object()  # a handler's answer: no snapshot for this event (the next one carries it)


@dataclass
class PumpState:
    """What the snapshots show: the log lines so far, the stage's words and the job's progress (an eta.JobProgress
    or cover_progress.CoverProgress: `.fraction`, `.eta()`, `.at_least(f)`, `.rates`). `start` is the job's
    time.perf_counter() start (the log's and the elapsed time's zero); `last_yield` the time.monotonic() of the
    last snapshot."""

    progress: Any
    start: float
    lines: list[str] = field(default_factory=list)
    stage: str = "starting"
    last_yield: float = 0.0

    def stamp(self, text: str) -> None:
        """Add a log line stamped with the seconds since the job started."""
        self.lines.append(f"[{time.perf_counter() - self.start:7.2f} s] {text}")


Handler = Callable[[PumpState, tuple], Any]  # returns SKIP for no snapshot, anything else for one


def _log(state: PumpState, item: tuple) -> None:
    state.stamp(item[1])


def _stage(state: PumpState, item: tuple) -> None:
    state.progress.at_least(item[1])
    state.stage = item[2]


def _rates(state: PumpState, item: tuple) -> None:
    state.progress.rates.update(item[1])


COMMON_HANDLERS: dict[str, Handler] = {"log": _log, "stage": _stage, "rates": _rates}


@dataclass(frozen=True)
class JobStream:
    """One job's side of the pump: its worker thread (not started), event queue, watch, the snapshot type
    (constructed as `update(log, fraction, stage, elapsed, eta, **extra)`), the field of that type the "done"
    event's payload goes to, the words a stop leaves, and the job's own event handlers."""

    worker: threading.Thread
    items: "queue.Queue[tuple]"
    watch: cancel.Watch
    update: Callable[..., Any]
    done_field: str
    stopped: str
    handlers: dict[str, Handler] = field(default_factory=dict)


def pump_events(job: JobStream, state: PumpState) -> Iterator[Any]:
    """Start `job.worker` and yield a snapshot after each event (unless its handler answers SKIP) and every
    HEARTBEAT_SECONDS; end after the "done" or "error" snapshot. Closing the generator stops the worker."""
    handlers = {**COMMON_HANDLERS, **job.handlers}

    def snapshot(**extra: Any) -> Any:
        return job.update("\n".join(state.lines), state.progress.fraction, state.stage,
                          time.perf_counter() - state.start, state.progress.eta(), **extra)

    job.worker.start()
    try:
        state.last_yield = time.monotonic()
        while True:
            job.watch.last_read = time.monotonic()  # type: ignore[attr-defined]  # jobs._JobWatch: orphan check
            try:
                item = job.items.get(timeout=max(0.01, HEARTBEAT_SECONDS - (time.monotonic() - state.last_yield)))
            except queue.Empty:
                state.last_yield = time.monotonic()
                yield snapshot()
                continue
            kind = item[0]
            if kind == "done":
                state.progress.at_least(1.0)
                state.stage = "done"
                yield snapshot(**{job.done_field: item[1]})
                return
            if kind == "error":
                state.stamp(f"error: {item[1]}")
                state.stage = "failed"
                yield snapshot(error=item[1])
                return
            handler = handlers.get(kind)
            if handler is not None and handler(state, item) is SKIP:
                continue
            state.last_yield = time.monotonic()
            yield snapshot()
    finally:
        job.watch.cancel(job.stopped)  # no-op when finished; stops the worker when the stream was closed
