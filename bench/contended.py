"""`python -m bench --contended`: one conversion per backend beside a competing busy process, the old thread
behaviour against the new one, each in a fresh process (bench.one).

A demo box is rarely idle (issue #20, item 5). Here a pure-Python loop keeps one core busy for the whole run
(`BUSY_CODE`, not pinned: the kernel places it); each conversion then runs in its own process with one of the
`MODES`: "before" is 2 threads with libgomp's default spin-wait restored explicitly (GOMP_SPINCOUNT=300000, which
also makes ONNX Runtime spin, svc_core.threads.spinning_wanted), "now" is what the engine does by default
(threads chosen from the load, waiting threads sleep). Reported per row: wall seconds (loading + converting),
CPU-seconds of the conversion's process (all threads, user + system; less sensitive than wall time to whatever
else runs), RTF, peak RSS and the thread count, with ratios against "before" of the same backend and repeat.
Rows run interleaved (before, now, before, now, ...) so a slow minute of the machine hits both.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUSY_CODE = "while True:\n    pass\n"  # one core fully busy, one thread, no memory
SETTLE_SECONDS = 1.0  # let the busy process reach full speed before the first row
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "SVC_THREADS")


@dataclass(frozen=True)
class Mode:
    """A thread behaviour: `threads` for bench.one (a count or "auto") and extra environment."""

    key: str
    label: str
    threads: str
    env: dict = field(default_factory=dict)


MODES = {
    "before": Mode("before", "2 threads, spin-wait (the old default)", "2",
                   {"GOMP_SPINCOUNT": "300000", "OMP_NUM_THREADS": "2"}),  # libgomp's default spin count
    "passive2": Mode("passive2", "2 threads, passive wait", "2", {"OMP_NUM_THREADS": "2"}),
    "one": Mode("one", "1 thread, passive wait", "1", {"OMP_NUM_THREADS": "1"}),
    "now": Mode("now", "auto threads, passive wait (the new default)", "auto"),
}
BASELINE = "before"


def child_env(mode: Mode, base: dict | None = None) -> dict:
    """The conversion process's environment: ours without any thread setting, plus the mode's."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in THREAD_ENV}
    env.update(mode.env)
    return env


def plan(backends: list[str], modes: list[str], repeats: int) -> list[tuple[int, str, str]]:
    """(repeat, backend, mode) in running order: per repeat and backend, every mode in turn (interleaved)."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise SystemExit(f"unknown --contended-modes {unknown}; choose from {', '.join(MODES)}")
    if BASELINE not in modes:
        modes = [BASELINE] + modes
    return [(r, b, m) for r in range(repeats) for b in backends for m in modes]


def start_busy(count: int) -> list[subprocess.Popen]:
    """`count` competing processes, each keeping one core busy until stopped."""
    return [subprocess.Popen([sys.executable, "-c", BUSY_CODE], stdin=subprocess.DEVNULL) for _ in range(count)]


def stop_busy(procs: list[subprocess.Popen]) -> float:
    """Stop the competitors; the CPU-seconds they got (how much of the machine the conversions left them)."""
    import psutil

    used = 0.0
    for p in procs:
        try:
            t = psutil.Process(p.pid).cpu_times()
            used += t.user + t.system
        except psutil.Error:
            pass
        p.terminate()
    for p in procs:
        p.wait()
    return used


def run_row(backend: str, mode: Mode, seconds: float, f0: str, workdir: str, model: str) -> dict:
    """One conversion in a fresh process (bench.one --no-peak) -> its JSON row plus the mode and wall time."""
    cmd = [sys.executable, "-m", "bench.one", "--backend", backend, "--threads", mode.threads, "--f0", f0,
           "--seconds", str(seconds), "--workdir", workdir, "--model", model, "--no-peak"]
    start = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=child_env(mode), cwd=ROOT)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(mode=mode.key, process_wall=time.perf_counter() - start)
    return row


def summary(rows: list[dict]) -> list[dict]:
    """Per (backend, mode), medians over the repeats, each with ratios against the baseline mode of the same
    backend (wall = loading + converting, CPU-seconds of the whole conversion process)."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["backend"], r["mode"]), []).append(r)
    out = []
    for (backend, mode), rs in groups.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("end_to_end", "cpu_seconds", "rtf", "peak_rss_mb")}
        out.append({"backend": backend, "mode": mode, "runs": len(rs), **med,
                    "threads": sorted({r["threads"] for r in rs}),
                    "load": [round(r.get("loadavg_before", float("nan")), 1) for r in rs],
                    "busy": [round(r.get("busy_before", float("nan"))) for r in rs],
                    "walls": [round(r["end_to_end"], 1) for r in rs],
                    "cpus": [round(r["cpu_seconds"], 1) for r in rs]})
    base = {s["backend"]: s for s in out if s["mode"] == BASELINE}
    for s in out:
        b = base.get(s["backend"])
        for k in ("end_to_end", "cpu_seconds", "rtf", "peak_rss_mb"):
            s[k + "_ratio"] = s[k] / b[k] if b and b[k] else None
    return out


