"""bench.contended: the plan's order, the conversion's environment, the summary's medians and ratios, the table,
and the competing busy process (started, given CPU, stopped). No timing is asserted."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import contended  # noqa: E402
from bench.__main__ import contended_section  # noqa: E402


def test_plan_interleaves_modes_and_always_has_the_baseline():
    assert contended.plan(["torch", "onnx"], ["now"], 2) == [
        (0, "torch", "before"), (0, "torch", "now"), (0, "onnx", "before"), (0, "onnx", "now"),
        (1, "torch", "before"), (1, "torch", "now"), (1, "onnx", "before"), (1, "onnx", "now")]
    with pytest.raises(SystemExit, match="unknown --contended-modes"):
        contended.plan(["torch"], ["fast"], 1)


def test_child_env_drops_our_thread_settings_and_adds_the_modes():
    base = {"PATH": "/bin", "OMP_NUM_THREADS": "7", "OMP_WAIT_POLICY": "ACTIVE", "SVC_THREADS": "3"}
    assert contended.child_env(contended.MODES["now"], base) == {"PATH": "/bin"}
    before = contended.child_env(contended.MODES["before"], base)
    assert before == {"PATH": "/bin", "GOMP_SPINCOUNT": "300000", "OMP_NUM_THREADS": "2"}


def _row(backend, mode, wall, cpu, threads=2):
    return {"backend": backend, "mode": mode, "end_to_end": wall, "cpu_seconds": cpu, "rtf": wall / 10,
            "peak_rss_mb": 1000.0, "threads": threads, "loadavg_before": 3.0, "busy_before": 100.0}


def test_summary_takes_medians_and_ratios_against_the_same_backends_baseline():
    rows = [_row("torch", "before", 50, 28), _row("torch", "now", 40, 14, 1), _row("torch", "before", 60, 30),
            _row("torch", "now", 30, 15, 2), _row("torch", "before", 55, 26), _row("torch", "now", 35, 13, 1),
            _row("onnx", "before", 40, 18), _row("onnx", "now", 20, 9)]
    by = {(s["backend"], s["mode"]): s for s in contended.summary(rows)}
    now = by[("torch", "now")]
    assert (now["end_to_end"], now["cpu_seconds"], now["runs"], now["threads"]) == (35, 14, 3, [1, 2])
    assert now["end_to_end_ratio"] == pytest.approx(35 / 55) and now["cpu_seconds_ratio"] == pytest.approx(14 / 28)
    assert by[("onnx", "now")]["cpu_seconds_ratio"] == pytest.approx(0.5)
    assert by[("torch", "before")]["end_to_end_ratio"] == 1.0
    text = "\n".join(contended_section({"stamp": "now", "machine": "2 CPUs", "command": "python -m bench",
                                        "busy_processes": 1, "busy_cpu_seconds": 99.0, "summary": list(by.values())}))
    assert "| torch | auto threads, passive wait (the new default) | 1,2 | 3 | 35.0 (0.64x) | 14.0 (0.50x) |" in text
    assert "| onnx | 2 threads, spin-wait (the old default) | 2 | 1 | 40.0 | 18.0 |" in text
    assert "got 99 CPU-seconds" in text


def test_the_busy_process_runs_until_stopped():
    procs = contended.start_busy(1)
    try:
        proc = psutil.Process(procs[0].pid)
        deadline = time.monotonic() + 30.0  # a loaded machine may take a while to schedule it
        while sum(proc.cpu_times()[:2]) < 0.05 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procs[0].poll() is None
    finally:
        used = contended.stop_busy(procs)
    assert used > 0.0 and procs[0].poll() is not None
