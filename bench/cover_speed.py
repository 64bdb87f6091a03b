"""`python -m bench.cover_speed`: how long separation and a whole cover take on a 3-minute song (issue #23's
targets: separation with our network <= 30 s, the whole cover with the starter voice <= 60 s, peak RSS <= 1.5 GB,
on 2 cores).

The song is generated (tests/separation_songs.synthetic_song: a non-repeating harmonic voice over a looped
chords / bass / drums backing, stereo 44.1 kHz, written once to the work folder as a float WAV). Every row runs in
a fresh process (`--child`, so its peak RSS is its own) with its thread count given (torch, OpenMP, OpenBLAS);
before each row the driver measures the system-wide CPU use over 3 s (the idle check; above BUSY_LIMIT % the row is
marked). Rows: separation only (`Separator.separate` on the song read from the file) with each built-in separator
that can run here, at each thread count; then the whole cover (`run_cover`: read, separate, key, convert with the
starter voice voices/starter (speaker STARTER_SPEAKER), remix, export wav) per cover separator and thread count.
Baselines in the same run: a separation row's ratio is to repet-sim at the same thread count, a cover row's to the
separation-only row of its separator and thread count ("load" in a separation row: reading the song and building
the separator). Writes bench/last_cover.json and prints a markdown table.

    python -m bench.cover_speed [--seconds 180] [--threads 2,1] [--separators starter,repet-sim,hpss]
        [--cover-separators starter] [--workdir /tmp/svc-bench-cover] [--json PATH]
    python -m bench.cover_speed --render bench/last_cover.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_PATH = Path(__file__).resolve().parent / "last_cover.json"
BUSY_LIMIT = 10.0  # % system-wide CPU use over the 3 s before a row above which it is marked "not idle"
BASELINE_SEPARATOR = "repet-sim"  # separation rows are given as a ratio to it (same threads, same run)
BUILT_IN = ("starter", "repet-sim", "hpss")
STARTER_VOICE = ROOT / "voices" / "starter"
STARTER_SPEAKER = "flite_slt"  # one of the starter voice's four speakers (a female voice)
SONG_SEED = 7
SONG_VOCAL_DB = -3.0  # the voice's RMS against the backing's
RSS_INTERVAL_S = 0.05  # the child's RSS sampling period (peak per cover stage)


def song_path(workdir: Path, seconds: float) -> Path:
    """The generated song (float32 stereo WAV, 44.1 kHz), made once per length."""
    import numpy as np
    import soundfile as sf

    sys.path.insert(0, str(ROOT / "tests"))
    from separation_songs import synthetic_song

    path = workdir / f"song_{seconds:.0f}s.wav"
    if not path.is_file():
        workdir.mkdir(parents=True, exist_ok=True)
        vocals, accompaniment = synthetic_song(seconds, 44100, SONG_SEED, SONG_VOCAL_DB)
        mix = vocals + accompaniment
        sf.write(path.with_suffix(".part.wav"), (0.9 * mix / np.abs(mix).max()).T, 44100, subtype="FLOAT")
        path.with_suffix(".part.wav").replace(path)
    return path


def starter_voice() -> tuple[Path, Path]:
    """(model, config) of the starter voice shipped in voices/starter."""
    models = sorted(STARTER_VOICE.glob("W_*.pth")) + sorted(STARTER_VOICE.glob("G_*.pth"))
    if not models:
        raise SystemExit(f"no starter voice model in {STARTER_VOICE}")
    return models[0], STARTER_VOICE / "config.json"


class _RssSampler:
    """This process's RSS every RSS_INTERVAL_S, its peak charged to the current stage (set by the caller)."""

    def __init__(self) -> None:
        import psutil

        self.process, self.stage, self.peaks = psutil.Process(), "load", {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.is_set():
            rss = self.process.memory_info().rss / 2**20
            self.peaks[self.stage] = round(max(self.peaks.get(self.stage, 0.0), rss), 1)
            self._done.wait(RSS_INTERVAL_S)

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        return self.peaks


def child(args: argparse.Namespace) -> None:
    """One row in this (fresh) process -> one JSON line on stdout."""
    import svc_core  # noqa: F401 - first: it sets the OpenMP wait policy before torch loads
    from svc_core.threads import use_threads
    from svc_core.timing import peak_rss_mb

    from .one import cpu_seconds

    threads = use_threads(args.threads).count
    import librosa  # noqa: F401 - imported before the clock (its first import compiles numba code)
    import librosa.decompose  # noqa: F401

    song = Path(args.song)
    rss = _RssSampler()
    cpu0, start = cpu_seconds(), time.perf_counter()
    result = {"kind": args.child, "separator": args.separator, "threads": threads}
    if args.child == "separate":
        from svc_core.separation import get_separator
        from svc_core.song_io import read_song

        audio, sr = read_song(str(song))
        separator = get_separator(args.separator)
        loaded = time.perf_counter()
        rss.stage = "separate"
        stems = separator.separate(audio, sr)
        done = time.perf_counter()
        result.update(label=stems.separator, audio_seconds=audio.shape[1] / sr,
                      stages={"load": loaded - start, "separate": done - loaded})
    else:
        from svc_core.cover import CoverRequest, run_cover

        model, config = starter_voice()
        request = CoverRequest(song=str(song), voice_model=str(model), voice_config=str(config),
                               speaker=STARTER_SPEAKER, separator=args.separator, formats=("wav",))

        def progress(stage: str, fraction: float, message: str) -> None:
            rss.stage = stage

        out = run_cover(request, Path(args.workdir) / f"cover_{args.separator}_{threads}", progress, cache=False)
        done = time.perf_counter()
        result.update(label=out.separator, audio_seconds=out.seconds, stages=dict(out.stage_seconds),
                      mix_lufs=out.mix_lufs)
    result.update(end_to_end=done - start, cpu_seconds=cpu_seconds() - cpu0, peak_rss_mb=peak_rss_mb(),
                  rss_by_stage=rss.stop())
    result["rtf"] = result["end_to_end"] / result["audio_seconds"]
    print(json.dumps(result))


def run_row(row: dict, song: Path, workdir: Path) -> dict:
    """A fresh `python -m bench.cover_speed --child ...` with the row's threads -> its JSON result."""
    t = str(row["threads"])
    env = dict(os.environ, OMP_NUM_THREADS=t, MKL_NUM_THREADS=t, OPENBLAS_NUM_THREADS=t, NUMBA_NUM_THREADS=t)
    cmd = [sys.executable, "-m", "bench.cover_speed", "--child", row["kind"], "--separator", row["separator"],
           "--threads", t, "--song", str(song), "--workdir", str(workdir)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"row {row} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(separators: list[str], cover_separators: list[str], threads: list[int]) -> list[dict]:
    """Per thread count: the baseline separator first, then the others; then the covers."""
    order = sorted(separators, key=lambda s: s != BASELINE_SEPARATOR)
    return ([{"kind": "separate", "separator": s, "threads": t} for t in threads for s in order]
            + [{"kind": "cover", "separator": s, "threads": t} for t in threads for s in cover_separators])


def runnable(names: list[str]) -> tuple[list[str], dict[str, str]]:
    """The names that can run here, and why the others cannot."""
    from svc_core.separation import separator_status

    status = separator_status()
    return [n for n in names if status.get(n) is None], {n: status[n] for n in names if status.get(n)}


def measure(args: argparse.Namespace) -> dict:
    from .__main__ import _busy_percent

    workdir = Path(args.workdir)
    song = song_path(workdir, args.seconds)
    separators, skipped = runnable([s for s in args.separators.split(",") if s])
    covers, skipped_covers = runnable([s for s in args.cover_separators.split(",") if s])
    skipped.update(skipped_covers)
    for name, why in skipped.items():
        print(f"skipping {name}: it {why}")
    rows = []
    for row in plan(separators, covers, [int(t) for t in args.threads.split(",")]):
        busy = _busy_percent()
        note = "" if busy <= BUSY_LIMIT else "  (machine NOT idle)"
        print(f"-> {row}  CPU busy {busy:.0f}% over 3 s{note}", flush=True)
        result = run_row(row, song, workdir)
        result["cpu_busy_before"] = busy
        rows.append(result)
        print(f"   {result['end_to_end']:.2f} s, RTF {result['rtf']:.3f}, peak RSS {result['peak_rss_mb']:.0f} MB, "
              f"stages {json.dumps({k: round(v, 2) for k, v in result['stages'].items()})}", flush=True)
    return {"rows": rows, "skipped": skipped, "song": str(song), "seconds": args.seconds}


def _baseline(row: dict, rows: list[dict]) -> dict | None:
    want = ("separate", BASELINE_SEPARATOR) if row["kind"] == "separate" else ("separate", row["separator"])
    return next((r for r in rows if (r["kind"], r["separator"]) == want and r["threads"] == row["threads"]
                 and r is not row), None)


def table(rows: list[dict]) -> list[str]:
    """Markdown: one row per run; times in s, the ratio to the row's baseline in parentheses."""
    lines = ["| what | separator | threads | audio s | separate s | key s | convert s | remix s | export s | "
             "end-to-end s (ratio to baseline) | RTF | CPU-seconds | peak RSS MB (stage at the peak) | "
             "CPU busy before % |", "|" + "---|" * 14]
    for r in rows:
        b = _baseline(r, rows)
        ratio = f" ({r['end_to_end'] / b['end_to_end']:.2f}x)" if b else (" (baseline)" if r["kind"] == "separate"
                                                                          else "")
        st = r["stages"]
        cells = [f"{st[s]:.2f}" if s in st else "-" for s in ("separate", "key", "convert", "remix", "export")]
        peaks = r.get("rss_by_stage") or {}
        at = f" ({max(peaks, key=peaks.get)})" if peaks else ""
        what = "separation only" if r["kind"] == "separate" else "whole cover, starter voice"
        lines.append(f"| {what} | {r['label']} | {r['threads']} | {r['audio_seconds']:.0f} | " + " | ".join(cells)
                     + f" | {r['end_to_end']:.2f}{ratio} | {r['rtf']:.3f} | {r['cpu_seconds']:.1f} | "
                     f"{r['peak_rss_mb']:.0f}{at} | {r['cpu_busy_before']:.0f} |")
    return lines


def section(run: dict) -> str:
    skipped = "".join(f"\n\nNot run: {k}: it {why}" for k, why in run.get("skipped", {}).items())
    return "\n".join([
        "## Cover speed (`python -m bench.cover_speed`)", "",
        f"{run['stamp']}, `{run['command']}`", "", f"Machine: {run['machine']}", "",
        f"A generated {run['seconds']:.0f} s stereo song. Separation rows: the separator's load + "
        f"`Separator.separate`; ratio to {BASELINE_SEPARATOR} at the same threads. Cover rows: `run_cover` with "
        "the starter voice, wav export; ratio to separation only with the same separator and threads. Each row in a "
        "fresh process; the last column is the system-wide CPU use over the 3 s before it.", ""]
        + table(run["rows"])) + skipped


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cover_speed")
    p.add_argument("--seconds", type=float, default=180.0)
    p.add_argument("--threads", default="2,1")
    p.add_argument("--separators", default=",".join(BUILT_IN))
    p.add_argument("--cover-separators", default="starter")
    p.add_argument("--workdir", default="/tmp/svc-bench-cover")
    p.add_argument("--json", default=str(JSON_PATH))
    p.add_argument("--render", metavar="JSON", help="only print the table of a saved run")
    p.add_argument("--child", choices=("separate", "cover"), help=argparse.SUPPRESS)
    p.add_argument("--separator", help=argparse.SUPPRESS)
    p.add_argument("--song", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if args.render:
        print(section(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    from .__main__ import machine

    run = {"stamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": machine(), "command": " ".join(["python -m bench.cover_speed"] + sys.argv[1:]),
           **measure(args)}
    Path(args.json).write_text(json.dumps(run, indent=1), encoding="utf-8")
    print(section(run))
    print("saved the run to", args.json)


if __name__ == "__main__":
    main()
