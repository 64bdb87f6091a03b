"""How many CPU threads a conversion uses, and how waiting threads wait: one place for the web server, the CLI
and the Python API.

A demo box is rarely idle (the tunnel, a second request, the owner's browser). There, torch's OpenMP threads that
wait at a barrier for a thread the kernel has descheduled spin on their core for up to 300 000 iterations
(libgomp's default), which burns the time the busy process and our other thread need (issue #20: a 40 s
conversion with 2 threads beside a busy process took 108-132 s and 112-122 CPU-seconds, 1 thread 48-71 s and
~51). Two levers, measured in bench/notes.md ("Threads under contention"):

* `apply_wait_policy()`: OMP_WAIT_POLICY=PASSIVE (waiting threads sleep at once), set before torch is imported
  (libgomp reads it when it loads). `import svc_core` calls it; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT
  wins. Beside a busy loop on 2 cores: torch 0.43-0.50x the CPU-seconds of spin-wait, ONNX Runtime 0.77-0.81x.
* `pick_threads(setting, load, spinning)`: "auto" (the default) takes every CPU this process may use while
  waiting threads sleep: then a second thread costs no extra CPU-seconds beside a busy process and gets a larger
  share of the machine (measured: same CPU-seconds, shorter wall time than 1 thread). Only where threads spin (the
  user set OMP_WAIT_POLICY/GOMP_SPINCOUNT, or torch was imported before svc_core) does "auto" leave out the cores
  other processes keep busy (`measure_load`, a short look at /proc/stat before the job), at least 1. A number
  forces that count. The setting comes from `--threads` (CLI, web server), `svc_core.use_threads(...)` (Python
  API) or $SVC_THREADS (`import svc_core` makes a count there torch's default: `apply_forced_count`).

`torch.set_num_threads` sets OpenMP's count for the calling thread (and for threads started later), so a web job
setting its count in its own worker thread does not change a job running in another thread.
"""
from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Optional, Union

from .errors import OptionError

log = logging.getLogger(__name__)

AUTO = "auto"
THREADS_ENV = "SVC_THREADS"  # "auto" or a thread count; the default of every entry point's --threads
WAIT_POLICY_ENV = "OMP_WAIT_POLICY"
SPINCOUNT_ENV = "GOMP_SPINCOUNT"  # libgomp's own knob: set by the user, it replaces our policy as well
WAIT_POLICY = "PASSIVE"
LOAD_WINDOW_SECONDS = 0.2  # how long `measure_load` watches the CPUs before a job (a 10 s clip takes ~6 s)
TAKEN_SHARE = 0.5  # other processes' use of a core (0..1) above which that core counts as taken
MAX_THREADS = 256  # a forced count above this is a typo, not a machine

ThreadSetting = Union[int, str, None]
_policy_missed = False  # set when torch was imported before svc_core (its threads keep libgomp's spin-wait)


@dataclass(frozen=True)
class Load:
    """What the CPUs looked like just before a job: `cores` this process may use, `busy_cores` the CPU time per
    second used by everything else over the sampled window (0..cores; 1.0 = one core fully busy)."""

    cores: int
    busy_cores: float


def parse_threads(value: ThreadSetting) -> Optional[int]:
    """'auto' / '' / None / 0 -> None (choose per job); '2' / 2 -> 2; anything else -> OptionError."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text in ("", AUTO, "0"):
        return None
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 1 <= count <= MAX_THREADS:
        raise OptionError(f"threads must be 'auto' or a whole number from 1 to {MAX_THREADS}, not '{value}'.")
    return count


def default_setting() -> ThreadSetting:
    """The setting used when none is given: $SVC_THREADS, else 'auto'."""
    return os.environ.get(THREADS_ENV, "").strip() or AUTO


def available_cores() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)  # pragma: no cover - macOS / Windows


def pick_threads(setting: ThreadSetting, load: Load, spinning: bool = False) -> int:
    """The thread count for one job. A forced count wins (the user asked for it). 'auto': every available core
    when waiting threads sleep; when they spin, the available cores minus the ones other processes keep busy (a
    core counts as taken above TAKEN_SHARE of its time), at least 1."""
    forced = parse_threads(setting)
    if forced is not None:
        return forced
    if not spinning:
        return load.cores
    taken = int(load.busy_cores + (1.0 - TAKEN_SHARE))  # 0.4 -> 0, 0.6 -> 1, 1.5 -> 2
    return max(1, min(load.cores, load.cores - taken))


def _cpu_times() -> tuple[float, float]:
    """(busy, total) CPU jiffies of the whole machine since boot, from /proc/stat (Linux)."""
    with open("/proc/stat", encoding="ascii") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already inside user time
    return total - idle, total


def _own_cpu_seconds() -> float:
    """CPU-seconds this process has used (all its threads)."""
    t = os.times()
    return t.user + t.system


def measure_load(window: float = LOAD_WINDOW_SECONDS) -> Load:
    """Sample the machine for `window` seconds: the CPU time per second that other processes used (this process's
    own use over the window is subtracted). Without /proc/stat (not Linux) the machine counts as idle."""
    cores = available_cores()
    try:
        busy0, total0 = _cpu_times()
    except (OSError, ValueError, IndexError):  # pragma: no cover - not Linux
        return Load(cores, 0.0)
    own0, start = _own_cpu_seconds(), time.perf_counter()
    time.sleep(window)
    busy1, total1 = _cpu_times()
    own = _own_cpu_seconds() - own0
    elapsed = max(time.perf_counter() - start, 1e-3)
    all_cores = os.cpu_count() or cores
    busy_share = (busy1 - busy0) / max(total1 - total0, 1.0)  # 0..1 of every CPU of the machine
    others = max(0.0, busy_share * all_cores - own / elapsed)
    return Load(cores, round(min(float(cores), others), 3))


@dataclass(frozen=True)
class ThreadChoice:
    """A job's thread count and why: `load` is None when the count was forced."""

    count: int
    load: Optional[Load] = None
    spinning: bool = False  # torch's waiting threads spin (then 'auto' looked at the load)

    def describe(self) -> str:
        """'2 threads (auto: 2 CPUs, waiting threads sleep)', '1 thread (auto: 2 CPUs, others busy 1.02, waiting
        threads spin)' or '1 thread (forced)'."""
        noun = "thread" if self.count == 1 else "threads"
        if self.load is None:
            return f"{self.count} {noun} (forced)"
        if not self.spinning:
            return f"{self.count} {noun} (auto: {self.load.cores} CPUs, waiting threads sleep)"
        return (f"{self.count} {noun} (auto: {self.load.cores} CPUs, others busy {self.load.busy_cores:.2f}, "
                "waiting threads spin)")


