"""What one person may ask of the shared converter: a time budget per job, and a fair share of the slots.

`JobLimits` holds the server's settings (app.py options). `JobLimits.budget(audio_seconds)` is a job's time budget:
a fixed allowance for loading plus N seconds per second of audio, never above the server-wide cap. `JobSlots` is the
conversion queue: `concurrency` slots, `max_waiting` places to wait, at most `per_client` jobs (running + waiting)
per client, and a freed slot goes to the waiting job whose client has the fewest running (then the oldest), so one
client cannot hold every slot or fill the queue. `client_key(request)` names the client of a Gradio request.
"""
from __future__ import annotations

import ipaddress
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..cancel import ConversionCancelled, Watch
from ..errors import SvcError

DEFAULT_SECONDS_PER_AUDIO_SECOND = 10.0  # a conversion on a 2-core box runs at 1-5x real time (5x at load 8)
DEFAULT_ALLOWANCE_SECONDS = 120.0  # loading a voice (first use), exporting it to ONNX, making its int8 vocoder
DEFAULT_MAX_JOB_SECONDS = 900.0  # no job holds a slot longer than 15 minutes
DEFAULT_JOBS_PER_CLIENT = 2  # running + waiting: one converting, one queued behind it
WAIT_POLL_SECONDS = 0.25  # a waiting job re-checks its cancel flag this often


class JobLimitError(SvcError):
    """A request refused by the server's limits (fair share, full queue)."""


@dataclass(frozen=True)
class Budget:
    """A job's time budget in seconds and how it was reached (for the log and the cancel message)."""

    seconds: float
    explanation: str


@dataclass(frozen=True)
class JobLimits:
    """The server's limits on conversions (see the module docstring)."""

    seconds_per_audio_second: float = DEFAULT_SECONDS_PER_AUDIO_SECOND
    allowance_seconds: float = DEFAULT_ALLOWANCE_SECONDS
    max_job_seconds: float = DEFAULT_MAX_JOB_SECONDS  # 0: no cap
    concurrency: int = 1  # conversions running at once
    max_waiting: int = 16  # conversions waiting for a slot
    per_client: int = DEFAULT_JOBS_PER_CLIENT  # 0: no per-client limit

    def budget(self, audio_seconds: float, cost: float = 1.0, why: str = "") -> Budget:
        """The time budget of a job converting `audio_seconds`; `cost` (>= 1) scales the per-second part for work
        beyond a plain so-vits conversion (`why` names it: "diffusion", ...; job_io.cost_factor)."""
        per_second = self.seconds_per_audio_second * max(1.0, cost)
        scaled = self.allowance_seconds + per_second * audio_seconds
        times = f" x {cost:.3g} for {why}" if cost > 1 and why else (f" x {cost:.3g}" if cost > 1 else "")
        how = (f"{self.allowance_seconds:g} s + {self.seconds_per_audio_second:g} s{times} per second of audio for "
               f"this {audio_seconds:.1f} s clip")
        if 0 < self.max_job_seconds < scaled:
            return Budget(self.max_job_seconds, f"the server's cap; {how} would be {scaled:.0f} s")
        return Budget(scaled, how)

    @property
    def handler_limit(self) -> int:
        """Gradio's concurrency limit for the convert event: every admitted job's handler runs at once (they wait
        in JobSlots, which counts them per client and shows their place), plus one to turn the next away at once
        with JobSlots' message; Gradio's own queue only buffers bursts beyond that."""
        return self.concurrency + self.max_waiting + 1


@dataclass
class Ticket:
    """One job's place in JobSlots."""

    client: str
    order: int
    watch: Optional[Watch] = None  # the job's cancel flag (cancel_client stops it)
    running: bool = False
    since: float = field(default_factory=time.monotonic)


