"""`python -m bench.rvc`: RVC voices (issue #22's speed target). A full-size random-weight RVC v2 40k voice in RVC's
layout, full-size HuBERT base, RMVPE and an RVC-layout faiss index (bench.rvc_models) convert the sung 40 s clip,
once per backend / f0 method / thread count, each row in a fresh process (bench.rvc_one), beside the baseline
"torch eager, RVC's procedure" (bench.rvc_reference) of the same run; then longer inputs through
`Svc.convert_file` for memory. Prints the markdown section and saves the raw figures (bench/last_rvc.json).

    python -m bench.rvc [--seconds 40] [--long-seconds 160,600] [--threads 2,1] [--f0 pm,rmvpe]
                        [--backends rvc-reference,torch] [--extra-backends torch-fast,torch-bf16]
                        [--long-backends torch] [--workdir /tmp/svc-bench-rvc] [--no-count | --count-only]
    python -m bench.rvc --render bench/last_rvc.json   (print the section of a saved run)

The idle check before each row is the system-wide CPU use over 3 s (bench.__main__._busy_percent); above 10 % the
row is marked. Outputs: every in-memory row's audio is compared with the baseline's of the same f0, threads and
input (max abs difference; the issue's "same output" is <= 1e-3).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

BASELINE = "rvc-reference"
STAGES = ("load", "resample", "highpass", "f0", "encoder", "retrieval", "synthesizer", "vocoder", "loudness")
SAME_OUTPUT = 1e-3  # the "same output": max abs difference to the baseline
BUSY_LIMIT = 10.0  # % system-wide CPU use over the 3 s before a row above which it is marked "not idle"
JSON_PATH = Path(__file__).resolve().parent / "last_rvc.json"
COUNTS_PATH = Path(__file__).resolve().parent / "last_rvc_counts.json"  # arithmetic per (backend, f0, seconds):
# deterministic, so kept across runs and counted only when missing


def plan(f0s: list[str], threads: list[int], backends: list[str], seconds: float, long_seconds: list[float],
         long_backends: list[str], extra_backends: list[str] = ()) -> list[dict]:
    """Rows in run order: per f0 and thread count the baseline first, then the others (in memory; extra_backends
    only with the first f0 and thread count); then the file rows (convert_file) at the largest thread count and the
    first f0: the short input, then the long ones."""
    order = [BASELINE] + [b for b in backends if b != BASELINE] if BASELINE in backends else list(backends)
    rows = [{"backend": b, "threads": t, "f0": f, "seconds": seconds, "file": False}
            for f in f0s for t in threads
            for b in order + ([b for b in extra_backends if b not in order] if (f, t) == (f0s[0], threads[0]) else [])]
    if long_seconds:
        rows += [{"backend": b, "threads": max(threads), "f0": f0s[0], "seconds": s, "file": True}
                 for s in [seconds] + [s for s in long_seconds if s != seconds] for b in long_backends]
    return rows


def out_path(workdir: str, row: dict) -> str:
    return os.path.join(workdir, "rvc-out", f"{row['backend']}_{row['f0']}_{row['threads']}_{row['seconds']:.0f}.npy")


def run_row(row: dict, workdir: str, size: str = "full", count: bool = False, peak: bool = True) -> dict:
    """One fresh `python -m bench.rvc_one` process -> its JSON result (count: its arithmetic instead; peak=False:
    without the matrix-multiply peak measurement)."""
    cmd = [sys.executable, "-m", "bench.rvc_one", "--backend", row["backend"], "--threads", str(row["threads"]),
           "--f0", row["f0"], "--seconds", str(row["seconds"]), "--workdir", workdir, "--size", size]
    if not peak:
        cmd.append("--no-peak")
    if count:
        cmd.append("--count")
    elif row["file"]:
        cmd.append("--file")
    else:
        os.makedirs(os.path.join(workdir, "rvc-out"), exist_ok=True)
        cmd += ["--out", out_path(workdir, row)]
    env = dict(os.environ, OMP_NUM_THREADS=str(row["threads"]), MKL_NUM_THREADS=str(row["threads"]))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=Path(__file__).resolve().parent.parent)
    if done.returncode != 0:
        raise SystemExit(f"row {row} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare_outputs(rows: list[dict]) -> None:
    """Add max_abs_diff (and the sample counts) against the baseline row of the same f0 / threads / input."""
    import numpy as np

    base = {(r["f0"], r["threads"], r["audio_seconds"]): r for r in rows
            if r["backend"] == BASELINE and r.get("output")}
    for r in rows:
        b = base.get((r["f0"], r["threads"], r["audio_seconds"]))
        if not r.get("output") or b is None or b is r:
            continue
        ours, theirs = np.load(r["output"]), np.load(b["output"])
        r["baseline_samples"] = int(len(theirs))
        n = min(len(ours), len(theirs))
        r["max_abs_diff"] = float(np.abs(ours[:n] - theirs[:n]).max()) if len(ours) == len(theirs) else float("inf")


COUNT_ALIASES = {"torch-bf16": "torch", "onnx": "torch"}  # same arithmetic and plan (bf16: counted in the float32
# work it replaces; onnx: FlopCounterMode cannot see ONNX Runtime, whose decoder follows the same chunk plan)
# FlopCounterMode does not see CPU scaled_dot_product_attention: torch-fast's HuBERT does torch's arithmetic
STAGE_COUNT_ALIASES = {("torch-fast", "encoder"): "torch"}


def count_key(backend: str, f0: str, seconds: float) -> str:
    return f"{COUNT_ALIASES.get(backend, backend)}|{f0}|{seconds:.0f}"


def counts_for(rows: list[dict], workdir: str, saved: Path = COUNTS_PATH) -> dict[str, dict[str, float]]:
    """GFLOP per stage for every (backend, f0, seconds) of the in-memory rows: from `saved`, else counted (a fresh
    process each, untimed) and added to it."""
    counts = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    for row in rows:
        key = count_key(row["backend"], row["f0"], row["seconds"])
        if row["file"] or key in counts:
            continue
        print(f"-> counting the arithmetic of {key}", flush=True)
        counts[key] = run_row(dict(row, threads=1, backend=key.split("|")[0]), workdir, count=True)["gflop"]
        saved.write_text(json.dumps(counts, indent=1), encoding="utf-8")
    return counts


def measure(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Count (when missing) and time the plan -> (rows, {count key: GFLOP per stage})."""
    from .__main__ import _busy_percent
    from .rvc_models import build_rvc

    print("building / reusing the full-size RVC files in", args.workdir, flush=True)
    build_rvc(args.workdir)
    planned = plan(args.f0.split(","), [int(t) for t in args.threads.split(",")], args.backends.split(","),
                   args.seconds, [float(s) for s in args.long_seconds.split(",") if s.strip()],
                   args.long_backends.split(","), [b for b in args.extra_backends.split(",") if b])
    if any(r["backend"] == "onnx" for r in planned):
        print("exporting / reusing the ONNX voice", flush=True)
        code = f"from bench.rvc_one import onnx_voice; from bench.rvc_models import build_rvc; " \
               f"onnx_voice(build_rvc({args.workdir!r})['voice'], export=True)"
        subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parent.parent)
    counts = {} if args.no_count else counts_for(planned, args.workdir)
    if args.count_only:
        return [], counts
    rows = []
    for row in planned:
        busy, load = _busy_percent(), os.getloadavg()[0]
        note = "" if busy <= BUSY_LIMIT else "  (machine NOT idle)"
        print(f"-> {row}  CPU busy {busy:.0f}% over 3 s (load avg {load:.2f}){note}", flush=True)
        result = run_row(row, args.workdir)
        result["cpu_busy_before"] = busy
        rows.append(result)
        Path(args.json).with_suffix(".partial.json").write_text(json.dumps(rows, indent=1), encoding="utf-8")
        stages = json.dumps({k: round(v, 2) for k, v in result["stages"].items()})
        print(f"   end-to-end {result['end_to_end']:.2f} s, RTF {result['rtf']:.3f}, peak RSS "
              f"{result['peak_rss_mb']:.0f} MB, stages {stages}", flush=True)
    compare_outputs(rows)
    return rows, counts


