"""Stopping a running conversion within a fraction of a second, and reporting how far it is inside a piece.

A front end that may want to stop a conversion (the web demo's worker thread) runs it inside
`watching(watch)`. The engine calls `checkpoint(stage, fraction)` at points where stopping is safe (between
pieces, between f0 / encoder / synthesizer, per vocoder chunk) and `cancel_hooks(module)` adds the same check
before every submodule call of a torch model (one vocoder chunk takes ~1 s on 2 threads; its layers a few tens of
ms). A check reads one thread-local and one Event, and changes no number the engine computes. Without a watch
(the CLI, the Python API) every call is a no-op.

`checkpoint` raises `ConversionCancelled` (an SvcError) with the reason given to `Watch.cancel`, or the one its
`deadline` (time.monotonic() seconds) sets; the engine lets it propagate, so `finally` blocks release the voice.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, Optional

from .errors import SvcError


class ConversionCancelled(SvcError):
    """The conversion was stopped: by the person who started it, or because it ran out of its time budget."""


class Watch:
    """Cancellation flag, optional deadline and progress sink of one conversion (shared with other threads)."""

    def __init__(self, deadline: Optional[float] = None, deadline_reason: str = "") -> None:
        self._event = threading.Event()
        self.reason = ""
        self.deadline = deadline  # time.monotonic() seconds; None: no time limit
        self.deadline_reason = deadline_reason

    def cancel(self, reason: str) -> None:
        """Ask the conversion to stop at its next checkpoint (callable from any thread; the first reason wins)."""
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking when cancelled; True when cancelled."""
        return self._event.wait(seconds)

    def check(self) -> None:
        """Raise ConversionCancelled if cancelled or past the deadline."""
        if self.deadline is not None and not self._event.is_set() and time.monotonic() > self.deadline:
            self.cancel(self.deadline_reason or "The conversion ran out of time.")
        if self._event.is_set():
            raise ConversionCancelled(self.reason)

    # progress sinks, for subclasses (called on the converting thread)
    def on_plan(self, pieces: list[tuple[float, bool]]) -> None:
        """The conversion's pieces, in order: (seconds of input, silent)."""

    def on_step(self, piece: int, stage: str, fraction: float) -> None:
        """Piece `piece` (index into the plan) is `fraction` (0..1) through `stage`: f0, encoder, synthesizer (the
        model before its vocoder), vocoder (reported per chunk)."""


_local = threading.local()


def current() -> Optional[Watch]:
    """The watch of the conversion running on this thread, or None."""
    return getattr(_local, "watch", None)


@contextmanager
def watching(watch: Watch) -> Iterator[Watch]:
    """Run the block with `watch` as this thread's watch (nested watches restore the outer one)."""
    previous = current()
    _local.watch = watch
    try:
        yield watch
    finally:
        _local.watch = previous


def checkpoint(stage: Optional[str] = None, fraction: float = 0.0) -> None:
    """A safe place to stop; with a stage, also how far the current piece is through it."""
    watch = current()
    if watch is None:
        return
    watch.check()
    if stage is not None:
        watch.on_step(getattr(_local, "piece", 0), stage, fraction)


def plan(pieces: list[tuple[float, bool]]) -> None:
    """Tell the watch (if any) which pieces the conversion will convert: (seconds, silent) each."""
    watch = current()
    if watch is not None:
        watch.on_plan(pieces)


def begin_piece(index: int) -> None:
    """Later checkpoints on this thread are about piece `index`; checks for cancellation."""
    _local.piece = index
    checkpoint()


@contextmanager
def cancel_hooks(module: Any, stage: Optional[str] = None, count_calls_of: Any = None,
                 expected_calls: int = 0) -> Iterator[None]:
    """While open, every call of a submodule of `module` (a torch nn.Module; None or no watch: nothing) is a
    checkpoint. With `count_calls_of` (a submodule called once per step, e.g. the vocoder's first convolution,
    called once per chunk) and `expected_calls`, each of its calls also reports `stage` progress calls/expected.
    Forward pre-hooks only read the watch: outputs are unchanged. Safe for modules shared between threads: each
    check looks at the calling thread's own watch."""
    if current() is None or torch_module(module) is None:
        yield
        return
    calls, owner = [0], threading.get_ident()

    def check(_module: Any, _args: Any) -> None:
        checkpoint()

    def count(_module: Any, _args: Any) -> None:
        if threading.get_ident() != owner:  # the same module run by another thread's conversion
            return
        checkpoint(stage, min(1.0, calls[0] / expected_calls))
        calls[0] += 1

    module = torch_module(module)
    handles = [m.register_forward_pre_hook(check) for m in module.modules()] if module is not None else []
    if count_calls_of is not None and stage is not None and expected_calls > 0:
        handles.append(count_calls_of.register_forward_pre_hook(count))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def torch_module(obj: Any) -> Any:
    """`obj` if it is a torch nn.Module, else its `.model` if that is one (encoders, f0 predictors), else None."""
    for candidate in (obj, getattr(obj, "model", None)):
        if candidate is not None and callable(getattr(candidate, "register_forward_pre_hook", None)):
            return candidate
    return None
