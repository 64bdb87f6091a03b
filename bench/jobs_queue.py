"""`python -m bench.jobs_queue`: jobs per minute for short clips, embedded pool vs local Dramatiq workers, and the
queue's overhead per job (issue #25's targets: submit -> start under 50 ms for the embedded pool, under 200 ms
through the broker, median and p95 on this machine).

Modes (each in a fresh child process, `--child MODE`, so its peak RSS is its own):
  embedded  JobService + EmbeddedPool, 1 thread, records in a folder (FileJobStore): the default server
  broker1   JobService + BrokerQueue, a real redis-server, 1 `python -m svc_core worker` process
  broker2   the same with 2 worker processes
Every job converts a short synthetic sung clip (--clip-seconds) with the starter voice (voices/starter), torch
threads 1 per job, one job at a time per worker. Per mode:
  1. warm-up: one job per worker (loads the voice; not counted);
  2. overhead: --overhead-jobs jobs one after another on an idle queue; submit -> started_at (the record's claim
     time, same clock) per job, median and p95 (includes storing the input file and the record, and the
     broker's delivery);
  3. throughput: --jobs jobs submitted at once; jobs per minute from the first submit to the last finished_at.
Printed per mode: the job stages' median seconds (the record's timings), threads, peak RSS of the processes
running jobs (the child for embedded, each worker for broker), and the ratio to the embedded row. Before each mode
the driver measures system-wide CPU use over 3 s (the idle check; above BUSY_LIMIT % the row says "NOT idle").
Writes bench/last_jobs_queue.json (--json to write elsewhere, e.g. for a quick smoke run).

    python -m bench.jobs_queue [--jobs 40] [--overhead-jobs 20] [--clip-seconds 2] [--modes embedded,broker1,broker2]
    python -m bench.jobs_queue --jobs 4 --overhead-jobs 3 --json /tmp/jobs_smoke.json   (smoke run)
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = Path(__file__).resolve().parent / "last_jobs_queue.json"
MODES = {"embedded": 0, "broker1": 1, "broker2": 2}  # mode -> worker processes (0: in-process pool)
BASELINE = "embedded"
BUSY_LIMIT = 10.0  # % system-wide CPU over the 3 s before a mode above which it is marked "NOT idle"
RSS_INTERVAL_S = 0.05  # peak-RSS sampling period
JOB_GUARD_S = 600.0  # a guard against a hang, not a measurement
STAGES = ("load voice", "f0", "encoder", "synthesizer", "write", "queue_wait", "run", "total")
SPEAKER = ""  # "": the voice's first speaker
SAMPLE_RATE = 44100
CLIENTS = 10  # the throughput batch is submitted by this many callers
THREAD_ENV = {"SVC_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- measuring
class PeakRss(threading.Thread):
    """Samples the RSS and thread count of some processes (psutil) until stopped: per-PID peaks."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        import psutil

        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.rss = {pid: 0 for pid in pids}
        self.threads = {pid: 0 for pid in pids}
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.wait(RSS_INTERVAL_S):
            for pid, proc in self.procs.items():
                try:
                    self.rss[pid] = max(self.rss[pid], proc.memory_info().rss)
                    self.threads[pid] = max(self.threads[pid], proc.num_threads())
                except Exception:  # noqa: BLE001 - the process ended
                    continue

    def stop(self) -> dict:
        self.halt.set()
        self.join()
        return {"peak_rss_mb": {str(p): round(v / 2**20, 1) for p, v in self.rss.items()},
                "peak_threads": {str(p): n for p, n in self.threads.items()}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def write_clips(folder: Path, count: int, seconds: float) -> list[Path]:
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "tests"))
    from audio_factories import sung_phrase

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip{i}.wav"
        sf.write(path, sung_phrase(seconds, SAMPLE_RATE, seed=i), SAMPLE_RATE)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- one mode (child process)
def _embedded_service(work: Path):
    from svc_core.jobs.embedded import EmbeddedPool
    from svc_core.jobs.runner import make_worker_env
    from svc_core.jobs.service import JobService
    from svc_core.jobs.store import FileJobStore

    (work / "models").mkdir(parents=True, exist_ok=True)
    env = make_worker_env(work / "models", work, FileJobStore(work / "jobs"), str(work / "blobs"), 1)
    pool = EmbeddedPool(env, 1)
    pool.start()
    return JobService(env.store, env.blobs, pool, env.jobs.library), [os.getpid()], lambda: None


def _broker_service(work: Path, workers: int):
    sys.path.insert(0, str(ROOT / "tests"))
    from redis_support import RedisServer
    from worker_stack import start_stack

    stack = start_stack(work, workers=workers)
    assert isinstance(stack.redis, RedisServer)
    return stack.service, [w.pid for w in stack.workers], stack.stop