class JobSlots:
    """Conversion slots shared fairly between clients (thread-safe). `admit` refuses at once when the client has
    too many jobs or the queue is full; `acquire` waits for a slot; `release` frees it (always, in a finally)."""

    def __init__(self, limits: JobLimits) -> None:
        self.limits = limits
        self._cond = threading.Condition()
        self._tickets: list[Ticket] = []
        self._order = itertools.count()

    # --------------------------------------------------------------- queries (for the page and tests)
    @property
    def running(self) -> int:
        with self._cond:
            return sum(t.running for t in self._tickets)

    @property
    def waiting(self) -> int:
        with self._cond:
            return sum(not t.running for t in self._tickets)

    def jobs_of(self, client: str) -> int:
        with self._cond:
            return sum(t.client == client for t in self._tickets)

    # --------------------------------------------------------------- admission, waiting, release
    def admit(self, client: str, watch: Optional[Watch] = None) -> Ticket:
        """A place for a job of `client` (JobLimitError when the client has its share or the queue is full)."""
        limits = self.limits
        with self._cond:
            mine = [t for t in self._tickets if t.client == client]
            if limits.per_client and len(mine) >= limits.per_client:
                running = sum(t.running for t in mine)
                raise JobLimitError(
                    f"You already have {len(mine)} conversion{'s' if len(mine) != 1 else ''} running or queued "
                    f"({running} running, {len(mine) - running} waiting); the limit is {limits.per_client} per "
                    "person so everyone gets a turn. Wait for one to finish, or stop it.")
            waiting = sum(not t.running for t in self._tickets)
            free = limits.concurrency - sum(t.running for t in self._tickets)
            if free <= 0 and waiting >= limits.max_waiting:
                raise JobLimitError(f"The queue is full: {waiting} conversion{'s are' if waiting != 1 else ' is'} "
                                    "already waiting for a free slot. Try again in a few minutes.")
            ticket = Ticket(client, next(self._order), watch)
            self._tickets.append(ticket)
            return ticket

    def _next_in_line(self) -> Optional[Ticket]:
        """The waiting ticket that gets the next free slot: fewest running jobs of its client, then oldest."""
        running: dict[str, int] = {}
        for t in self._tickets:
            running[t.client] = running.get(t.client, 0) + t.running
        waiting = [t for t in self._tickets if not t.running]
        return min(waiting, key=lambda t: (running[t.client], t.order), default=None)

    def ahead_of(self, ticket: Ticket) -> int:
        """How many waiting jobs would get a slot before `ticket` (0 when it is next)."""
        with self._cond:
            return self._ahead_locked(ticket)

    def acquire(self, ticket: Ticket, watch: Watch, on_wait: Callable[[int], None] | None = None) -> float:
        """Block until `ticket` has a slot -> seconds waited. Raises ConversionCancelled (and gives up the place)
        when `watch` is cancelled meanwhile. on_wait(ahead) is called when the number ahead changes."""
        start, last_ahead = time.monotonic(), None
        with self._cond:
            try:
                while True:
                    if watch.cancelled:
                        raise ConversionCancelled(watch.reason)
                    free = self.limits.concurrency - sum(t.running for t in self._tickets)
                    if free > 0 and self._next_in_line() is ticket:
                        ticket.running, ticket.since = True, time.monotonic()
                        self._cond.notify_all()  # another slot may still be free for the next in line
                        return ticket.since - start
                    if on_wait is not None:
                        ahead = self._ahead_locked(ticket)
                        if ahead != last_ahead:
                            last_ahead = ahead
                            on_wait(ahead)
                    self._cond.wait(WAIT_POLL_SECONDS)
            except BaseException:
                self._remove_locked(ticket)
                raise

    def _ahead_locked(self, ticket: Ticket) -> int:
        running: dict[str, int] = {}
        for t in self._tickets:
            running[t.client] = running.get(t.client, 0) + t.running
        mine = (running.get(ticket.client, 0), ticket.order)
        return sum(1 for t in self._tickets if not t.running and t is not ticket
                   and (running[t.client], t.order) < mine)

    def _remove_locked(self, ticket: Ticket) -> None:
        if ticket in self._tickets:
            self._tickets.remove(ticket)
            self._cond.notify_all()

    def cancel_client(self, client: str, reason: str) -> int:
        """Ask every job of `client` (running or waiting) to stop -> how many."""
        with self._cond:
            watches = [t.watch for t in self._tickets if t.client == client and t.watch is not None]
        for watch in watches:
            watch.cancel(reason)
        return len(watches)

    def release(self, ticket: Ticket) -> None:
        """Give up the ticket's slot or place (idempotent)."""
        with self._cond:
            self._remove_locked(ticket)


# --------------------------------------------------------------------------- who is asking
def client_key(request: Any) -> str:
    """A Gradio request (gr.Request) -> the name its fair share is counted under: the logged-in user; else the
    address it came from, or, for a request that came through a proxy or tunnel on this machine (loopback), the
    first address of X-Forwarded-For, or failing that its browser session (a tunnel makes everyone loopback).
    None (a call from Python) -> "local"."""
    if request is None:
        return "local"
    user = getattr(request, "username", None)
    if user:
        return f"user:{user}"
    client = getattr(request, "client", None)
    host = str(getattr(client, "host", "") or "")
    if host and not _is_loopback(host):
        return f"ip:{host}"
    headers = getattr(request, "headers", None) or {}
    forwarded = str(headers.get("x-forwarded-for", "") or "").split(",")[0].strip()
    if forwarded:
        return f"ip:{forwarded}"
    session = getattr(request, "session_hash", None)
    return f"session:{session}" if session else f"ip:{host or 'unknown'}"


def _is_loopback(host: str) -> bool:
    if host in ("localhost", "testclient"):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False
