"""`python -m bench`: convert a 40 s clip (and a long clip for memory) with full-size random-weight models in the
upstream layout, per backend, f0 predictor and thread count; print per-stage seconds, end-to-end real-time
factor and peak RSS beside the torch-eager baseline of the same run; write bench/README.md's table.

    python -m bench [--seconds 40] [--long-seconds 600] [--threads 1,2] [--f0 pm]
                    [--backends torch,onnx,onnx-enc,onnx-int8]  (also: onnx-int8voc, torch-bf16, torch-bf16-int8,
                    torch-bf16-all, torch-upstream)
                    [--workdir /tmp/svc-bench] [--readme bench/README.md] [--no-count]
                    [--k-steps 100,20 --backends torch-upstream,torch,torch-bf16-diff]  (shallow diffusion rows)
    python -m bench --render bench/last_run.json   (rewrite the README from a saved run)
    python -m bench --contended [--seconds 40] [--backends torch,onnx] [--contended-modes before,one,now]
                    [--repeats 2] [--busy 1]   (one conversion per backend beside a busy process: bench.contended)

Every configuration runs in its own process (clean peak RSS). System-wide CPU use over the 3 s before each run is
printed and tabled (the idle check); above 10 % the run is marked "machine NOT idle". The README gets the tables
of the run followed by bench/notes.md (the hand-written reading of the figures, kept across runs).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

DEFAULT_BACKENDS = "torch,onnx,onnx-enc,onnx-int8"
CONTENDED_JSON = "last_contended.json"  # the saved `--contended` run, beside last_run.json
DIFFUSION_JSON = "last_diffusion.json"  # the saved `--k-steps` (shallow diffusion) run, beside last_run.json
STAGES = ("load", "resample", "f0", "encoder", "synthesizer", "vocoder")  # synthesizer: all but the vocoder


def _run(backend: str, threads: int, f0: str, seconds: float, workdir: str, mode: str, model: str = "full",
         k_step: int = 0) -> dict:
    """One fresh process. mode: "--rerun" (in-memory clip, converted twice), "--file" (the long memory run: a WAV
    file converted into another as the CLI does) or "--count" (the arithmetic per stage, untimed). k_step > 0:
    shallow diffusion from that step (the full-size diffusion model and mel vocoder, bench.models.build_diffusion)."""
    cmd = [sys.executable, "-m", "bench.one", "--backend", backend, "--threads", str(threads), "--f0", f0,
           "--seconds", str(seconds), "--workdir", workdir, "--model", model] + ([mode] if mode else []) + \
        (["--k-step", str(k_step)] if k_step else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env,
                         cwd=Path(__file__).resolve().parent.parent)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _busy_percent(window: float = 3.0) -> float:
    """System-wide CPU use over `window` seconds while this driver sleeps: the idle check before a run."""
    import psutil

    return float(psutil.cpu_percent(interval=window))


def _cell(value: float, base: float, fmt: str = "{:.2f}") -> str:
    return fmt.format(value) + (f" ({value / base:.2f}x)" if base else "")


def machine() -> str:
    import onnxruntime
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {len(os.sched_getaffinity(0))} CPUs available, {mem:.1f} GiB RAM; {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, torch {torch.__version__}, "
            f"onnxruntime {onnxruntime.__version__}")


def table(rows: list[dict], base: dict) -> list[str]:
    lines = ["| backend | f0 | threads | audio s | " + " | ".join(STAGES) + " | end-to-end s | RTF | peak RSS MB "
             "| re-run, transpose +2 (cached f0/units) | CPU busy before % |",
             "|" + "---|" * (len(STAGES) + 9)]
    for r in rows:
        b = base.get((r["f0"], r["threads"], r["audio_seconds"]))
        stages = {"load": r["load"], **r["stages"]}
        cells = [_cell(stages.get(s, 0.0), (b and ({"load": b["load"], **b["stages"]}).get(s, 0.0)) or 0.0)
                 for s in STAGES]
        rerun = f"{r['rerun_transpose']:.2f}" if "rerun_transpose" in r else "-"
        seconds = f"{r['audio_seconds']:.0f}" + (" (file)" if r.get("io") == "file" else "")
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | {seconds} | " + " | ".join(cells)
                     + f" | {_cell(r['end_to_end'], b['end_to_end'] if b else 0)} | {_cell(r['rtf'], b['rtf'] if b else 0, '{:.3f}')}"
                     + f" | {_cell(r['peak_rss_mb'], b['peak_rss_mb'] if b else 0, '{:.0f}')} | {rerun} | {r.get('cpu_busy_before', float('nan')):.0f} |")
    return lines


def count_family(backend: str) -> str:
    """Backends whose conversions do the same arithmetic share one count: torch (also its bf16 rows), the
    upstream procedure, and the ONNX backends (their 512-frame decoding plan)."""
    return backend if backend == "torch-upstream" else "onnx" if backend.startswith("onnx") else "torch"


def arithmetic_table(rows: list[dict], counts: dict) -> list[str]:
    """Per timed row: the arithmetic rate of the encoder and synthesizer stages (GFLOP counted for its backend
    family / the row's stage seconds) against this CPU's matrix-multiply peak at the row's thread count (the best
    measured by any row of the run with that many threads: one product after a conversion reads low by up to
    15 %). int8 and bf16 stages are rated in the float32 arithmetic they replace, so they can pass 100 %."""
    best: dict[int, dict[str, float]] = {}
    for r in rows:
        for dtype, value in r.get("gemm_peak", {}).items():
            best.setdefault(r["threads"], {})[dtype] = max(value, best.get(r["threads"], {}).get(dtype, 0.0))
    lines = ["| backend | f0 | threads | encoder GFLOP/s (% of fp32 peak) | synthesizer GFLOP/s (%) "
             "| vocoder GFLOP/s (%) | fp32 GEMM peak GFLOP/s (this row) | bf16 GEMM peak GFLOP/s "
             "| float32 floor s (all arithmetic at the peak) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        counted = counts.get((count_family(r["backend"]), r["f0"], r["audio_seconds"]))
        peak = best.get(r["threads"], {})
        if not counted or "fp32" not in peak or r.get("io") == "file":
            continue
        cells = []
        for stage in ("encoder", "synthesizer", "vocoder"):
            rate = counted.get(stage, 0.0) / r["stages"][stage] if r["stages"].get(stage) else float("nan")
            cells.append(f"{rate:.0f} ({rate / peak['fp32']:.0%})")
        floor = sum(counted.values()) / peak["fp32"]
        bf16 = f"{peak['bf16']:.0f}" if "bf16" in peak else "-"
        lines.append(f"| {r['provider']} | {r['f0']} | {r['threads']} | " + " | ".join(cells)
                     + f" | {peak['fp32']:.0f} ({r['gemm_peak']['fp32']:.0f}) | {bf16} | {floor:.1f} |")
    return lines


def measure(args: argparse.Namespace) -> tuple[list[dict], dict]:
    """Run the plan (each configuration in a fresh process) -> (timed rows, {(family, f0, seconds): GFLOP})."""
    from .models import build

    print(f"building / reusing the {args.model} models in", args.workdir, flush=True)
    build(args.workdir, variant=args.model)
    counts: dict = {}
    if not args.no_count:
        for backend in sorted({count_family(b) for b in args.backends.split(",")} | {"torch"}):
            for f0 in args.f0.split(","):
                print(f"-> counting the arithmetic of {backend} f0={f0} audio={args.seconds:.0f}s", flush=True)
                c = _run(backend, 2, f0, args.seconds, args.workdir, "--count", args.model)
                counts[(backend, f0, args.seconds)] = c["gflop"]
                print(f"   GFLOP per stage {json.dumps({k: round(v, 1) for k, v in c['gflop'].items()})}",
                      flush=True)
    k_steps = [int(k) for k in args.k_steps.split(",") if k.strip()] or [0]
    plan = [(b, int(t), f, args.seconds, True, k) for f in args.f0.split(",") for t in args.threads.split(",")
            for k in k_steps for b in args.backends.split(",")]
    if args.long_seconds:
        top = max(int(t) for t in args.threads.split(","))
        plan += [(b, top, args.f0.split(",")[0], args.long_seconds, False, k_steps[-1])
                 for b in (args.long_backends or args.backends).split(",")]
    rows: list[dict] = []
    for backend, threads, f0, seconds, in_memory, k_step in plan:
        load, busy = os.getloadavg()[0], _busy_percent()
        note = "" if busy <= 10 else "  (machine NOT idle)"
        print(f"-> {backend} threads={threads} f0={f0} audio={seconds:.0f}s k_step={k_step}  CPU busy {busy:.0f}% "
              f"over 3 s (load avg {load:.2f}, includes the previous run){note}", flush=True)
        mode = ("" if k_step else "--rerun") if in_memory else "--file"  # diffusion rows: no re-run (time)
        r = _run(backend, threads, f0, seconds, args.workdir, mode, args.model, k_step)
        r["cpu_busy_before"] = busy
        rows.append(r)
        print(f"   end-to-end {r['end_to_end']:.2f} s, RTF {r['rtf']:.3f}, peak RSS {r['peak_rss_mb']:.0f} MB, "
              f"stages {json.dumps({k: round(v, 2) for k, v in r['stages'].items()})}", flush=True)
    return rows, counts


def render(run: dict) -> str:
    """bench/README.md for a run ({stamp, machine, command, rows, counts}, as saved in its JSON file)."""
    diffusion_rows = [r for r in run["rows"] if r.get("k_step")]
    rows = [r for r in run["rows"] if not r.get("k_step")]
    counts = {(c["family"], c["f0"], c["seconds"]): c["gflop"] for c in run["counts"]}
    base = {(r["f0"], r["threads"], r["audio_seconds"]): r for r in rows if r["backend"] == "torch"}
    lines = table(rows, base) if rows else []
    if diffusion_rows:
        from .diffusion_table import diffusion_table

        lines += ([""] if lines else []) + diffusion_table(diffusion_rows)
    if counts:
        lines += ["", "Arithmetic (GFLOP per stage, counted by `bench.flops` on torch following each backend "
                  "family's plan: " + "; ".join(
                      f"{b}, f0 {f}, {sec:.0f} s: " + ", ".join(f"{k} {v:.0f}" for k, v in c.items()) + " GFLOP"
                      for (b, f, sec), c in counts.items()) + "), the rate each row ran it at, and this CPU's "
                  "matrix-multiply peak:", ""] + arithmetic_table(rows, counts)
    saved = Path(__file__).resolve().parent / CONTENDED_JSON
    if saved.is_file():  # the last `--contended` run, kept across full runs
        lines += [""] + contended_section(json.loads(saved.read_text(encoding="utf-8")))
    saved_diffusion = Path(__file__).resolve().parent / DIFFUSION_JSON
    if saved_diffusion.is_file() and not diffusion_rows:  # the last `--k-steps` run, kept across full runs
        from .diffusion_table import diffusion_section

        lines += [""] + diffusion_section(json.loads(saved_diffusion.read_text(encoding="utf-8")))
    notes = Path(__file__).resolve().parent / "notes.md"
    return README.format(stamp=run["stamp"], machine=run["machine"], command=run["command"],
                         table="\n".join(lines)) + ("\n" + notes.read_text(encoding="utf-8") if notes.is_file() else "")


def contended_main(args: argparse.Namespace) -> None:
    """`--contended`: measure, save bench/last_contended.json, print the table (README: `--render` adds it)."""
    from . import contended

    backends = args.backends if args.backends != DEFAULT_BACKENDS else "torch,onnx"
    result = contended.measure(backends.split(","), args.contended_modes.split(","), args.repeats, args.seconds,
                               args.f0.split(",")[0], args.workdir, args.model, args.busy)
    result.update(stamp=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                  machine=machine(), command=" ".join(["python -m bench"] + sys.argv[1:]))
    saved = Path(args.readme).with_name(CONTENDED_JSON)
    saved.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print("\n".join(contended_section(result)))
    print("saved the run to", saved, "(`python -m bench --render bench/last_run.json` puts it into the README)")


def contended_section(result: dict) -> list[str]:
    """The README's "under contention" section for a saved `--contended` run."""
    from .contended import table

    return ["## Beside a busy process (`python -m bench --contended`)", "",
            f"{result['stamp']}, {result['machine']}. Command: `{result['command']}`. {result['busy_processes']} "
            f"competing pure-Python loop(s) ran the whole time and got {result['busy_cpu_seconds']:.0f} CPU-seconds. "
            "Medians over the runs; in parentheses the ratio to the old behaviour (2 threads, spin-wait) of the "
            "same backend in the same run. Wall = loading + converting; CPU-seconds = the conversion process's, all "
            "threads.", ""] + table(result["summary"])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench")
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--long-seconds", type=float, default=600.0, help="memory run (0 = skip)")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--f0", default="pm", help="comma-separated f0 predictors")
    p.add_argument("--backends", default=DEFAULT_BACKENDS)
    p.add_argument("--long-backends", default="", help="backends of the memory run (default: --backends)")
    p.add_argument("--k-steps", default="", help="comma-separated shallow-diffusion depths (e.g. 100,20): the rows "
                   "add the full-size diffusion model + mel vocoder (dpm-solver++, speedup 10; the memory run uses "
                   "the last); their own table, ratios to torch-upstream (upstream's way) of the same run")
    p.add_argument("--workdir", default="/tmp/svc-bench")
    p.add_argument("--model", choices=("full", "tiny"), default="full",
                   help="synthesizer size: the 4.1 template (full) or upstream's --tiny config")
    p.add_argument("--no-count", action="store_true", help="skip counting the arithmetic (bench.flops)")
    p.add_argument("--readme", default=str(Path(__file__).resolve().parent / "README.md"))
    p.add_argument("--render", metavar="JSON", help="only rewrite --readme from a saved run (no measuring)")
    p.add_argument("--contended", action="store_true", help="convert beside a competing busy process, the old "
                   "thread behaviour against the new one (bench.contended); --backends defaults to torch,onnx")
    p.add_argument("--contended-modes", default="before,one,now",
                   help="thread behaviours to compare (bench.contended.MODES; 'before' is always included)")
    p.add_argument("--repeats", type=int, default=2, help="--contended: runs of each backend and mode")
    p.add_argument("--busy", type=int, default=1, help="--contended: competing busy processes (one core each)")
    args = p.parse_args()
    if args.contended:
        return contended_main(args)
    saved = Path(args.readme).with_name("last_run.json")
    if args.render:
        try:
            run = json.loads(Path(args.render).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"cannot render from {args.render}: {exc} (a file `python -m bench` saved is expected)")
    else:
        rows, counts = measure(args)
        run = {"stamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
               "machine": machine(), "command": " ".join(["python -m bench"] + sys.argv[1:]), "rows": rows,
               "counts": [{"family": b, "f0": f, "seconds": sec, "gflop": c} for (b, f, sec), c in counts.items()]}
        if args.k_steps:  # diffusion rows are kept apart: the README shows them after the last full run
            saved_diffusion = saved.with_name(DIFFUSION_JSON)
            saved_diffusion.write_text(json.dumps(run, indent=1), encoding="utf-8")
            print("saved the run to", saved_diffusion)
            run = json.loads(saved.read_text(encoding="utf-8"))
        else:
            saved.write_text(json.dumps(run, indent=1), encoding="utf-8")
            print("saved the run to", saved)
    text = render(run)
    print(text)
    Path(args.readme).write_text(text, encoding="utf-8")
    print("wrote", args.readme)


