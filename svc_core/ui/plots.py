"""Data for the F0 plot: the source contour after transpose against the contour measured on the output.

Both contours come from the same f0 predictor the conversion used, on the model's frame grid; unvoiced frames
are left out. Start the plot from None, not from an empty frame: Gradio 6.31's LinePlot then never draws the
lines it is updated with. The frame is thinned to at most `MAX_POINTS` per series so long songs stay light in the browser.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

MAX_POINTS = 1500
SOURCE = "source after transpose"
OUTPUT = "output"
COLUMNS = ("time (s)", "f0 (Hz)", "series")


def _voiced_contour(predictor, wav: np.ndarray) -> np.ndarray:
    f0, uv = predictor.compute_f0_uv(np.ascontiguousarray(wav, dtype=np.float32))
    f0 = np.asarray(f0, dtype=np.float64)
    return np.where(np.asarray(uv) > 0.5, f0, np.nan)


def _series(f0: np.ndarray, frame_seconds: float, name: str) -> pd.DataFrame:
    step = max(1, int(np.ceil(len(f0) / MAX_POINTS)))
    idx = np.arange(0, len(f0), step)
    idx = idx[np.isfinite(f0[idx])]  # unvoiced frames are left out (the browser's plot cannot draw gaps)
    return pd.DataFrame({COLUMNS[0]: np.round(idx * frame_seconds, 4), COLUMNS[1]: np.round(f0[idx], 2),
                         COLUMNS[2]: name})


def f0_comparison(source: np.ndarray, source_sr: int, output: np.ndarray, model_sr: int, hop_length: int,
                  predictor_name: str, transpose: float, threshold: float | None = None) -> pd.DataFrame:
    """Long-format frame (time, f0, series) for gr.LinePlot: source f0 * 2**(transpose/12) vs output f0."""
    from ..audio import resample
    from ..f0 import get_predictor

    predictor = get_predictor(predictor_name, hop_length=hop_length, sampling_rate=model_sr, threshold=threshold)
    src = resample(np.asarray(source, dtype=np.float32), source_sr, model_sr)
    src_f0 = _voiced_contour(predictor, src) * 2 ** (transpose / 12)
    out_f0 = _voiced_contour(predictor, output)
    frame = hop_length / model_sr
    return pd.concat([_series(src_f0, frame, SOURCE), _series(out_f0, frame, OUTPUT)], ignore_index=True)
