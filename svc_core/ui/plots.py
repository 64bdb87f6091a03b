"""Data for the F0 plot: the input's pitch moved by the transpose against the pitch measured on the output.

Both contours come from one cheap tracker, Praat's autocorrelation pitch (parselmouth, the engine's "pm") on
audio downsampled to `TRACK_RATE`, at a frame step that gives at most `MAX_POINTS` frames per series. The same
tracker on both sides makes the comparison fair (the conversion's own predictor, e.g. fcpe or rmvpe, would cost
as much as the conversion's f0 stage again: 5.5 of 13.9 s before). A 40 s clip costs about 0.2 s for both curves
(2 threads, 2-core box; parselmouth is single-threaded).

Unvoiced frames are left out (the browser's plot cannot draw gaps). Start the plot from None, not from an empty
frame: Gradio 6.31's LinePlot then never draws the lines it is updated with. The fourth column names the nearest
note (A4 = 440 Hz), shown in the tooltip, so the Hz axis reads as semitones too.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

MAX_POINTS = 1500  # per series: long songs stay light in the browser
TRACK_RATE = 8000  # Hz: enough for f0 up to 1100 Hz, and 5x less work than 44.1 kHz
MIN_STEP_SECONDS = 0.01  # tracker frame step for clips up to MAX_POINTS * 10 ms = 15 s
F0_FLOOR_HZ, F0_CEIL_HZ = 50.0, 1100.0  # the engine's f0 range (svc_core.f0)
VOICING_THRESHOLD = 0.6  # upstream's pm setting; Praat's default 0.45 let breath through as 900 Hz spikes
SOURCE = "source after transpose"  # the API's plot data names its series so (tests/web/test_api.py)
OUTPUT = "output"
COLUMNS = ("time (s)", "f0 (Hz)", "series", "note")
# Colours the page's CSS also keys on (server.CSS dashes the output line): blue and orange stay distinct for the
# common colour-vision deficiencies.
COLOR_MAP = {SOURCE: "#1f77b4", OUTPUT: "#ff7f0e"}
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(hz: float) -> str:
    """Nearest equal-tempered note of `hz` (A4 = 440 Hz), e.g. 'A3'; '' for an unvoiced frame."""
    if not (hz > 0 and math.isfinite(hz)):
        return ""
    midi = int(round(69 + 12 * math.log2(hz / 440.0)))
    return f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"


def frame_step(seconds: float) -> float:
    """Tracker frame step (s) for a clip of `seconds`: 10 ms, longer for clips over MAX_POINTS frames."""
    return max(MIN_STEP_SECONDS, seconds / MAX_POINTS)


def track_f0(wav: np.ndarray, sr: int, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Pitch of mono float `wav` at `sr` -> (times [F] in s, f0 [F] in Hz, NaN where unvoiced)."""
    import parselmouth

    from ..audio import resample

    x = resample(np.asarray(wav, dtype=np.float32), sr, TRACK_RATE).astype(np.float64)
    if len(x) < TRACK_RATE * 3 / F0_FLOOR_HZ:  # Praat needs three periods of the floor pitch
        return np.zeros(0), np.zeros(0)
    pitch = parselmouth.Sound(x, TRACK_RATE).to_pitch_ac(time_step=step, pitch_floor=F0_FLOOR_HZ,
                                                         pitch_ceiling=F0_CEIL_HZ, voicing_threshold=VOICING_THRESHOLD)
    f0 = np.asarray(pitch.selected_array["frequency"], dtype=np.float64)
    return np.asarray(pitch.xs(), dtype=np.float64), np.where(f0 > 0, f0, np.nan)


def _series(times: np.ndarray, f0: np.ndarray, name: str) -> pd.DataFrame:
    voiced = np.isfinite(f0)
    hz = np.round(f0[voiced], 2)
    return pd.DataFrame({COLUMNS[0]: np.round(times[voiced], 3), COLUMNS[1]: hz, COLUMNS[2]: name,
                         COLUMNS[3]: [note_name(v) for v in hz]})


def f0_comparison(source: np.ndarray, source_sr: int, output: np.ndarray, output_sr: int,
                  transpose: float) -> pd.DataFrame:
    """Long-format frame (time s, f0 Hz, series, note) for gr.LinePlot: input f0 * 2**(transpose/12) vs output f0."""
    step = frame_step(max(len(source) / source_sr, len(output) / output_sr))
    src_t, src_f0 = track_f0(source, source_sr, step)
    out_t, out_f0 = track_f0(output, output_sr, step)
    return pd.concat([_series(src_t, src_f0 * 2 ** (transpose / 12), SOURCE), _series(out_t, out_f0, OUTPUT)],
                     ignore_index=True)