def _cell(value: float | None, base: float | None, fmt: str = "{:.2f}") -> str:
    if value is None:
        return "-"
    return fmt.format(value) + (f" ({value / base:.2f}x)" if base else "")


def peak_stage(row: dict) -> str:
    """The stage during which the sampled RSS was highest (bench.rss_stages), as " (stage)", or ""."""
    peaks = row.get("rss_by_stage") or {}
    return f" ({max(peaks, key=peaks.get)})" if peaks else ""


def table(rows: list[dict]) -> list[str]:
    """Markdown rows: stage seconds (ratio to the baseline of the same f0 / threads / input), speed-up."""
    base = {(r["f0"], r["threads"], r["audio_seconds"], r["io"]): r for r in rows if r["backend"] == BASELINE}
    lines = ["| backend | f0 | threads | audio s | " + " | ".join(STAGES) + " | end-to-end s | RTF | speed-up vs RVC's "
             "procedure: end-to-end / conversion only | CPU-seconds, load + conversion (speed-up) "
             "| peak RSS MB (stage at the peak) | max abs diff to RVC's "
             "procedure | decoded "
             "frames (calls) | CPU busy before % |", "|" + "---|" * (len(STAGES) + 12)]
    for r in rows:
        b = base.get((r["f0"], r["threads"], r["audio_seconds"], r["io"]))
        b = None if b is r else b
        stages = {"load": r["load"], **r["stages"]}
        bstages = {"load": b["load"], **b["stages"]} if b else {}
        cells = [_cell(stages.get(s), bstages.get(s)) for s in STAGES]
        speed = (f"{b['end_to_end'] / r['end_to_end']:.2f}x / {b['convert'] / r['convert']:.2f}x" if b else
                 "1 (baseline)" if r["backend"] == BASELINE else "-")
        diff = f"{r['max_abs_diff']:.1e}" if "max_abs_diff" in r else "-"
        seconds = f"{r['audio_seconds']:.0f}" + (" (file)" if r["io"] == "file" else "")
        cpu = f"{r['cpu_seconds']:.1f}" + (f" ({b['cpu_seconds'] / r['cpu_seconds']:.2f}x)" if b else "")
        tail = [_cell(r["end_to_end"], b and b["end_to_end"]), _cell(r["rtf"], b and b["rtf"], "{:.3f}"), speed, cpu,
                _cell(r["peak_rss_mb"], b and b["peak_rss_mb"], "{:.0f}") + peak_stage(r), diff,
                f"{r.get('decoded_frames') or '-'} ({r.get('decoder_calls') or '-'})",
                f"{r.get('cpu_busy_before', float('nan')):.0f}"]
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {seconds} | " + " | ".join(cells + tail) + " |")
    return lines


