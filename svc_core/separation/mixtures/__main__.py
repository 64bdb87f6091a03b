"""python -m svc_core.separation.mixtures --split test --n 48 --out DIR: write a synthetic separation set."""
from __future__ import annotations

import argparse
import sys
import time

from .splits import SPLITS
from .writer import SetSettings, write_set


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m svc_core.separation.mixtures",
                                description="Write synthetic songs (mixture, vocals, accompaniment) to a folder.")
    p.add_argument("--split", choices=SPLITS, default="test", help="train or test (disjoint voices, GM programs, "
                   "soundfonts, melodies)")
    p.add_argument("--n", type=int, default=48, help="number of clips")
    p.add_argument("--out", required=True, help="output folder (reruns complete it)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each clip in seconds")
    p.add_argument("--start", type=int, default=0, help="index of the first clip")
    p.add_argument("--jobs", type=int, default=1, help="parallel processes")
    p.add_argument("--pcm16", action="store_true", help="16-bit WAV instead of float32 (training pools)")
    return p


def main(argv: list[str] | None = None) -> int:
    from ...errors import SvcError

    args = build_parser().parse_args(argv)
    if args.n < 1 or args.seconds < 1.0:
        print("error: --n must be >= 1 and --seconds >= 1", file=sys.stderr)
        return 2
    settings = SetSettings(args.out, args.split, args.n, args.seconds, args.start, args.jobs,
                           "PCM_16" if args.pcm16 else "FLOAT")
    t0 = time.time()

    def progress(done: int, total: int) -> None:
        print(f"{done}/{total} clips, {time.time() - t0:.0f} s", flush=True)

    try:
        path = write_set(settings, progress)
    except SvcError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
