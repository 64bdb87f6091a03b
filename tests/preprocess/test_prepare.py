"""`python -m svc_core preprocess` on a small generated dataset: clips, loudness, report, cache, split, config,
idempotent rerun, untouched sources."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from dataset_factories import build_dataset, fingerprint
from svc_core.cli import main
from svc_core.config import load_config
from svc_core.preprocess import cache_paths, integrated_loudness

TARGET, CEILING = -23.0, -1.0


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, encoder_file):
    root = tmp_path_factory.mktemp("prep")
    raw, out = root / "raw", root / "out"
    files = build_dataset(raw)
    before = fingerprint(raw)
    argv = ["preprocess", "--in", str(raw), "--out", str(out), "--encoder", "vec256l9", "--encoder-path",
            str(encoder_file), "--f0", "pm", "--val-per-speaker", "2"]
    rc = main(argv)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    clips = [c for s in manifest["sources"] for c in s["clips"]]
    return {"rc": rc, "raw": raw, "out": out, "files": files, "before": before, "argv": argv,
            "manifest": manifest, "report": report, "clips": clips}


def _by_source(prepared, key: str) -> list[dict]:
    rel = prepared["files"][key].relative_to(prepared["raw"]).as_posix()
    return [c for c in prepared["clips"] if c["source"] == rel]


def test_run_succeeds_and_prints_report(prepared):
    assert prepared["rc"] == 0
    assert (prepared["out"] / "report.txt").read_text(encoding="utf-8").startswith("Dataset report")


def test_clips_are_44k_mono_16bit_between_2_and_15_s(prepared):
    assert len(prepared["clips"]) >= 10
    for c in prepared["clips"]:
        info = sf.info(str(prepared["out"] / c["clip"]))
        assert (info.samplerate, info.channels, info.subtype) == (44100, 1, "PCM_16")
        assert 2.0 <= info.frames / 44100 <= 15.0, c["clip"]
        assert info.frames == c["samples"]


def test_names_are_ascii_unique_and_mapped_to_sources(prepared):
    names = [c["clip"] for c in prepared["clips"]]
    assert len(set(names)) == len(names)
    for name in names:
        assert re.fullmatch(r"(alto|tenor)/[A-Za-z0-9_.-]+\.wav", name), name
    unicode_clips = _by_source(prepared, "unicode")
    assert len(unicode_clips) == 1 and unicode_clips[0]["source"] == "alto/sub dir/nested/ünïcödé 歌.flac"
    assert unicode_clips[0]["clip"].startswith("alto/sub_dir_nested_unicode_")


def test_formats_rates_and_channels_are_read(prepared):
    sources = {s["source"]: s for s in prepared["manifest"]["sources"]}
    stereo = sources["tenor/stereo 48k.wav"]
    assert (stereo["status"], stereo["sample_rate"], stereo["channels"]) == ("ok", 48000, 2)
    assert sources["tenor/song.ogg"]["status"] == "ok" and len(_by_source(prepared, "ogg")) == 1
    assert sources["alto/sub dir/nested/ünïcödé 歌.flac"]["sample_rate"] == 22050


def test_long_recordings_are_sliced_at_pauses_and_split(prepared):
    long_clips = _by_source(prepared, "long")
    assert len(long_clips) >= 6  # 40 s with a pause every 4 s
    spans = sorted((c["start"], c["end"]) for c in long_clips)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))  # in order, no overlap
    assert 0.0 <= spans[0][0] and spans[-1][1] <= 40.0
    continuous = _by_source(prepared, "continuous")  # 20 s without a pause: split, each part <= 15 s
    assert len(continuous) == 2
    assert sum(c["samples"] for c in continuous) == 20 * 44100


def test_loudness_on_target_with_peak_ceiling(prepared):
    for c in prepared["clips"]:
        wav, sr = sf.read(str(prepared["out"] / c["clip"]), dtype="float32")
        assert abs(integrated_loudness(wav, sr) - TARGET) <= 1.0, c["clip"]
        assert 20 * math.log10(np.abs(wav).max()) <= CEILING + 1e-6, c["clip"]


def test_report_lists_skipped_files_with_reasons(prepared):
    rep = prepared["report"]
    skipped = {s["source"]: s["reason"] for s in rep["skipped"]}
    assert set(skipped) == {"tenor/corrupt.wav", "tenor/empty.wav", "tenor/silent.wav", "tenor/short.wav"}
    assert "corrupt" in skipped["tenor/corrupt.wav"]
    assert "0 bytes" in skipped["tenor/empty.wav"]
    assert "silent" in skipped["tenor/silent.wav"]
    assert "shorter" in skipped["tenor/short.wav"] or "too short" in skipped["tenor/short.wav"]
    assert rep["ignored_non_audio"] == ["alto/notes.txt"]
    text = (prepared["out"] / "report.txt").read_text(encoding="utf-8")
    for name in skipped:
        assert name in text


def test_report_contents(prepared):
    rep = prepared["report"]
    t = rep["totals"]
    assert t["clips"] == len(prepared["clips"]) and t["speakers"] == 2
    assert (t["sources_found"], t["sources_used"], t["sources_skipped"]) == (11, 7, 4)
    assert sum(rep["clip_seconds"]["histogram"]["counts"]) == t["clips"]
    assert math.isclose(t["seconds_in_clips"], sum(c["samples"] for c in prepared["clips"]) / 44100, abs_tol=0.01)
    assert [c["source"] for c in rep["clipping"]] == ["tenor/hot take.wav"]
    assert 0.0 <= rep["silence"]["sliced_away_ratio"] < 0.5
    assert 0.0 <= rep["silence"]["silent_frame_ratio_in_clips"] < 0.5
    pitch = rep["pitch"]  # the phrases are sung between 220 and 330 Hz with vibrato
    assert 190 < pitch["p5_hz"] < 240 and 300 < pitch["p95_hz"] < 360
    assert rep["speakers"]["alto"]["pitch"]["voiced_ratio"] > 0.5
    assert rep["loudness"]["normalised"] and rep["loudness"]["max_peak_dbfs"] <= CEILING


def test_cache_files_shapes_dtypes_and_frame_counts(prepared):
    for c in prepared["clips"]:
        clip = prepared["out"] / c["clip"]
        n = sf.info(str(clip)).frames
        t = n // 512
        paths = cache_paths(clip)
        assert paths["spec"].name == clip.name[:-4] + ".spec.pt" and paths["f0"].name == clip.name + ".f0.npy"
        f0 = np.load(paths["f0"], allow_pickle=False)  # a plain [2, T] array, no pickle
        assert f0.dtype == np.float32 and f0.shape == (2, t)
        f0_hz, uv = f0  # upstream unpacks it this way
        assert set(np.unique(uv)) <= {0.0, 1.0} and np.all(f0_hz[uv == 1] > 0)
        vol = np.load(paths["vol"], allow_pickle=False)
        assert vol.dtype == np.float32 and vol.shape == (t,)
        spec = torch.load(paths["spec"], weights_only=True)
        assert spec.dtype == torch.float32 and tuple(spec.shape) == (1025, t)
        soft = torch.load(paths["soft"], weights_only=True)
        assert soft.dtype == torch.float32 and soft.shape[:2] == (1, 256)
        n16 = math.ceil(n * 16000 / 44100)
        assert abs(soft.shape[2] - n16 / 320) <= 2


def test_spectrogram_matches_the_definition(prepared):
    clip = prepared["out"] / prepared["clips"][0]["clip"]
    wav, _ = sf.read(str(clip), dtype="float32")
    spec = torch.load(cache_paths(clip)["spec"], weights_only=True).numpy()
    padded = np.pad(wav.astype(np.float64), 768, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2048) / 2048)  # periodic Hann
    for frame in (0, 7, spec.shape[1] - 1):
        ref = np.sqrt(np.abs(np.fft.rfft(padded[frame * 512: frame * 512 + 2048] * window)) ** 2 + 1e-6)
        np.testing.assert_allclose(spec[:, frame], ref, rtol=1e-3, atol=1e-3)


def test_filelists_split_per_speaker(prepared):
    out = prepared["out"]
    train = (out / "filelists" / "train.txt").read_text(encoding="utf-8").splitlines()
    val = (out / "filelists" / "val.txt").read_text(encoding="utf-8").splitlines()
    every = {(out / c["clip"]).as_posix() for c in prepared["clips"]}
    assert set(train) | set(val) == every and not set(train) & set(val)
    assert all(Path(p).is_file() for p in train + val)
    assert sorted(Path(p).parent.name for p in val) == ["alto", "alto", "tenor", "tenor"]


def test_config_loads_and_matches_dataset(prepared):
    cfg = load_config(prepared["out"] / "config.json")
    assert cfg.spk == {"alto": 0, "tenor": 1} and cfg.n_speakers == 2
    assert cfg.speech_encoder == "vec256l9" and cfg.model.ssl_dim == 256 and cfg.model.gin_channels == 256
    assert cfg.model.vol_embedding is False and cfg.sampling_rate == 44100
    assert cfg.raw["data"]["training_files"].endswith("filelists/train.txt")


def test_sources_untouched(prepared):
    assert fingerprint(prepared["raw"]) == prepared["before"]


def test_rerun_is_idempotent(prepared, capsys):
    out = prepared["out"]
    outputs = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert main(prepared["argv"] + ["--quiet"]) == 0
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == outputs  # nothing rewritten: clips, cache files, filelists, config, report
    assert fingerprint(prepared["raw"]) == prepared["before"]
    assert "Dataset report" in capsys.readouterr().out
