"""`python -m bench.separation_quality DIR`: separation quality on a test set, per separator and stem.

DIR is a test-set folder (the interface with `python -m svc_core.separation.mixtures --split test --n 48 --out DIR`):
DIR/<id>/mixture.wav, vocals.wav, accompaniment.wav (stereo float wav, vocals + accompaniment == mixture) and
DIR/manifest.json. Each song is separated by every separator asked for (default: the mixture as is, repet-sim,
hpss and, when it can run here, starter; --model FILE adds a community model file, its family found by
svc_core.separation.community.files.identify_model_file or given with --family) and both stems are scored with
svc_core.separation.metrics (SDR and SI-SDR, per song the median over 1 s frames; over the set the mean and the
median over songs). Prints a markdown table and writes bench/last_separation_quality.json.

    python -m bench.separation_quality DIR [--separators mixture,repet-sim,hpss,starter] [--model FILE
        [--family mdx]] [--limit N] [--threads 2] [--json PATH]
    python -m bench.separation_quality --make-dev DIR [--n 6] [--seconds 20]   (a small development set of the
        same format: examples/*.flac sung / spoken over synthetic looped backing tracks)
    python -m bench.separation_quality --render bench/last_separation_quality.json
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # separation_songs (synthetic backing tracks for --make-dev)

JSON_PATH = Path(__file__).resolve().parent / "last_separation_quality.json"
MIXTURE = "mixture"  # the "separator" that returns the mixture as both stems: the floor every method must beat
DEFAULT_SEPARATORS = (MIXTURE, "repet-sim", "hpss", "starter")
STEMS = ("vocals", "accompaniment")
METRICS = ("sdr", "si_sdr")
DEV_VOCAL_DB = (-6.0, 3.0)  # --make-dev: vocal RMS against the backing's, uniform in this range (dB)
DEV_GAP_SECONDS = (0.3, 1.5)  # --make-dev: silence between the example clips


def read_song(folder: Path) -> dict[str, np.ndarray | int]:
    """DIR/<id> -> {"mixture", "vocals", "accompaniment": float32 [2, N], "sr": Hz}."""
    import soundfile as sf

    from svc_core.separation.base import song_channels

    out: dict[str, np.ndarray | int] = {}
    for name in ("mixture",) + STEMS:
        audio, sr = sf.read(folder / f"{name}.wav", dtype="float32", always_2d=True)
        out[name] = song_channels(audio.T, name)
        out["sr"] = sr
    return out


def song_folders(root: Path, limit: int = 0) -> list[Path]:
    """The songs of a test set, in id order (folders holding a mixture.wav)."""
    if not root.is_dir():
        raise SystemExit(f"{root} is not a folder (make one with python -m svc_core.separation.mixtures --split "
                         f"test --n 48 --out {root}, or --make-dev {root})")
    songs = sorted(p.parent for p in root.glob("*/mixture.wav"))
    if not songs:
        raise SystemExit(f"{root} holds no <id>/mixture.wav")
    return songs[:limit] if limit else songs


class _AsIs:
    """The mixture as both stems (the floor)."""

    label = "mixture as is"

    def separate(self, audio: np.ndarray, sample_rate: int, progress=None):
        from svc_core.separation.base import Stems

        return Stems(audio.copy(), audio.copy(), sample_rate, separator=self.label)


def build_separators(names: list[str], model: str | None, family: str | None) -> tuple[dict, dict[str, str]]:
    """-> ({key: separator}, {key: why skipped}). starter is skipped (with the reason) when it cannot run here."""
    from svc_core.separation import get_separator, separator_status

    status = separator_status()
    built, skipped = {}, {}
    for name in names:
        if name == MIXTURE:
            built[name] = _AsIs()
        elif status.get(name) is not None:
            skipped[name] = status[name]
        else:
            try:
                built[name] = get_separator(name)
            except Exception as e:  # noqa: BLE001 - a missing network file is reported, not fatal
                skipped[name] = str(e)
    if model:
        if family is None:
            try:
                from svc_core.separation.community.files import identify_model_file
            except ImportError:
                raise SystemExit("this build cannot identify model files (no svc_core.separation.community): give "
                                 "--family mdx|demucs|roformer|vr") from None
            family = identify_model_file(model)
        built[f"{family}:{Path(model).name}"] = get_separator(family, model_path=model)
    return built, skipped


def evaluate(root: Path, separators: dict, limit: int = 0) -> dict:
    """Separate and score every song -> {"songs": [...], "per_song": {key: [{id, stem: {metric}}]}, "seconds"}."""
    from svc_core.separation.metrics import score_stem

    per_song: dict[str, list[dict]] = {k: [] for k in separators}
    seconds = {k: 0.0 for k in separators}
    audio_seconds = 0.0
    songs = song_folders(root, limit)
    for i, folder in enumerate(songs):
        song = read_song(folder)
        sr = int(song["sr"])
        audio_seconds += song["mixture"].shape[1] / sr
        for key, sep in separators.items():
            start = time.perf_counter()
            stems = sep.separate(song["mixture"], sr)
            seconds[key] += time.perf_counter() - start
            row = {"id": folder.name}
            for stem in STEMS:
                score = score_stem(song[stem], getattr(stems, stem), sr)
                row[stem] = {"sdr": score.sdr, "si_sdr": score.si_sdr, "frames": score.frames}
            per_song[key].append(row)
        print(f"  {i + 1}/{len(songs)} {folder.name}: " + ", ".join(
            f"{k} {per_song[k][-1]['vocals']['sdr']:.1f}" for k in separators) + " (vocals SDR dB)", flush=True)
    return {"songs": [p.name for p in songs], "audio_seconds": audio_seconds, "per_song": per_song,
            "separation_seconds": seconds, "manifest": manifest_header(root)}


def manifest_header(root: Path) -> dict:
    """The test set's manifest.json without its per-song items (format, split, seconds, ...), or {}."""
    path = root / "manifest.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in doc.items() if k != "items"} if isinstance(doc, dict) else {"songs": len(doc)}


