"""Key: the auto-transpose suggestion (the song's lead-vocal range against the voice's range) and the accompaniment
pitch shift (Rubber Band through pyrubberband, which runs the rubberband-cli program)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ..errors import SvcError
from .result import KeySuggestion

ANALYSIS_RATE = 44100  # Hz the vocal is analysed at
ANALYSIS_HOP = 512  # samples per f0 frame (11.6 ms)
ANALYSIS_PREDICTOR = "pm"  # Praat autocorrelation: no weights, ~50x real time; the suggestion needs a median only
RANGE_PERCENTILES = (5.0, 95.0)  # the song's vocal range ignores the outer 5 % of voiced frames each side
MIN_VOICED_FRAMES = 20  # fewer voiced frames (~0.25 s): no suggestion (0)
MAX_SUGGESTION = 24  # semitones either way
# A voice file without pitch statistics: a range covering the common male-high / female-low overlap (C3-G4)
ASSUMED_RANGE_MIDI = (48.0, 67.0)
NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
RANGE_KEYS = ("low_midi", "high_midi")  # a voice manifest's per-speaker range (svc_core.starter package)


def hz_to_midi(f0: np.ndarray) -> np.ndarray:
    return 69.0 + 12.0 * np.log2(np.asarray(f0, np.float64) / 440.0)


def note_name(midi: float) -> str:
    n = int(round(midi))
    return f"{NOTE_NAMES[n % 12]}{n // 12 - 1}"


def vocal_midi(vocals: np.ndarray, sample_rate: int) -> np.ndarray:
    """MIDI note numbers of the voiced frames of a vocal float32 [C, N] or [N] (channels averaged)."""
    from ..audio import resample
    from ..f0 import get_predictor

    mono = np.asarray(vocals, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if sample_rate != ANALYSIS_RATE:
        mono = resample(mono, sample_rate, ANALYSIS_RATE)
    predictor = get_predictor(ANALYSIS_PREDICTOR, hop_length=ANALYSIS_HOP, sampling_rate=ANALYSIS_RATE)
    f0, uv = predictor.compute_f0_uv(mono)
    voiced = (uv > 0.5) & (f0 > 0)
    return hz_to_midi(f0[voiced])


def _speaker_ranges(obj: Any) -> dict[str, tuple[float, float]]:
    """{speaker id: (low, high) MIDI} from any list of {"id", "low_midi", "high_midi"} dicts inside a manifest."""
    found: dict[str, tuple[float, float]] = {}
    if isinstance(obj, Mapping):
        if "id" in obj and all(isinstance(obj.get(k), (int, float)) for k in RANGE_KEYS):
            found[str(obj["id"])] = (float(obj["low_midi"]), float(obj["high_midi"]))
        for value in obj.values():
            found.update(_speaker_ranges(value))
    elif isinstance(obj, list):
        for value in obj:
            found.update(_speaker_ranges(value))
    return found


def voice_range(model_path: Optional[str], speakers: Mapping[str, float]) -> tuple[float, float, str]:
    """(low, high) MIDI of the voice's training singing and where it comes from.

    Read from the manifest.json beside the model when it lists per-speaker ranges (the starter voices' do: the
    notes their corpus was sung on); speakers: {name: weight} (a mix averages the ranges). Else ASSUMED_RANGE_MIDI.
    """
    manifest = Path(model_path).with_name("manifest.json") if model_path else None
    if manifest is not None and manifest.is_file():
        try:
            ranges = _speaker_ranges(json.loads(manifest.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            ranges = {}
        if speakers and all(name in ranges for name in speakers):
            total = sum(speakers.values()) or 1.0
            low = sum(ranges[n][0] * w for n, w in speakers.items()) / total
            high = sum(ranges[n][1] * w for n, w in speakers.items()) / total
            return low, high, f"the voice's manifest.json (speaker {', '.join(speakers)})"
    return (*ASSUMED_RANGE_MIDI, "assumed: the voice file carries no pitch statistics")


def suggest_transpose(song_midi: np.ndarray, voice_low: float, voice_high: float, voice_source: str,
                      shift_accompaniment: bool) -> KeySuggestion:
    """Semitones that move the song vocal's median to the centre of the voice's range (`any_key`), and the nearest
    octave shift (`octaves`, which keeps the song's key when the accompaniment stays as it is)."""
    centre = (voice_low + voice_high) / 2
    voice = f"{note_name(voice_low)}-{note_name(voice_high)} (MIDI {voice_low:.0f}-{voice_high:.0f})"
    if len(song_midi) < MIN_VOICED_FRAMES:
        text = (f"The lead vocal has too few voiced frames ({len(song_midi)}) to measure its range; no transpose "
                f"suggested. Voice range {voice}, {voice_source}.")
        return KeySuggestion(0, 0, 0, math.nan, math.nan, math.nan, voice_low, voice_high, voice_source, text)
    median = float(np.median(song_midi))
    low, high = (float(v) for v in np.percentile(song_midi, RANGE_PERCENTILES))
    any_key = int(np.clip(round(centre - median), -MAX_SUGGESTION, MAX_SUGGESTION))
    octaves = int(np.clip(12 * round((centre - median) / 12), -MAX_SUGGESTION, MAX_SUGGESTION))
    chosen = any_key if shift_accompaniment else octaves
    text = (f"The lead vocal centres on {note_name(median)} (MIDI {median:.1f}; 90 % of its voiced frames between "
            f"{note_name(low)} and {note_name(high)}). The voice sings {voice}, {voice_source}; its centre is "
            f"MIDI {centre:.1f}. {any_key:+d} semitones centre the vocal in the voice's range; the nearest shift "
            f"that keeps the song's key over an unshifted accompaniment is {octaves:+d} (whole octaves). "
            + (f"Suggested: {chosen:+d}, with the accompaniment shifted by the same amount."
               if shift_accompaniment else
               f"Suggested: {chosen:+d} (shift the accompaniment too to use {any_key:+d})."))
    return KeySuggestion(chosen, any_key, octaves, median, low, high, voice_low, voice_high, voice_source, text)


def rubberband_path() -> Optional[str]:
    return shutil.which("rubberband")


def shift_pitch(audio: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """float32 [C, N] -> float32 [C, N] pitch-shifted by `semitones`, same length (Rubber Band, formants not
    preserved: right for instruments). The signal goes to rubberband through a 16-bit WAV (pyrubberband's temp
    file), so it is scaled to a 0.9 peak on the way and back."""
    if semitones == 0:
        return np.asarray(audio, np.float32)
    if rubberband_path() is None:
        raise SvcError("Shifting the accompaniment's key needs the rubberband program (apt-get install "
                       "rubberband-cli, brew install rubberband).")
    try:
        import pyrubberband
    except ImportError:
        raise SvcError("Shifting the accompaniment's key needs the Python package 'pyrubberband' "
                       "(pip install pyrubberband==0.4.0).") from None
    x = np.asarray(audio, np.float32)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0:
        return x.copy()
    scale = 0.9 / peak
    y = pyrubberband.pitch_shift((x * scale).T, sample_rate, float(semitones))  # [N, C]
    y = np.asarray(y, np.float32).T / scale
    n = x.shape[1]
    return np.ascontiguousarray(y[:, :n] if y.shape[1] >= n else np.pad(y, ((0, 0), (0, n - y.shape[1]))))
