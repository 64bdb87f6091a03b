"""Signal-processing f0 predictors without weights: Praat autocorrelation (pm) and WORLD (dio, harvest)."""
from __future__ import annotations

import glob
import importlib.util
from functools import lru_cache
from types import ModuleType

import numpy as np

from .base import F0Predictor, resize_with_gaps

PM_VOICING_THRESHOLD = 0.6  # Praat's voicing threshold as upstream sets it
PM_PERIODS_PER_WINDOW = 3.0  # Praat's to_pitch_ac default window: 3 periods of the pitch floor
DIO_DECIMALS = 1  # upstream rounds dio f0 to 0.1 Hz before resizing (harvest it leaves unrounded)


@lru_cache(maxsize=1)
def load_pyworld() -> ModuleType:
    """The pyworld extension module.

    pyworld 0.3.5's package __init__ imports pkg_resources only to read its own version, and recent setuptools
    no longer ships pkg_resources. When that import fails we load the compiled extension directly (it does not
    need the package __init__), without touching sys.modules.
    """
    try:
        import pyworld

        return pyworld
    except ModuleNotFoundError as err:
        if err.name != "pkg_resources":
            raise
    spec = importlib.util.find_spec("pyworld")
    folders = list(spec.submodule_search_locations or []) if spec else []
    binaries = [f for folder in folders for f in glob.glob(f"{folder}/pyworld*.so") + glob.glob(f"{folder}/pyworld*.pyd")]
    if not binaries:
        raise ModuleNotFoundError("pyworld's compiled extension was not found", name="pyworld")
    ext_spec = importlib.util.spec_from_file_location("pyworld.pyworld", binaries[0])
    module = importlib.util.module_from_spec(ext_spec)
    ext_spec.loader.exec_module(module)
    return module


class PMPredictor(F0Predictor):
    """praat-parselmouth `to_pitch_ac`, frames every hop/sr seconds, zero-padded symmetrically to p_len."""

    name = "pm"

    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        import parselmouth

        min_samples = int(np.ceil(PM_PERIODS_PER_WINDOW / self.f0_min * self.sampling_rate)) + 1
        if wav.shape[0] < min_samples:  # Praat refuses sounds shorter than one analysis window
            return np.zeros(p_len)
        sound = parselmouth.Sound(wav.astype(np.float64), self.sampling_rate)
        pitch = sound.to_pitch_ac(
            time_step=self.hop_length / self.sampling_rate,
            voicing_threshold=PM_VOICING_THRESHOLD,
            pitch_floor=self.f0_min,
            pitch_ceiling=self.f0_max,
        )
        f0 = pitch.selected_array["frequency"]
        return _center_to_length(f0, p_len)


def _center_to_length(f0: np.ndarray, p_len: int) -> np.ndarray:
    """Zero-pad [T] symmetrically to [p_len] (the extra frame goes first), or crop the middle when longer."""
    missing = p_len - f0.shape[0]
    if missing >= 0:
        before = (missing + 1) // 2
        return np.pad(f0, (before, missing - before))
    start = (-missing) // 2
    return f0[start : start + p_len]


class _WorldPredictor(F0Predictor):
    """WORLD f0 (dio or harvest) refined by stonemask, rounded to `decimals` if set, resized with gaps to p_len."""

    decimals: int | None = None  # round the refined f0 to this many decimals of a Hz before resizing; None = keep

    def _estimate(self, x: np.ndarray, frame_period_ms: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _raw_f0(self, wav: np.ndarray, p_len: int) -> np.ndarray:
        pyworld = load_pyworld()
        x = wav.astype(np.float64)
        frame_period_ms = 1000.0 * self.hop_length / self.sampling_rate
        f0, times = self._estimate(x, frame_period_ms)
        f0 = pyworld.stonemask(x, f0, times, self.sampling_rate)
        if self.decimals is not None:
            f0 = np.round(f0, self.decimals)
        return resize_with_gaps(f0, p_len)


class DioPredictor(_WorldPredictor):
    name = "dio"
    decimals = DIO_DECIMALS

    def _estimate(self, x: np.ndarray, frame_period_ms: float) -> tuple[np.ndarray, np.ndarray]:
        return load_pyworld().dio(
            x, fs=self.sampling_rate, f0_floor=self.f0_min, f0_ceil=self.f0_max, frame_period=frame_period_ms
        )


class HarvestPredictor(_WorldPredictor):
    """Harvest keeps stonemask's f0 unrounded, as upstream does: rounding it to 0.1 Hz like dio moves most frames
    by up to 0.05 Hz, which the NSF source integrates into a phase drift that grows over seconds."""

    name = "harvest"

    def _estimate(self, x: np.ndarray, frame_period_ms: float) -> tuple[np.ndarray, np.ndarray]:
        return load_pyworld().harvest(
            x, fs=self.sampling_rate, f0_floor=self.f0_min, f0_ceil=self.f0_max, frame_period=frame_period_ms
        )
