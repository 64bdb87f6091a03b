"""How many CPU threads a conversion uses, and how waiting threads wait: one place for the web server, the CLI
and the Python API.

A demo box is rarely idle (the tunnel, a second request, the owner's browser). There, torch's OpenMP threads that
wait at a barrier for a thread the kernel has descheduled spin on their core for up to 300 000 iterations
(libgomp's default), which burns the time the busy process and our other thread need (issue #20: a 40 s
conversion with 2 threads beside a busy process took 108-132 s and 112-122 CPU-seconds, 1 thread 48-71 s and
~51). Two levers, measured in bench/notes.md ("Threads under contention"):

* `apply_wait_policy()`: OMP_WAIT_POLICY=PASSIVE (waiting threads sleep at once), set before torch is imported
  (libgomp reads it when it loads). `import svc_core` calls it; a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT
  wins.
* `pick_threads(setting, load)`: "auto" (the default) takes the CPUs this process may use minus those other
  processes keep busy (`measure_load`, a short look at /proc/stat before each job), at least 1; a number forces
  that count. The setting comes from `--threads` (CLI, web server), `threads=` (Python API) or $SVC_THREADS.

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


def pick_threads(setting: ThreadSetting, load: Load) -> int:
    """The thread count for one job. A forced count wins (capped at nothing: the user asked for it). 'auto': the
    available cores minus the ones other processes keep busy (a core counts as taken above TAKEN_SHARE of its
    time), at least 1."""
    forced = parse_threads(setting)
    if forced is not None:
        return forced
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
    own use over the window is left out: another job of ours is accounted for by OpenMP sharing our threads).
    Without /proc/stat (not Linux) the machine counts as idle."""
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


def use_threads(setting: ThreadSetting = None, load: Optional[Load] = None) -> int:
    """Choose this job's torch thread count (`pick_threads`; the load measured now when 'auto' and not given)
    and set it for the calling thread. Returns the count."""
    import torch

    setting = default_setting() if setting is None else setting
    if parse_threads(setting) is None and load is None:
        load = measure_load()
    count = pick_threads(setting, load or Load(available_cores(), 0.0))
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    if load is not None:
        log.info("threads: %d (%d CPUs, others busy %.2f)", count, load.cores, load.busy_cores)
    return count


def spinning_wanted() -> bool:
    """Whether waiting threads may spin: only when the user asked for it (OMP_WAIT_POLICY other than PASSIVE, or
    GOMP_SPINCOUNT). ONNX Runtime's intra-op pool follows the same choice (`session.intra_op.allow_spinning`)."""
    policy = os.environ.get(WAIT_POLICY_ENV, WAIT_POLICY).strip().upper()
    return policy != WAIT_POLICY or SPINCOUNT_ENV in os.environ


def apply_wait_policy() -> bool:
    """Make waiting OpenMP threads sleep instead of spin (OMP_WAIT_POLICY=PASSIVE) unless the user set
    OMP_WAIT_POLICY or GOMP_SPINCOUNT. Effective only before torch is imported (libgomp reads it once, when it
    loads): returns whether the policy now in force is PASSIVE."""
    if WAIT_POLICY_ENV in os.environ or SPINCOUNT_ENV in os.environ:
        return os.environ.get(WAIT_POLICY_ENV, "").upper() == WAIT_POLICY and SPINCOUNT_ENV not in os.environ
    if "torch" in sys.modules:
        return False  # too late for this process: libgomp has read its environment already
    os.environ[WAIT_POLICY_ENV] = WAIT_POLICY
    return True


__all__ = ["AUTO", "Load", "THREADS_ENV", "apply_wait_policy", "available_cores", "default_setting",
           "measure_load", "parse_threads", "pick_threads", "spinning_wanted", "use_threads"]
