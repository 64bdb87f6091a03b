"""The dataset report: totals, clip-length histogram, clipping, silence, loudness and pitch range.

`build_report` reads the clips' cached f0 and volume files; `format_report` renders the same dict as text.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import MODEL_SAMPLE_RATE
from .cache import cache_paths
from .clips import SourceResult
from .split import Split

SILENT_FRAME_DB = -40.0  # a frame more than 40 dB below the clip's loudest frame counts as silence
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
OFF_TARGET_LU = 1.0  # clips further than this from the loudness target are listed


def note_name(hz: float) -> str:
    """Nearest equal-tempered note, e.g. 440 -> 'A4'."""
    midi = round(69 + 12 * math.log2(hz / 440.0))
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def _histogram(seconds: list[float], lo: float, hi: float) -> dict[str, Any]:
    edges = list(range(int(math.floor(lo)), int(math.ceil(hi)) + 1))
    counts = np.histogram(np.clip(seconds, lo, hi), bins=edges)[0].tolist() if seconds else [0] * (len(edges) - 1)
    return {"edges_seconds": edges, "counts": counts}


def _pitch(values: list[np.ndarray], voiced_frames: int, frames: int) -> dict[str, Any]:
    if not values or voiced_frames == 0:
        return {"voiced_ratio": 0.0}
    f0 = np.concatenate(values)
    q = np.percentile(f0, [0, 5, 50, 95, 100])
    out: dict[str, Any] = {"voiced_ratio": round(voiced_frames / max(frames, 1), 3)}
    for key, hz in zip(("min_hz", "p5_hz", "median_hz", "p95_hz", "max_hz"), q):
        out[key] = round(float(hz), 1)
    out["range_notes"] = f"{note_name(q[1])}-{note_name(q[3])} (5th-95th percentile)"
    return out


def _clip_frames(output_dir: Path, clip: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    paths = cache_paths(output_dir / clip)
    try:
        f0 = np.load(paths["f0"], allow_pickle=False)
        vol = np.load(paths["vol"], allow_pickle=False)
        return f0, vol
    except Exception:  # cache stage failed for this clip; it is reported there
        return None, None


def build_report(results: list[SourceResult], ignored: list[str], unplaced: list[tuple[str, str]], split: Split,
                 settings: dict[str, Any], output_dir: Path, cache_errors: list[dict[str, str]]) -> dict[str, Any]:
    """The JSON report (seconds, dB, Hz)."""
    ok = [r for r in results if r.status == "ok"]
    clips = [c for r in ok for c in r.clips]
    seconds = [c.samples / MODEL_SAMPLE_RATE for c in clips]
    speakers: dict[str, dict[str, Any]] = {}
    f0_by_speaker: dict[str, list[np.ndarray]] = {}
    counts_by_speaker: dict[str, list[int]] = {}
    silent_frames = total_frames = 0
    for c in clips:
        s = speakers.setdefault(c.speaker, {"clips": 0, "seconds": 0.0})
        s["clips"] += 1
        s["seconds"] += c.samples / MODEL_SAMPLE_RATE
        f0, vol = _clip_frames(output_dir, c.clip)
        counts = counts_by_speaker.setdefault(c.speaker, [0, 0])
        if f0 is not None:
            voiced = f0[1] > 0.5
            f0_by_speaker.setdefault(c.speaker, []).append(f0[0][voiced])
            counts[0] += int(voiced.sum())
            counts[1] += voiced.shape[0]
        if vol is not None and vol.size:
            with np.errstate(divide="ignore"):
                db = 20 * np.log10(np.maximum(vol, 1e-10) / max(float(vol.max()), 1e-10))
            silent_frames += int((db < SILENT_FRAME_DB).sum())
            total_frames += vol.shape[0]
    all_f0: list[np.ndarray] = []
    for name, s in speakers.items():
        s["seconds"] = round(s["seconds"], 2)
        s["train"] = sum(1 for c in split.train if c.startswith(f"{name}/"))
        s["val"] = sum(1 for c in split.val if c.startswith(f"{name}/"))
        voiced, frames = counts_by_speaker.get(name, [0, 0])
        s["pitch"] = _pitch(f0_by_speaker.get(name, []), voiced, frames)
        all_f0 += f0_by_speaker.get(name, [])
    seconds_in = sum(r.seconds for r in ok)
    target = settings.get("target_lufs")
    loud = [c for c in clips if c.loudness_after is not None]
    return {
        "totals": {
            "sources_found": len(results) + len(unplaced), "sources_used": len(ok),
            "sources_skipped": len(results) - len(ok) + len(unplaced), "clips": len(clips),
            "speakers": len(speakers), "seconds_in_used_sources": round(seconds_in, 2),
            "seconds_in_clips": round(sum(seconds), 2), "train_clips": len(split.train), "val_clips": len(split.val),
        },
        "speakers": speakers,
        "clip_seconds": {"min": round(min(seconds), 2) if seconds else None,
                         "max": round(max(seconds), 2) if seconds else None,
                         "histogram": _histogram(seconds, settings["min_seconds"], settings["max_seconds"])},
        "skipped": [{"source": r.source, "reason": r.reason} for r in results if r.status != "ok"]
        + [{"source": src, "reason": why} for src, why in unplaced],
        "ignored_non_audio": ignored,
        "dropped_stretches": [{"source": r.source, **d} for r in results for d in r.dropped],
        "clipping": [{"clip": c.clip, "source": c.source, "clipped_samples": c.clipped_samples}
                     for c in clips if c.clipped_samples],
        "silence": {
            "sliced_away_seconds": round(seconds_in - sum(seconds), 2),
            "sliced_away_ratio": round(1 - sum(seconds) / seconds_in, 3) if seconds_in else 0.0,
            "silent_frame_ratio_in_clips": round(silent_frames / total_frames, 3) if total_frames else 0.0,
            "silent_frame_threshold_db": SILENT_FRAME_DB,
        },
        "loudness": {
            "normalised": bool(settings.get("loudnorm")), "target_lufs": target,
            "peak_ceiling_dbfs": settings.get("peak_dbfs"),
            "median_lufs": round(float(np.median([c.loudness_after for c in loud])), 2) if loud else None,
            "max_peak_dbfs": max((c.peak_dbfs for c in clips if c.peak_dbfs is not None), default=None),
            "limited_clips": [c.clip for c in clips if c.limited],
            "off_target_clips": [c.clip for c in loud if settings.get("loudnorm")
                                 and abs(c.loudness_after - target) > OFF_TARGET_LU],
        },
        "pitch": _pitch(all_f0, sum(v for v, _ in counts_by_speaker.values()),
                        sum(f for _, f in counts_by_speaker.values())),
        "split_notes": split.notes,
        "cache_errors": cache_errors,
        "settings": settings,
    }


def _bar(count: int, biggest: int, width: int = 30) -> str:
    return "#" * (round(width * count / biggest) if biggest else 0)


def format_report(rep: dict[str, Any]) -> str:
    """Readable text of a build_report dict."""
    t, sil, loud, pitch = rep["totals"], rep["silence"], rep["loudness"], rep["pitch"]
    lines = [
        "Dataset report",
        f"  sources: {t['sources_found']} found, {t['sources_used']} used, {t['sources_skipped']} skipped",
        f"  clips: {t['clips']} ({t['seconds_in_clips'] / 60:.1f} min) from {t['seconds_in_used_sources'] / 60:.1f} "
        f"min of audio; {t['train_clips']} train, {t['val_clips']} validation; {t['speakers']} speaker(s)",
    ]
    for name, s in sorted(rep["speakers"].items()):
        p = s["pitch"]
        rng = (f"{p['p5_hz']:.0f}-{p['p95_hz']:.0f} Hz {p['range_notes']}" if "p5_hz" in p else "no voiced frames")
        folder = rep["settings"].get("speaker_folders", {}).get(name, name)
        label = name if folder == name else f"{name} (folder '{folder}')"
        lines.append(f"    {label}: {s['clips']} clips, {s['seconds'] / 60:.1f} min, {s['train']} train / "
                     f"{s['val']} val, pitch {rng}")
    hist = rep["clip_seconds"]["histogram"]
    lines.append("  clip lengths:")
    biggest = max(hist["counts"], default=0)
    for lo, hi, n in zip(hist["edges_seconds"][:-1], hist["edges_seconds"][1:], hist["counts"]):
        lines.append(f"    {lo:>3}-{hi:<3} s {n:>5}  {_bar(n, biggest)}")
    lines.append(f"  silence: {sil['sliced_away_seconds']:.1f} s sliced away ({sil['sliced_away_ratio']:.0%}); "
                 f"{sil['silent_frame_ratio_in_clips']:.0%} of frames in clips are quiet "
                 f"(< {sil['silent_frame_threshold_db']:g} dB below the clip's peak frame)")
    if loud["normalised"]:
        lines.append(f"  loudness: target {loud['target_lufs']:g} LUFS, median {loud['median_lufs']} LUFS, peak "
                     f"<= {loud['max_peak_dbfs']} dBFS; limiter acted on {len(loud['limited_clips'])} clip(s); "
                     f"{len(loud['off_target_clips'])} clip(s) off target by more than {OFF_TARGET_LU:g} LU")
    else:
        lines.append(f"  loudness: not normalised (--skip-loudnorm); median {loud['median_lufs']} LUFS")
    if "p5_hz" in pitch:
        lines.append(f"  pitch (all speakers): {pitch['min_hz']:.0f}-{pitch['max_hz']:.0f} Hz, "
                     f"{pitch['range_notes']}, {pitch['voiced_ratio']:.0%} of frames voiced")
    lines.append(f"  clipping: {len(rep['clipping'])} clip(s) contain clipped samples")
    lines += [f"    {c['clip']} ({c['clipped_samples']} samples, from {c['source']})" for c in rep["clipping"]]
    if rep["skipped"]:
        lines.append(f"  skipped files ({len(rep['skipped'])}):")
        lines += [f"    {s['source']}: {s['reason']}" for s in rep["skipped"]]
    if rep["dropped_stretches"]:
        lines.append(f"  dropped stretches: {len(rep['dropped_stretches'])} (listed in report.json)")
    if rep["ignored_non_audio"]:
        lines.append(f"  ignored non-audio files: {len(rep['ignored_non_audio'])}")
    lines += [f"  note: {n}" for n in rep["split_notes"]]
    if rep["cache_errors"]:
        lines.append(f"  feature errors ({len(rep['cache_errors'])}):")
        lines += [f"    {e['clip']}: {e['error']}" for e in rep["cache_errors"]]
    return "\n".join(lines) + "\n"