def arithmetic_table(rows: list[dict], counts: dict) -> list[str]:
    """Per timed in-memory row: each stage's GFLOP/s (counted GFLOP / the row's seconds) and its share of this
    CPU's float32 matrix-multiply peak at the row's thread count (best of the run), and the float32 floor: all
    of the row's arithmetic at that peak."""
    best: dict[int, float] = {}
    for r in rows:
        if "gemm_peak" in r:
            best[r["threads"]] = max(best.get(r["threads"], 0.0), r["gemm_peak"]["fp32"])
    lines = ["| backend | f0 | threads | GFLOP: encoder / synthesizer / vocoder | encoder GFLOP/s (% of peak) | "
             "synthesizer GFLOP/s (%) | vocoder GFLOP/s (%) | fp32 GEMM peak GFLOP/s | float32 floor s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        counted = counts.get(count_key(r["backend"], r["f0"], r["audio_seconds"]))
        peak = best.get(r["threads"])
        if not counted or not peak or r["io"] == "file":
            continue
        counted = dict(counted)
        for (backend, stage), alias in STAGE_COUNT_ALIASES.items():
            other = counts.get(count_key(alias, r["f0"], r["audio_seconds"]), {})
            if r["backend"] == backend and stage in other:
                counted[stage] = other[stage]
        gflop = " / ".join(f"{counted.get(s, 0.0):.0f}" for s in ("encoder", "synthesizer", "vocoder"))
        cells = []
        for stage in ("encoder", "synthesizer", "vocoder"):
            rate = counted.get(stage, 0.0) / r["stages"][stage] if r["stages"].get(stage) else float("nan")
            cells.append(f"{rate:.0f} ({rate / peak:.0%})")
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {gflop} | " + " | ".join(cells)
                     + f" | {peak:.0f} | {sum(counted.values()) / peak:.1f} |")
    return lines


