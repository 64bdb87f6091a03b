"""A flat folder is one speaker; worker processes; option changes recompute only what they affect."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase
from dataset_factories import fingerprint
from svc_core.config import load_config
from svc_core.errors import OptionError
from svc_core.preprocess import PreprocessSettings, cache_paths, prepare_dataset


@pytest.fixture()
def flat(tmp_path):
    raw = tmp_path / "Solo Sänger"
    raw.mkdir()
    sf.write(raw / "a.wav", sung_phrase(3.0, gap_every=10.0, seed=1), 44100, subtype="PCM_16")
    sf.write(raw / "b.flac", sung_phrase(4.0, gap_every=10.0, seed=2), 32000)
    return raw


def _settings(raw, out, encoder_file, **kw):
    kw.setdefault("f0", "pm")
    return PreprocessSettings(raw, out, encoder="vec256l9", encoder_path=str(encoder_file), **kw)


def test_flat_folder_two_workers_and_option_changes(flat, tmp_path, encoder_file):
    out = tmp_path / "out"
    before = fingerprint(flat)
    seen = []
    res = prepare_dataset(_settings(flat, out, encoder_file, jobs=2, loudnorm=False), progress=lambda stage, done, total, item: seen.append((stage, done, total)))
    assert res.ok and res.report["totals"]["clips"] == 2
    assert ("clips", 2, 2) in seen and ("features", 2, 2) in seen
    cfg = load_config(out / "config.json")
    assert cfg.spk == {"Solo_Sanger": 0} and cfg.n_speakers == 1
    assert sorted(p.name for p in (out / "Solo_Sanger").glob("*.wav")) == ["a_000.wav", "b_000.wav"]
    # --skip-loudnorm keeps the level: a's clip equals the source (16-bit both ways)
    src, _ = sf.read(flat / "a.wav", dtype="float32")
    clip, _ = sf.read(out / "Solo_Sanger" / "a_000.wav", dtype="float32")
    np.testing.assert_array_equal(src[:len(clip)], clip)
    # one clip of each speaker stays in training when there are too few for 2 validation clips
    assert res.report["totals"]["val_clips"] == 1 and res.report["split_notes"]

    # vol embedding: only config.json changes; the previous one is kept as a backup
    cache_mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")}
    res = prepare_dataset(_settings(flat, out, encoder_file, loudnorm=False, vol_embedding=True))
    assert res.computed == {"soft": 0, "f0": 0, "spec": 0, "vol": 0} and res.reused_sources == 2
    assert load_config(out / "config.json").model.vol_embedding is True
    assert load_config(out / "config.json.bak").model.vol_embedding is False
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npy")} == cache_mtimes

    # a different f0 predictor recomputes f0 only; turning loudness normalisation on re-cuts the clips
    res = prepare_dataset(_settings(flat, out, encoder_file, loudnorm=False, f0="dio"))
    assert res.computed == {"soft": 0, "f0": 2, "spec": 0, "vol": 0}
    res = prepare_dataset(_settings(flat, out, encoder_file))
    assert res.reused_sources == 0 and res.computed == {"soft": 2, "f0": 2, "spec": 2, "vol": 2}
    assert fingerprint(flat) == before


def test_removed_source_removes_its_clips_only(tmp_path, encoder_file):
    raw = tmp_path / "raw"
    for spk in ("x", "y"):
        (raw / spk).mkdir(parents=True)
        sf.write(raw / spk / "one.wav", sung_phrase(2.5, gap_every=10.0), 44100, subtype="PCM_16")
    sf.write(raw / "x" / "two.wav", sung_phrase(2.5, gap_every=10.0, seed=3), 44100, subtype="PCM_16")
    out = tmp_path / "out"
    prepare_dataset(_settings(raw, out, encoder_file))
    (raw / "x" / "two.wav").unlink()  # the user deletes a recording (our test's own file)
    res = prepare_dataset(_settings(raw, out, encoder_file))
    assert res.removed_clips == ["x/two_000.wav"]
    assert not any(p.name.startswith("two_000") for p in (out / "x").iterdir())
    assert all(p.is_file() for p in cache_paths(out / "x" / "one_000.wav").values())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert [s["source"] for s in manifest["sources"]] == ["x/one.wav", "y/one.wav"]


def test_bad_settings_are_refused_before_any_work(tmp_path, encoder_file):
    raw = tmp_path / "raw"
    raw.mkdir()
    with pytest.raises(OptionError, match="must not be the input folder"):
        prepare_dataset(_settings(raw, raw, encoder_file))
    with pytest.raises(OptionError, match="does not exist"):
        prepare_dataset(_settings(tmp_path / "nope", tmp_path / "o", encoder_file))
    with pytest.raises(OptionError, match="twice"):
        prepare_dataset(_settings(raw, tmp_path / "o", encoder_file, min_seconds=5, max_seconds=8))
    with pytest.raises(OptionError, match="Unknown f0 predictor"):
        prepare_dataset(_settings(raw, tmp_path / "o", encoder_file, f0="nope"))
    assert not (tmp_path / "o").exists()


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    from svc_core.cli import main

    raw = tmp_path / "raw"
    raw.mkdir()
    assert main(["preprocess", "--in", str(tmp_path / "missing"), "--out", str(tmp_path / "o"), "--f0", "pm"]) == 2
    assert "error: The input folder" in capsys.readouterr().err
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))  # no encoder weights there
    monkeypatch.chdir(tmp_path)
    assert main(["preprocess", "--in", str(raw), "--out", str(tmp_path / "o"), "--f0", "pm"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "checkpoint_best_legacy_500.pt" in err
    assert not (tmp_path / "o").exists()