def summary(result: dict) -> dict:
    """{key: {stem: {metric: {mean, median, songs, unscored}}}} over the songs."""
    from svc_core.separation.metrics import summarize

    return {key: {stem: {m: summarize([r[stem][m] for r in rows]) for m in METRICS} for stem in STEMS}
            for key, rows in result["per_song"].items()}


def table(run: dict) -> list[str]:
    """Markdown: one row per separator; SDR / SI-SDR mean and median (dB) for vocals and accompaniment, the
    vocals SDR gain over the mixture as is, and separation seconds per audio second (this process's threads)."""
    lines = ["| separator | vocals SDR mean / median | vocals SI-SDR mean / median | accomp. SDR mean / median | "
             "accomp. SI-SDR mean / median | vocals SDR over the mixture (mean) | separation s per audio s |",
             "|---|---|---|---|---|---|---|"]
    base = run["summary"].get(MIXTURE, {}).get("vocals", {}).get("sdr", {}).get("mean")

    def cell(d: dict) -> str:
        return f"{d['mean']:.2f} / {d['median']:.2f}" + (f" ({d['unscored']} unscored)" if d["unscored"] else "")

    for key, s in run["summary"].items():
        gain = s["vocals"]["sdr"]["mean"] - base if base is not None and not math.isnan(base) else math.nan
        rate = run["separation_seconds"][key] / run["audio_seconds"]
        lines.append(f"| {run['labels'][key]} | {cell(s['vocals']['sdr'])} | {cell(s['vocals']['si_sdr'])} | "
                     f"{cell(s['accompaniment']['sdr'])} | {cell(s['accompaniment']['si_sdr'])} | "
                     f"{gain:+.2f} | {rate:.3f} |")
    return lines


def section(run: dict) -> str:
    skipped = "".join(f"\n\nNot run: {k}: {why}" for k, why in run.get("skipped", {}).items())
    return "\n".join([
        "## Separation quality (`python -m bench.separation_quality`)", "",
        f"{run['stamp']}, `{run['command']}`, {len(run['songs'])} songs ({run['audio_seconds']:.0f} s) from "
        f"`{run['test_set']}`, {run['threads']} thread(s)", "", f"Machine: {run['machine']}", "",
        "SDR: BSS Eval (512-tap filter, fast-bss-eval), SI-SDR: scale-invariant; both per song the median over 1 s "
        "frames and channels (frames with a silent reference skipped), then the mean / median over songs, in dB.",
        ""] + table(run)) + skipped


def _machine() -> str:
    try:
        from .__main__ import machine

        return machine()
    except Exception:  # noqa: BLE001 - onnxruntime missing: a shorter line
        import platform

        return f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"


