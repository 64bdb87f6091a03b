"""The 15 fixed training voices (Debian TTS engines) and rendering one sentence to 16 kHz audio.

* esp_m1 .. esp_m7, esp_f1, esp_f3, esp_f4, esp_f5: espeak-ng formant synthesis,
  `espeak-ng -v en-us+<variant> -w out.wav TEXT` (22.05 kHz);
* flite_awb, flite_rms, flite_slt: flite clustergen, `flite -voice <v> -t TEXT -o out.wav` (16 kHz);
* fest_ked: festival ked_diphone (Debian festvox-kdlpc16k), `text2wave -eval (voice_ked_diphone) -o out.wav`
  (16 kHz, text on stdin).

`render(voice, text)` returns float32 mono audio at 16 kHz: engine output resampled with soxr (HQ), leading and
trailing silence cut to `LEAD_S`/`TAIL_S`, speech-active RMS set to -20 dBFS with peaks kept below -1 dBFS.
The engines are deterministic, so the same Debian packages give the same samples.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000  # Hz, every phonevec clip
TARGET_RMS_DB = -20.0  # dBFS over frames within 40 dB of the loudest
PEAK = 10.0 ** (-1.0 / 20.0)
LEAD_S = 0.15  # seconds of silence kept before the first active frame
TAIL_S = 0.15


@dataclass(frozen=True)
class Voice:
    """One TTS voice: `engine` is 'espeak', 'flite' or 'festival'; `name` the engine's voice name."""

    id: str
    engine: str
    name: str
    package: str  # Debian package that provides it


ESPEAK_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f3", "f4", "f5")
VOICES: tuple[Voice, ...] = tuple(
    [Voice(f"esp_{v}", "espeak", f"en-us+{v}", "espeak-ng") for v in ESPEAK_VARIANTS]
    + [Voice(f"flite_{v}", "flite", v, "flite") for v in ("awb", "rms", "slt")]
    + [Voice("fest_ked", "festival", "ked_diphone", "festvox-kdlpc16k")]
)
VOICE_IDS: tuple[str, ...] = tuple(v.id for v in VOICES)


class RenderError(RuntimeError):
    """A TTS engine is missing or failed."""


def voice_by_id(voice_id: str) -> Voice:
    """The Voice named `voice_id` (one of VOICE_IDS)."""
    for voice in VOICES:
        if voice.id == voice_id:
            return voice
    raise KeyError(f"unknown phonevec voice {voice_id!r}; known: {', '.join(VOICE_IDS)}")


def _command(voice: Voice, text: str, wav_path: str) -> tuple[list[str], str | None]:
    """(argv, stdin text) that makes `voice` speak `text` into wav_path."""
    if voice.engine == "espeak":
        return ["espeak-ng", "-v", voice.name, "-w", wav_path, text], None
    if voice.engine == "flite":
        return ["flite", "-voice", voice.name, "-t", text, "-o", wav_path], None
    if voice.engine == "festival":
        return ["text2wave", "-eval", f"(voice_{voice.name})", "-o", wav_path], text
    raise RenderError(f"unknown engine {voice.engine!r}")


def synthesize(voice: Voice, text: str) -> tuple[np.ndarray, int]:
    """Raw engine output: (float64 mono samples, sample rate)."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="phonevec_") as tmp:
        wav_path = os.path.join(tmp, "out.wav")
        argv, stdin = _command(voice, text, wav_path)
        if shutil.which(argv[0]) is None:
            raise RenderError(f"'{argv[0]}' was not found; install the Debian package '{voice.package}'")
        result = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not os.path.isfile(wav_path) or os.path.getsize(wav_path) <= 44:
            raise RenderError(f"{voice.id} failed on {text!r}: {result.stderr.strip()[:300]}")
        audio, sr = sf.read(wav_path, dtype="float64", always_2d=True)
    return audio.mean(axis=1), int(sr)


def _frame_db(x: np.ndarray, n: int) -> np.ndarray:
    frames = x[: len(x) // n * n].reshape(-1, n)
    return 10.0 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def normalize(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Trim silence to LEAD_S/TAIL_S and set the active RMS to TARGET_RMS_DB (peak <= -1 dBFS); float32."""
    n = sr // 100  # 10 ms frames
    db = _frame_db(x, n)
    if db.size == 0:
        raise RenderError("the engine produced less than 10 ms of audio")
    active = np.flatnonzero(db > db.max() - 50.0)
    body = set_level(x[active[0] * n: (active[-1] + 1) * n], sr)
    out = np.concatenate([np.zeros(int(LEAD_S * sr)), body, np.zeros(int(TAIL_S * sr))])
    return out.astype(np.float32)


def set_level(x: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Scale to TARGET_RMS_DB over the 10 ms frames within 40 dB of the loudest, then keep peaks <= -1 dBFS."""
    n = sr // 100
    loud = _frame_db(x, n)
    loud = loud[loud > loud.max() - 40.0]
    rms_db = 10.0 * np.log10(np.mean(10.0 ** (loud / 10.0)))
    body = x * 10.0 ** ((TARGET_RMS_DB - rms_db) / 20.0)
    peak = np.max(np.abs(body))
    if peak > PEAK:
        body = body * (PEAK / peak)
    return body


def render(voice: Voice | str, text: str) -> np.ndarray:
    """`text` spoken by `voice` -> float32 [N] at 16 kHz, trimmed and loudness-normalised."""
    import soxr

    voice = voice_by_id(voice) if isinstance(voice, str) else voice
    x, sr = synthesize(voice, text)
    if sr != SAMPLE_RATE:
        x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
    return normalize(x)