def use_threads(setting: ThreadSetting = None, load: Optional[Load] = None) -> ThreadChoice:
    """Choose this job's torch thread count (`pick_threads`; for 'auto' with spinning threads the load is measured
    now unless given) and set it for the calling thread."""
    import torch

    setting = default_setting() if setting is None else setting
    auto, spinning = parse_threads(setting) is None, torch_threads_spin()
    if auto and load is None:
        load = measure_load() if spinning else Load(available_cores(), 0.0)
    choice = ThreadChoice(pick_threads(setting, load or Load(available_cores(), 0.0), spinning),
                          load if auto else None, spinning)
    if torch.get_num_threads() != choice.count:
        torch.set_num_threads(choice.count)
    log.info("threads: %s", choice.describe())
    return choice


def spinning_wanted() -> bool:
    """Whether waiting threads may spin: only when the user asked for it (OMP_WAIT_POLICY other than PASSIVE, or
    GOMP_SPINCOUNT). ONNX Runtime's intra-op pool follows the same choice (`session.intra_op.allow_spinning`)."""
    policy = os.environ.get(WAIT_POLICY_ENV, WAIT_POLICY).strip().upper()
    return policy != WAIT_POLICY or SPINCOUNT_ENV in os.environ


def torch_threads_spin() -> bool:
    """Whether torch's OpenMP threads spin-wait in this process: the user asked for it (`spinning_wanted`), or
    torch was loaded before `apply_wait_policy` could set the policy."""
    return spinning_wanted() or _policy_missed


def apply_forced_count() -> Optional[int]:
    """A count forced through $SVC_THREADS, made torch's default before it loads (OMP_NUM_THREADS, unless set), so
    the Python API honours it without a call. Returns the count, or None ('auto', unset, unusable: logged)."""
    try:
        count = parse_threads(os.environ.get(THREADS_ENV))
    except OptionError as err:
        log.warning("$%s ignored: %s", THREADS_ENV, err)
        return None
    if count is not None and "torch" not in sys.modules:
        os.environ.setdefault("OMP_NUM_THREADS", str(count))
    return count


def apply_wait_policy() -> bool:
    """Make waiting OpenMP threads sleep instead of spin (OMP_WAIT_POLICY=PASSIVE) unless the user set
    OMP_WAIT_POLICY or GOMP_SPINCOUNT. Effective only before torch is imported (libgomp reads it once, when it
    loads): returns whether the policy now in force is PASSIVE."""
    if WAIT_POLICY_ENV in os.environ or SPINCOUNT_ENV in os.environ:
        return os.environ.get(WAIT_POLICY_ENV, "").upper() == WAIT_POLICY and SPINCOUNT_ENV not in os.environ
    if "torch" in sys.modules:
        global _policy_missed
        _policy_missed = True  # too late for this process: libgomp has read its environment already
        return False
    os.environ[WAIT_POLICY_ENV] = WAIT_POLICY
    return True


__all__ = ["AUTO", "Load", "THREADS_ENV", "apply_forced_count", "apply_wait_policy", "available_cores", "default_setting",
           "measure_load", "parse_threads", "pick_threads", "spinning_wanted", "ThreadChoice", "torch_threads_spin",
           "use_threads"]
