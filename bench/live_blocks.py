"""`python -m bench.live_blocks`: the live engine alone (svc_core.live.LiveSession, no transport): per voice and
block size, the conversion time per block, whether the stream holds in real time, and the latency it implies.

Each row streams STREAM_SECONDS of a sung phrase (bench.models.clip, 48 kHz in and out) through a fresh session
in a fresh process with its thread count set, after a short warm-up. "Holds" replays the measured per-block times
on a real-time clock: block k arrives at (k + 1) * block, conversion starts when it has arrived and the previous
one is done, and playback of block k is due at the first block's finish + one block of jitter buffer + k * block;
an underrun is a block finished after its due time. The engine latency estimate is block + algorithmic delay
(crossfade + SOLA + resamplers) + p95 conversion time (bench.live_latency measures the real end-to-end figure in
a browser, with its buffers). Baseline in the same run: the offline conversion of the same phrase
(Svc.slice_inference) with the same voice and threads, as a real-time factor; a row's ratio is its live RTF over
that. Voices: the starter WORLD voice (voices/starter, phoneppg42) and a full-size so-vits-svc 4.1 model with
random weights (768-wide ContentVec, the 4.1 template's synthesizer; bench.models.build). Before each row the
driver measures system-wide CPU use for 3 s (marked when above BUSY_LIMIT %). Writes bench/last_live_blocks.json.

    python -m bench.live_blocks [--voices starter,sovits-full] [--blocks 0.05,0.1,0.2,0.3,0.5,1.0]
        [--threads 2] [--f0 dio] [--seconds 20] [--workdir /tmp/svc-bench]
    python -m bench.live_blocks --render bench/last_live_blocks.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = Path(__file__).resolve().parent / "last_live_blocks.json"
BUSY_LIMIT = 10.0  # % system-wide CPU use in the 3 s before a row above which it is marked "not idle"
STREAM_SECONDS = 20.0
WARMUP_BLOCKS = 3  # blocks converted before timing starts (first calls allocate)
STARTER_SPEAKER = "flite_slt"
IO_RATE = 48000


def load(voice: str, workdir: str):
    """(Svc, speaker) for a voice name."""
    from svc_core import Svc

    if voice == "starter":
        from svc_core.starter.evaluation import load_voice

        return load_voice(ROOT / "voices" / "starter"), STARTER_SPEAKER
    if voice == "sovits-full":
        from bench.models import build

        paths = build(workdir, onnx=False)
        svc = Svc(paths["model"], paths["config"], encoder_path=str(paths["encoder"]),
                  f0_weights={"rmvpe": str(paths["rmvpe"])})
        return svc, svc.speakers[0]
    raise SystemExit(f"unknown voice {voice!r}: starter or sovits-full")


def replay(times: list[float], block: float) -> int:
    """Underruns when blocks taking `times` seconds each arrive every `block` s (see the module docstring)."""
    finish, due0, underruns = 0.0, None, 0
    for k, spent in enumerate(times):
        finish = max(finish, (k + 1) * block) + spent
        if due0 is None:
            due0 = finish + block
        if finish > due0 + k * block:
            underruns += 1
    return underruns


def child(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from bench.models import clip
    from svc_core.audio import resample
    from svc_core.live import LiveSession, LiveSettings

    svc, speaker = load(args.voice, args.workdir)
    wav44, sr = clip(STREAM_SECONDS)
    wav = resample(wav44, sr, IO_RATE).astype(np.float32)
    start = time.perf_counter()
    svc.slice_inference(wav44, sr, speaker, f0_predictor=args.f0, cache=False)
    offline_rtf = (time.perf_counter() - start) / STREAM_SECONDS
    session = LiveSession(svc, LiveSettings(block_seconds=args.block, speaker=speaker, f0_predictor=args.f0,
                                            silence_db=None))
    n = session.block_samples
    times, stages = [], {}
    for k, i in enumerate(range(0, len(wav) - n, n)):
        out = session.process(wav[i:i + n])
        if k >= WARMUP_BLOCKS:
            times.append(out.infer_seconds)
            for name, sec in out.stages.items():
                stages[name] = stages.get(name, 0.0) + sec
    block = session.block_seconds
    med, p95 = float(np.median(times)), float(np.percentile(times, 95))
    print(json.dumps({
        "voice": args.voice, "threads": args.threads, "f0": args.f0, "block_s": block,
        "blocks": len(times), "infer_median_ms": 1000 * med, "infer_p95_ms": 1000 * p95,
        "rtf": med / block, "offline_rtf": offline_rtf, "underruns": replay(times, block),
        "algorithmic_delay_ms": 1000 * session.algorithmic_delay_seconds,
        "latency_estimate_ms": 1000 * (block + session.algorithmic_delay_seconds + p95),
        "stage_ms_per_block": {k: 1000 * v / len(times) for k, v in stages.items()},
        "settings": session.settings.to_dict(),
    }))


def run_row(voice: str, block: float, threads: int, f0: str, workdir: str) -> dict:
    import psutil

    busy = psutil.cpu_percent(interval=3.0)
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "bench.live_blocks", "--child", "--voices", voice, "--blocks", str(block),
           "--threads", str(threads), "--f0", f0, "--workdir", workdir]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"voice": voice, "block_s": block, "threads": threads, "error": done.stderr.strip()[-400:]}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["busy_before_percent"] = busy
    return row


def table(rows: list[dict]) -> list[str]:
    lines = ["| voice | threads | block ms | conversion per block ms (median / p95) | live RTF (x offline) | "
             "underruns | engine latency est. ms | idle before |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['voice']} | {r['threads']} | {1000 * r['block_s']:.0f} | error: {r['error']} |||||")
            continue
        ratio = r["rtf"] / r["offline_rtf"] if r["offline_rtf"] else float("nan")
        idle = "yes" if r["busy_before_percent"] <= BUSY_LIMIT else f"no ({r['busy_before_percent']:.0f} %)"
        lines.append(f"| {r['voice']} | {r['threads']} | {1000 * r['block_s']:.0f} | {r['infer_median_ms']:.1f} / "
                     f"{r['infer_p95_ms']:.1f} | {r['rtf']:.2f} ({ratio:.1f}x) | {r['underruns']}/{r['blocks']} | "
                     f"{r['latency_estimate_ms']:.0f} | {idle} |")
    return lines


def smallest_holding(rows: list[dict]) -> list[str]:
    """Per voice and thread count: the smallest block with no underruns."""
    out = []
    for key in sorted({(r["voice"], r["threads"]) for r in rows if "error" not in r}):
        ok = [r for r in rows if (r.get("voice"), r.get("threads")) == key and "error" not in r
              and r["underruns"] == 0]
        if ok:
            best = min(ok, key=lambda r: r["block_s"])
            out.append(f"- {key[0]}, {key[1]} threads: smallest block that holds {1000 * best['block_s']:.0f} ms "
                       f"(conversion {best['infer_median_ms']:.0f} ms median), engine latency estimate "
                       f"{best['latency_estimate_ms']:.0f} ms")
        else:
            out.append(f"- {key[0]}, {key[1]} threads: no block size tried holds")
    return out


def render(run: dict) -> str:
    head = [f"Live engine, {run['date']} ({run['machine']}), f0 {run['f0']}, {STREAM_SECONDS:.0f} s streamed per "
            "row, 48 kHz in and out. Offline RTF is the same phrase converted whole (the baseline)."]
    offline = {(r["voice"], r["threads"]): r["offline_rtf"] for r in run["rows"] if "error" not in r}
    head += [f"- offline RTF {v} ({t} threads): {rtf:.3f}" for (v, t), rtf in sorted(offline.items())]
    return "\n".join(head + [""] + table(run["rows"]) + [""] + smallest_holding(run["rows"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default="starter,sovits-full")
    parser.add_argument("--blocks", default="0.05,0.1,0.2,0.3,0.5,1.0")
    parser.add_argument("--threads", default="2")
    parser.add_argument("--f0", default=None, help="f0 predictor (default: the live engine's)")
    parser.add_argument("--workdir", default="/tmp/svc-bench")
    parser.add_argument("--json", default=str(JSON_PATH))
    parser.add_argument("--render")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.render:
        print(render(json.loads(Path(args.render).read_text())))
        return
    if args.f0 is None:
        from svc_core.live import LiveSettings

        args.f0 = LiveSettings.f0_predictor
    if args.child:
        args.voice, args.block, args.threads = args.voices, float(args.blocks), int(args.threads)
        child(args)
        return
    from bench.__main__ import machine

    rows = []
    for voice in args.voices.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            for block in (float(b) for b in args.blocks.split(",")):
                rows.append(run_row(voice, block, threads, args.f0, args.workdir))
                print(table(rows[-1:])[-1], flush=True)
    run = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "f0": args.f0, "rows": rows}
    Path(args.json).write_text(json.dumps(run, indent=1))
    print(render(run))


if __name__ == "__main__":
    main()