def run_mode(mode: str, jobs: int, overhead_jobs: int, clip_seconds: float, work: Path) -> dict:
    workers = MODES[mode]
    service, pids, stop = (_embedded_service(work) if workers == 0 else _broker_service(work, workers))
    meter = PeakRss(pids)
    meter.start()
    params = {"model": "starter", "speaker": SPEAKER}
    warmups = max(1, workers)
    clips = write_clips(work / "clips", warmups + overhead_jobs + jobs, clip_seconds)  # all different: no cached
    # f0 / units from an earlier job of the same clip
    try:
        warm = [service.submit("convert", "bench", params, {"audio": clips[i]}) for i in range(warmups)]
        for record in warm:
            service.wait(record.id, JOB_GUARD_S)

        overhead_ms = []
        for i in range(overhead_jobs):  # one at a time on an idle queue
            submitted = time.time()
            clip = clips[warmups + i]
            record = service.wait(service.submit("convert", "bench", params, {"audio": clip}).id, JOB_GUARD_S)
            overhead_ms.append((record.started_at - submitted) * 1000)

        first_submit = time.time()
        # from CLIENTS callers, as a busy server sees them (one caller may queue at most 20: svc_core.jobs.limits)
        batch = [service.submit("convert", f"bench-{i % CLIENTS}", params,
                                {"audio": clips[warmups + overhead_jobs + i]})
                 for i in range(jobs)]
        submit_seconds = time.time() - first_submit
        records = [service.wait(r.id, JOB_GUARD_S) for r in batch]
    finally:
        peaks = meter.stop()
        stop()
    failed = [r.status for r in records if r.status != "done"]
    elapsed = max(r.finished_at for r in records) - first_submit if records else float("nan")
    stages = {s: round(statistics.median(r.timings.get(s, 0.0) for r in records), 4) for s in STAGES} \
        if records else {}
    return {
        "mode": mode, "worker_processes": workers, "jobs_at_once_per_worker": 1, "torch_threads_per_job": 1,
        "jobs": jobs, "failed": failed, "clip_seconds": clip_seconds,
        "jobs_per_minute": round(jobs / elapsed * 60, 2) if records else None,
        "batch_seconds": round(elapsed, 3), "submit_seconds_all": round(submit_seconds, 3),
        "overhead_ms": {"median": round(statistics.median(overhead_ms), 1) if overhead_ms else None,
                        "p95": round(percentile(overhead_ms, 95), 1) if overhead_ms else None,
                        "samples": [round(v, 1) for v in overhead_ms]},
        "stage_median_seconds": stages, **peaks,
    }


# ----------------------------------------------------------------------------- driver
def machine() -> str:
    from bench.__main__ import machine as bench_machine

    return bench_machine()


def child(mode: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, "-m", "bench.jobs_queue", "--child", mode, "--jobs", str(args.jobs), "--overhead-jobs",
           str(args.overhead_jobs), "--clip-seconds", str(args.clip_seconds), "--workdir", args.workdir]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, **THREAD_ENV))
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(result: dict) -> list[str]:
    rows = result["rows"]
    base = next((r for r in rows if r["mode"] == BASELINE), None)
    lines = [f"machine: {result['machine']}", "",
             "| mode | workers | jobs/min | x embedded | overhead median ms | p95 ms | x embedded (median) | "
             + " | ".join(STAGES) + " | peak RSS MB (per process) | peak threads | idle before |",
             "|" + "---|" * (len(STAGES) + 9)]
    for r in rows:
        ratio = f"{r['jobs_per_minute'] / base['jobs_per_minute']:.2f}" if base and base["jobs_per_minute"] else "-"
        o, bo = r["overhead_ms"], (base or {}).get("overhead_ms", {})
        oratio = f"{o['median'] / bo['median']:.2f}" if o.get("median") and bo.get("median") else "-"
        idle = "yes" if r["busy_before_percent"] <= BUSY_LIMIT else f"NOT idle ({r['busy_before_percent']:.0f} %)"
        lines.append(f"| {r['mode']} | {r['worker_processes'] or 'in-process'} | {r['jobs_per_minute']} | {ratio} | "
                     f"{o['median']} | {o['p95']} | {oratio} | "
                     + " | ".join(f"{r['stage_median_seconds'].get(s, 0):.3f}" for s in STAGES)
                     + f" | {', '.join(str(v) for v in r['peak_rss_mb'].values())} | "
                     f"{', '.join(str(v) for v in r['peak_threads'].values())} | {idle} |")
    lines.append("")
    lines.append(f"{result['jobs']} jobs of {result['clip_seconds']} s clips per mode (starter voice, torch threads 1 "
                 f"per job, 1 job at a time per worker); overhead: submit -> started_at over {result['overhead_jobs']} "
                 "jobs run one after another. Failed jobs: "
                 + (", ".join(f"{r['mode']}: {len(r['failed'])}" for r in rows if r["failed"]) or "none") + ".")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.jobs_queue", description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=40, help="jobs submitted at once per mode (throughput)")
    p.add_argument("--overhead-jobs", type=int, default=20, help="jobs run one after another (overhead)")
    p.add_argument("--clip-seconds", type=float, default=2.0)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "svc-bench-jobs"))
    p.add_argument("--json", default=str(JSON_PATH))
    p.add_argument("--render", default=None, metavar="JSON", help="print the table of a saved run")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.render:
        print("\n".join(render(json.loads(Path(args.render).read_text()))))
        return 0
    if args.child:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{args.child}-", dir=Path(args.workdir)))
        print(json.dumps(run_mode(args.child, args.jobs, args.overhead_jobs, args.clip_seconds, work)), flush=True)
        return 0
    import psutil

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown --modes {unknown}; choose from {', '.join(MODES)}")
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": machine(), "jobs": args.jobs, "overhead_jobs": args.overhead_jobs,
              "clip_seconds": args.clip_seconds, "rows": []}
    print(f"machine: {result['machine']}", flush=True)
    for mode in modes:
        busy = float(psutil.cpu_percent(interval=3.0))
        print(f"{mode}: CPU busy before {busy:.0f} %{'' if busy <= BUSY_LIMIT else ' (machine NOT idle)'}",
              flush=True)
        row = child(mode, args)
        row["busy_before_percent"] = round(busy, 1)
        row["load1_before"] = round(os.getloadavg()[0], 2)
        result["rows"].append(row)
        print(f"{mode}: {row['jobs_per_minute']} jobs/min, overhead median {row['overhead_ms']['median']} ms, "
              f"p95 {row['overhead_ms']['p95']} ms, stages {row['stage_median_seconds']}", flush=True)
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    print("\n".join(render(result)))
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