def make_dev(out: Path, n: int, seconds: float, sr: int = 44100) -> None:
    """A development test set in the contract's format: example clips (examples/*.flac, sung and spoken, in a
    seeded order with gaps, panned a little) over backing_track(seed), at a seeded vocal level."""
    import soundfile as sf

    from separation_songs import backing_track

    from svc_core.audio import resample

    clips = []
    for path in sorted((ROOT / "examples").glob("*.flac")):
        audio, clip_sr = sf.read(path, dtype="float32")
        clips.append((path.stem, audio if clip_sr == sr else resample(audio, clip_sr, sr)))
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    total = int(seconds * sr)
    for i in range(n):
        rng = np.random.default_rng(100 + i)
        voice, used, pos = np.zeros(total, np.float32), [], int(rng.uniform(*DEV_GAP_SECONDS) * sr)
        while pos < total:
            name, clip = clips[rng.integers(len(clips))]
            piece = clip[:total - pos]
            voice[pos:pos + len(piece)] = piece
            used.append(name)
            pos += len(piece) + int(rng.uniform(*DEV_GAP_SECONDS) * sr)
        accompaniment = backing_track(seconds, sr, seed=i)[:, :total]
        level = float(rng.uniform(*DEV_VOCAL_DB))
        gain = 10 ** (level / 20) * np.sqrt(np.mean(accompaniment ** 2) / np.mean(voice[voice != 0] ** 2))
        pan = float(rng.uniform(-0.2, 0.2))
        vocals = np.stack([(1 - pan) * voice, (1 + pan) * voice]) * gain
        mixture = vocals + accompaniment
        peak = max(1.0, float(np.abs(mixture).max()) / 0.99)
        song = out / f"dev{i:03d}"
        song.mkdir(exist_ok=True)
        for name, audio in (("mixture", mixture), ("vocals", vocals), ("accompaniment", accompaniment)):
            sf.write(song / f"{name}.wav", (audio / peak).T.astype(np.float32), sr, subtype="FLOAT")
        manifest.append({"id": song.name, "voice": used, "backing_seed": i, "vocal_db": level, "pan": pan,
                         "source": "bench.separation_quality --make-dev"})
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    print(f"wrote {n} songs of {seconds:.0f} s to {out}")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.separation_quality")
    p.add_argument("test_set", nargs="?", help="test-set folder (DIR/<id>/mixture.wav, vocals.wav, "
                   "accompaniment.wav + manifest.json)")
    p.add_argument("--separators", default=",".join(DEFAULT_SEPARATORS))
    p.add_argument("--model", help="a community model file to score too")
    p.add_argument("--family", help="its registry name (mdx, demucs, roformer, vr) if not identified by the file")
    p.add_argument("--limit", type=int, default=0, help="only the first N songs")
    p.add_argument("--threads", default="2", help="torch threads (the network separators)")
    p.add_argument("--json", default=str(JSON_PATH))
    p.add_argument("--render", metavar="JSON", help="only print the table of a saved run")
    p.add_argument("--make-dev", metavar="DIR", help="write a small development set to DIR and stop")
    p.add_argument("--n", type=int, default=6, help="--make-dev: songs")
    p.add_argument("--seconds", type=float, default=20.0, help="--make-dev: seconds per song")
    args = p.parse_args()
    if args.render:
        print(section(json.loads(Path(args.render).read_text(encoding="utf-8"))))
        return
    if args.make_dev:
        make_dev(Path(args.make_dev), args.n, args.seconds)
        return
    if not args.test_set:
        p.error("give a test-set folder (or --make-dev DIR / --render JSON)")
    from svc_core.threads import use_threads

    threads = use_threads(args.threads).count
    separators, skipped = build_separators([s for s in args.separators.split(",") if s], args.model, args.family)
    for key, why in skipped.items():
        print(f"skipping {key}: {why}")
    result = evaluate(Path(args.test_set), separators, args.limit)
    run = {"stamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "machine": _machine(), "command": " ".join(["python -m bench.separation_quality"] + sys.argv[1:]),
           "test_set": str(args.test_set), "threads": threads, "skipped": skipped,
           "labels": {k: getattr(s, "label", k) for k, s in separators.items()}, **result}
    run["summary"] = summary(run)
    Path(args.json).write_text(json.dumps(run, indent=1), encoding="utf-8")
    print(section(run))
    print("saved the run to", args.json)


if __name__ == "__main__":
    main()