def section(run: dict) -> str:
    """The markdown section for a saved run ({stamp, machine, command, rows})."""
    return "\n".join([
        "## RVC voices (`python -m bench.rvc`)", "",
        f"{run['stamp']}, `{run['command']}`", "", f"Machine: {run['machine']}", "",
        "A full-size RVC v2 40k voice (RVC's widths, random weights, RVC's file layout), full-size HuBERT base, "
        "RMVPE and an RVC-layout index (IVF769,Flat, 30 000 rows; index_rate 0.75, rms_mix_rate 0.25, protect 0.33). "
        "Baseline: **torch eager, RVC's procedure** (`bench.rvc_reference`: RVC 20240604's vc_single/Pipeline on "
        "svc_core's model classes, weight norm kept, each segment decoded whole with its 1 s pads, HuBERT and RMVPE "
        "in one call per segment / input, RVC's retrieval), run in the same session. In parentheses the ratio to it "
        "(below 1 is faster / smaller); speed-up = its seconds / the row's. Max abs diff: the row's output against "
        "the baseline's, same noise (TorchNoise seeded per segment through the NoiseSource seam); the issue's \"same "
        "output\" is <= 1e-3. \"(file)\" rows convert a WAV into another with `Svc.convert_file` (memory in input "
        "length). Every row runs in a fresh process; the last column is the system-wide CPU use over the 3 s before "
        "it.", ""] + table(run["rows"]) + (
        ["", "Arithmetic (torch FlopCounterMode on the same conversion: convolutions and matrix products, 2 FLOP "
         "per multiply-add; f0's network is in the f0 stage) against this CPU's float32 matrix-multiply peak:", ""]
        + arithmetic_table(run["rows"], run.get("counts", {})) if run.get("counts") else []))


def rerun_busy(run: dict, workdir: str, limit: float = BUSY_LIMIT) -> int:
    """Run again (fresh processes, in order) every row of a saved run that started on a busy machine (CPU busy
    above `limit` %), replacing it when the machine was idler this time; outputs compared again. -> rows rerun."""
    from .__main__ import _busy_percent

    done = 0
    for i, old in enumerate(run["rows"]):
        if old.get("cpu_busy_before", 0.0) <= limit:
            continue
        row = {"backend": old["backend"], "threads": old["threads"], "f0": old["f0"], "seconds": old["audio_seconds"],
               "file": old["io"] == "file"}
        busy = _busy_percent()
        print(f"-> again: {row}  CPU busy {busy:.0f}% (before: {old['cpu_busy_before']:.0f}%)", flush=True)
        if busy >= old["cpu_busy_before"]:
            continue
        result = run_row(row, workdir)
        result["cpu_busy_before"] = busy
        run["rows"][i] = result
        done += 1
    compare_outputs(run["rows"])
    return done


def machine() -> str:
    from .__main__ import machine as bench_machine

    return bench_machine()


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.rvc")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--long-seconds", default="160", help="comma-separated file-row lengths (0 or empty: none)")
    p.add_argument("--threads", default="2,1")
    p.add_argument("--f0", default="pm,rmvpe")
    p.add_argument("--backends", default="rvc-reference,torch")
    p.add_argument("--long-backends", default="torch")
    p.add_argument("--extra-backends", default="", help="more backends, only with the first f0 and thread count "
                   "(e.g. torch-fast,torch-bf16,torch-c1024)")
    p.add_argument("--workdir", default="/tmp/svc-bench-rvc")
    p.add_argument("--json", default=str(JSON_PATH), help="where the raw figures go")
    p.add_argument("--render", metavar="JSON", help="only print the section of a saved run")
    p.add_argument("--rerun-busy", metavar="JSON", help="run again the rows of a saved run that started on a busy "
                   "machine (when it is idler now) and save it")
    p.add_argument("--no-count", action="store_true", help="skip the arithmetic (bench.flops) of missing counts")
    p.add_argument("--count-only", action="store_true", help="only count the plan's arithmetic (untimed; any load)")
    args = p.parse_args()
    if args.render:
        print(section(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    if args.rerun_busy:
        run = json.loads(Path(args.rerun_busy).read_text(encoding="utf-8"))
        print(f"{rerun_busy(run, args.workdir)} row(s) run again")
        run["command"] += f"; busy rows again: python -m bench.rvc --rerun-busy {Path(args.rerun_busy).name}"
        Path(args.rerun_busy).write_text(json.dumps(run, indent=1), encoding="utf-8")
        print(section(run))
        return
    if args.long_seconds.strip() in ("", "0"):
        args.long_seconds = ""
    rows, counts = measure(args)
    if args.count_only:
        print(json.dumps(counts, indent=1))
        return
    run = {"stamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "command": " ".join(["python -m bench.rvc"] + sys.argv[1:]), "rows": rows,
           "counts": counts}
    Path(args.json).write_text(json.dumps(run, indent=1), encoding="utf-8")
    print(section(run))
    print("saved the run to", args.json)


if __name__ == "__main__":
    main()
