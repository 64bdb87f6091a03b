"""Pure rendering for the Convert tab: the progress bar, the timing table and its summary line."""
from __future__ import annotations

import html
import math

import pandas as pd

from ..timing import StageTimes

TIMING_COLUMNS = ["stage", "seconds", "share"]


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "--"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    return f"{minutes} min {sec:02d} s"


def progress_html(fraction: float, stage: str, elapsed: float, eta: float | None, state: str = "running") -> str:
    """A progress bar with the stage, elapsed time and ETA (state: idle, running, done, failed)."""
    pct = max(0.0, min(1.0, fraction)) * 100
    eta_text = "" if state != "running" else f" · ETA {format_seconds(eta)}"
    return (
        f'<div class="svc-progress" data-state="{state}">'
        f'<div class="svc-progress-track"><div class="svc-progress-fill" style="width:{pct:.1f}%"></div></div>'
        f'<div class="svc-progress-text"><span class="svc-stage">{html.escape(stage)}</span>'
        f'<span class="svc-eta">{pct:.0f}% · {format_seconds(elapsed)} elapsed{eta_text}</span></div></div>'
    )


def idle_progress() -> str:
    return progress_html(0.0, "idle: pick a voice and a clip, then press Convert", 0.0, None, state="idle")


def timing_frame(times: StageTimes, load_seconds: float | None = None) -> pd.DataFrame:
    """Per-stage rows, then total, audio length and real-time factor (one-off voice loading listed apart)."""
    rows = [[name, round(sec, 3), f"{share:.0%}"] for name, sec, share in times.rows()]
    rows.append(["total", round(times.total, 3), "100%"])
    rows.append(["audio length", round(times.audio_seconds, 3), ""])
    rows.append(["real-time factor", round(times.rtf, 3) if math.isfinite(times.rtf) else None, ""])
    if load_seconds:
        rows.append(["load voice (one-off)", round(load_seconds, 3), ""])
    return pd.DataFrame(rows, columns=TIMING_COLUMNS)


def empty_timing() -> pd.DataFrame:
    return pd.DataFrame([], columns=TIMING_COLUMNS)


def summary(times: StageTimes, f0_name: str, encoder: str, threads: int, backend: str = "") -> str:
    rtf = times.rtf
    speed = "" if not math.isfinite(rtf) or rtf <= 0 else (
        f" ({1 / rtf:.1f}x faster than real time)" if rtf < 1 else f" ({rtf:.1f}x slower than real time)")
    return (f"**{times.audio_seconds:.2f} s** of audio converted in **{times.total:.2f} s**, real-time factor "
            f"**{rtf:.3f}**{speed}. f0: {f0_name}, encoder: {encoder}, torch threads: {threads}."
            + (f" Synthesizer backend: {backend}." if backend else ""))
