"""The committed demo clips in examples/ and the script that makes them (examples/make_examples.py)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from svc_core.f0 import get_predictor

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "examples"
AUDIO_SUFFIXES = {".flac", ".wav", ".mp3", ".ogg", ".m4a"}
MANIFEST_KEYS = {"file", "title", "kind", "voice", "text", "suggested_transpose"}
MAX_TOTAL_BYTES = 2_000_000
HOP = 512


def load_script():
    """examples/make_examples.py as a module (examples/ is not a package)."""
    name = "svc_studio_make_examples"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / "make_examples.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the file executes
        spec.loader.exec_module(module)
    return sys.modules[name]


def manifest() -> list[dict]:
    return json.loads((EXAMPLES / "examples.json").read_text())


def audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)


def active_rms_db(x: np.ndarray, sr: int) -> float:
    n = int(0.02 * sr)
    db = 10 * np.log10(np.mean(x[: len(x) // n * n].reshape(-1, n) ** 2, axis=1) + 1e-12)
    active = db > db.max() - 40
    return float(10 * np.log10(np.mean(10 ** (db[active] / 10))))


ENTRIES = manifest()
SUNG = [e for e in ENTRIES if e["kind"] == "singing"]


def test_manifest_lists_exactly_the_audio_files():
    names = [e["file"] for e in ENTRIES]
    assert len(names) == len(set(names))
    assert set(names) == {p.name for p in audio_files(EXAMPLES)}
    for entry in ENTRIES:
        assert MANIFEST_KEYS <= set(entry), entry
        assert entry["kind"] in ("speech", "singing")
        assert isinstance(entry["suggested_transpose"], int)
        assert entry["title"] and entry["voice"] and entry["text"]
    assert {e["kind"] for e in ENTRIES} == {"speech", "singing"}


def test_total_size_is_small():
    total = sum(p.stat().st_size for p in EXAMPLES.iterdir() if p.is_file())
    assert total <= MAX_TOTAL_BYTES, f"examples/ holds {total} bytes"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_clip_is_mono_44k_short_and_normalised(entry):
    info = sf.info(str(EXAMPLES / entry["file"]))
    assert (info.samplerate, info.channels) == (44100, 1)
    assert 2.0 <= info.duration <= 10.0
    x, sr = sf.read(str(EXAMPLES / entry["file"]), dtype="float64")
    assert x.ndim == 1 and np.all(np.isfinite(x))
    peak_db = 20 * np.log10(np.max(np.abs(x)))
    assert peak_db <= -1.0
    assert -23.0 <= active_rms_db(x, sr) <= -17.0  # not silent, about -20 dBFS
    assert np.mean(np.abs(x) > 0.01) > 0.2  # sound through much of the clip, not a click


@pytest.mark.parametrize("entry", SUNG, ids=[e["file"] for e in SUNG])
def test_sung_clip_follows_its_melody(entry):
    x, sr = sf.read(str(EXAMPLES / entry["file"]), dtype="float32")
    f0, uv = get_predictor("pm", hop_length=HOP, sampling_rate=sr).compute_f0_uv(x)
    f0, uv = np.asarray(f0), np.asarray(uv)
    times = np.arange(len(f0)) * HOP / sr
    notes = entry["notes"]  # [start_s, vowel_end_s, midi]: the vowel sung on each note
    assert len(notes) >= 5
    for start, end, midi in notes:
        inside = (times >= start + 0.04) & (times <= end - 0.03)
        voiced = inside & (uv > 0)
        assert inside.sum() >= 3 and voiced.sum() >= 0.7 * inside.sum(), (start, end, midi)
        cents = 1200 * np.log2(np.median(f0[voiced]) / (440 * 2 ** ((midi - 69) / 12)))
        assert abs(cents) <= 50, f"note {midi} at {start:.2f} s is {cents:+.0f} cents off"


def test_missing_engine_is_named(monkeypatch, capsys):
    script = load_script()
    monkeypatch.setattr(script.shutil, "which", lambda name: None)
    assert script.main(["--out", "/nonexistent/never/written"]) == 2
    err = capsys.readouterr().err
    assert "Debian package 'flite'" in err and "Debian package 'festival'" in err
    assert "apt-get install flite festival festvox-kdlpc16k" in err


def test_generator_reproduces_the_committed_clips(tmp_path):
    script = load_script()
    missing = script.missing_requirements()
    if missing:
        pytest.skip("cannot run examples/make_examples.py here: it needs " + "; ".join(missing))
    made = script.make_all(str(tmp_path), quiet=True)
    assert [e["file"] for e in made] == [e["file"] for e in ENTRIES]
    versions = script.engine_versions()
    same_engines = True
    for entry in ENTRIES:
        committed = EXAMPLES / entry["file"]
        new, _ = sf.read(str(tmp_path / entry["file"]), dtype="int16")
        old, _ = sf.read(str(committed), dtype="int16")
        assert abs(len(new) - len(old)) <= 0.02 * len(old), entry["file"]
        same_engines &= versions in (sf.SoundFile(str(committed)).software or "")
        if same_engines:  # the same Debian TTS packages: the clips must be sample-identical
            assert len(new) == len(old) and np.array_equal(new, old), entry["file"]
    if same_engines:
        assert json.loads((tmp_path / "examples.json").read_text()) == ENTRIES