README = """# Benchmarks

`python -m bench` converts a sung test clip with **full-size random-weight models in the upstream layout**
(vec768l12 so-vits-svc 4.1 synthesizer, 44.1 kHz, and a ContentVec-legacy-layout encoder of the real size),
once per backend / f0 predictor / thread count, each in a fresh process, and writes the table below. Figures in
parentheses are the ratio to the torch-eager baseline (`Svc`) with the same f0 predictor, threads and input,
measured in the same run (below 1 is faster / smaller); the run's raw figures are in `last_run.json`. "load" is
loading the synthesizer + encoder (ONNX: creating the ONNX Runtime session); "synthesizer" is the model up to the vocoder (content projection, text encoder,
flow), "vocoder" the NSF-HiFiGAN (`StageTimes.part`: its time is taken out of the synthesizer's; no diffusion
model here). The long run converts a WAV file into another block by block (`convert_file`, as the CLI does:
"(file)" in the audio column; its input is 40 s blocks of the test clip, each followed by the clip's 0.6 s gap and
at a slightly different gain, so its pieces are the 40 s run's; like the CLI it keeps no per-input feature cache,
which would hold 92 MB of vec768 units for 600 s); the 40 s runs
convert an in-memory clip. The re-run column converts the same input again with another transpose: f0 and the content
encoder come from the per-input cache. The last column is the system-wide CPU use over the 3 s before
the run (the idle check; the 1-minute load average is useless here because it still contains the previous run).

Backends: `torch` (Svc, everything in torch eager), `onnx` (OnnxSvc: synthesizer on ONNX Runtime, encoder in
torch), `onnx-enc` (the content encoder exported to ONNX too), `onnx-int8` (its dynamic-int8 file), and the opt-in
reduced-precision rows, which are outside the 1e-3 parity: `onnx-int8voc` (`onnx-int8` plus the int8 vocoder,
`vocoder_precision="int8"`, calibrated on examples/), `torch-bf16` (torch with the vocoder in bfloat16,
`vocoder_precision="bf16"`), `torch-bf16-int8` (that plus the int8 ONNX encoder) and `torch-bf16-all` (the vocoder
and the content encoder in bfloat16, `encoder_precision="bf16"` too: no ONNX at all); `torch-upstream` is our torch
engine following upstream so-vits-svc 4.1's procedure (each slice decoded whole in one call, its 0.5 s padding
included): the model math is upstream's (parity tests), so this row is a same-machine estimate of upstream's cost.

The second table puts the timings against the arithmetic: `bench.flops` counts the multiply-adds of each stage once
per backend family (torch's FlopCounterMode on the torch conversion following that family's plan: torch with its
256-frame chunks, the upstream procedure, the ONNX backends' 512-frame chunks) and every row's process measures the
float32 (and bf16) matrix-multiply peak of this CPU at its thread count (best of 5 products of 2048 x 2048
matrices, after its conversion); the table uses the best peak of the run per thread count (a row's own figure, in
parentheses, can read up to 15 % low). A stage's rate is its GFLOP over its seconds; "float32 floor" is the whole
conversion's arithmetic at that peak, the time no float32 engine doing this arithmetic can beat on this machine. int8 and bf16 stages are
rated in the float32 arithmetic they replace, so they can pass 100 %. Not run by the test suite. Options:
`--seconds 40 --long-seconds 600 --threads 1,2 --f0 pm,rmvpe --backends torch,onnx,onnx-enc,onnx-int8
--workdir /tmp/svc-bench --no-count --model full|tiny` (tiny: upstream's `--tiny` synthesizer, vocoder from 400
channels, depthwise WN, shared flow; rows say so).

## Last run

{stamp}, `{command}`

Machine: {machine}

{table}
"""

if __name__ == "__main__":
    main()