def table(summaries: list[dict]) -> list[str]:
    """Markdown: one line per backend and mode (medians; the single runs and the machine's load in brackets)."""
    def cell(s: dict, key: str, fmt: str) -> str:
        ratio = s.get(key + "_ratio")
        return fmt.format(s[key]) + (f" ({ratio:.2f}x)" if ratio is not None and s["mode"] != BASELINE else "")

    lines = ["| backend | threads behaviour | threads | runs | wall s | CPU-seconds | RTF | peak RSS MB "
             "| single runs: wall / CPU s | load avg / CPU busy % before |", "|" + "---|" * 10]
    for s in summaries:
        runs = ", ".join(f"{w} / {c}" for w, c in zip(s["walls"], s["cpus"]))
        lines.append(f"| {s['backend']} | {MODES[s['mode']].label} | {','.join(map(str, s['threads']))} | {s['runs']} "
                     f"| {cell(s, 'end_to_end', '{:.1f}')} | {cell(s, 'cpu_seconds', '{:.1f}')} "
                     f"| {cell(s, 'rtf', '{:.2f}')} | {cell(s, 'peak_rss_mb', '{:.0f}')} | {runs} "
                     f"| {', '.join(f'{a} / {b}' for a, b in zip(s['load'], s['busy']))} |")
    return lines


def measure(backends: list[str], modes: list[str], repeats: int, seconds: float, f0: str, workdir: str,
            model: str, busy: int) -> dict:
    """Start the competitors, run the plan, stop them -> {rows, summary, busy_processes, busy_cpu_seconds}."""
    import psutil

    from .models import build

    print(f"building / reusing the {model} models in", workdir, flush=True)
    build(workdir, variant=model)
    procs = start_busy(busy)
    rows: list[dict] = []
    try:
        time.sleep(SETTLE_SECONDS)
        for repeat, backend, mode in plan(backends, modes, repeats):
            load, cpu = os.getloadavg()[0], psutil.cpu_percent(interval=1.0)
            print(f"-> [{repeat + 1}/{repeats}] {backend}: {MODES[mode].label}; load avg {load:.2f}, CPU busy "
                  f"{cpu:.0f}% over 1 s (the competitor included)", flush=True)
            r = run_row(backend, MODES[mode], seconds, f0, workdir, model)
            r.update(loadavg_before=load, busy_before=cpu)
            rows.append(r)
            print(f"   {r['threads']} threads: wall {r['end_to_end']:.1f} s, CPU {r['cpu_seconds']:.1f} s, "
                  f"RTF {r['rtf']:.2f}, peak RSS {r['peak_rss_mb']:.0f} MB", flush=True)
    finally:
        busy_cpu = stop_busy(procs)
    return {"rows": rows, "summary": summary(rows), "busy_processes": busy, "busy_cpu_seconds": busy_cpu}
