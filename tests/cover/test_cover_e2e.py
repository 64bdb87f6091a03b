"""The cover of a synthetic song end to end with the WORLD starter voice and a separator that returns the true
stems: stems exist with equal lengths, the converted vocal follows the original melody, the mix is at the target
loudness and below the ceiling, a second run reuses the separated stems."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf

from cover.songs import SR, VOICE_CONFIG, VOICE_MODEL
from svc_core import cancel
from svc_core.cover import STAGES, STEM_NAMES, CoverRequest, run_cover
from svc_core.cover.loudness import integrated_lufs
from svc_core.cover.remix import CEILING_DBTP
from svc_core.f0 import get_predictor

HOP = 512
MELODY_TOLERANCE_CENTS = 50  # median |cents| between the converted and original vocal's f0 (a quarter tone)
MELODY_P90_CENTS = 100  # 90 % of voiced frames within a semitone


def f0_frames(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float [C, N] or [N] at 44.1 kHz -> (f0 Hz, voiced) per 512-sample frame (Praat)."""
    mono = audio.mean(axis=0) if audio.ndim == 2 else audio
    f0, uv = get_predictor("pm", hop_length=HOP, sampling_rate=SR).compute_f0_uv(mono.astype(np.float32))
    return f0, uv > 0.5


def read(path) -> np.ndarray:
    data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == SR
    return data.T


def melody_error_cents(original: np.ndarray, converted: np.ndarray, transpose: float) -> np.ndarray:
    f_in, v_in = f0_frames(original)
    f_out, v_out = f0_frames(converted)
    n = min(len(f_in), len(f_out))
    both = v_in[:n] & v_out[:n]
    assert both.mean() > 0.3, "too few frames voiced in both"
    return 1200 * np.log2(f_out[:n][both] / (f_in[:n][both] * 2 ** (transpose / 12)))


@pytest.mark.parametrize("transpose", [0, 5])
def test_cover_of_a_synthetic_song(song, known_separator, tmp_path, transpose):
    path, stems = song
    seen = []
    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                           options={"f0_predictor": "pm"}, transpose=transpose, target_lufs=-16.0,
                           formats=("wav", "flac", "mp3"), zip=True)
    result = run_cover(request, tmp_path, progress=lambda s, f, m: seen.append((s, f)))
    # stages reported in order, each ending at 1
    order = [s for i, (s, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != s]
    assert order == list(STAGES)
    assert all((s, 1.0) in seen for s in STAGES) and set(result.stage_seconds) == set(STAGES)
    # every stem in every format, all the song's length
    n = stems["mixture"].shape[1]
    assert set(result.stems) == set(STEM_NAMES)
    for stem in STEM_NAMES:
        for fmt in ("wav", "flac", "mp3"):
            file = result.stems[stem][fmt]
            assert file.is_file() and file.name == f"song_{stem}.{fmt}"
            info = sf.info(str(file))
            assert info.channels == 2 and info.samplerate == SR
            if fmt != "mp3":  # mp3 frames pad the end (encoder delay): its length is checked loosely
                assert info.frames == n
            else:
                assert abs(info.frames - n) < 0.1 * SR
    assert sorted(zipfile.ZipFile(result.zip_path).namelist()) == sorted(p.name for p in result.files())
    # the original vocal stem is the separated vocal (24-bit)
    assert np.abs(read(result.stems["original_vocals"]["wav"]) - stems["vocals"]).max() < 1e-4
    # the converted vocal sings the original melody, transposed
    converted = read(result.stems["converted_vocals"]["flac"])
    err = melody_error_cents(stems["vocals"], converted, transpose)
    assert np.median(np.abs(err)) < MELODY_TOLERANCE_CENTS, np.median(np.abs(err))
    assert np.percentile(np.abs(err), 90) < MELODY_P90_CENTS
    # the converted vocal is as loud as the original one (vocal gain 0)
    assert abs(integrated_lufs(converted, SR) - integrated_lufs(stems["vocals"], SR)) < 1.0
    # the mix: at the target loudness, below the ceiling, and it is vocal + accompaniment
    mix = read(result.stems["mix"]["wav"])
    assert abs(integrated_lufs(mix, SR) - request.target_lufs) < 1.0
    assert abs(result.mix_lufs - request.target_lufs) < 1.0
    assert 20 * np.log10(np.abs(mix).max()) <= CEILING_DBTP + 0.01
    accomp = read(result.stems["accompaniment"]["wav"])
    assert np.abs(accomp - stems["accompaniment"]).max() < 1e-4  # no shift asked, gain 0
    if result.mix_peak_db < CEILING_DBTP - 0.5:  # the limiter did nothing: the mix is the stems' sum, scaled
        scale = np.sum(mix * (converted + accomp)) / np.sum((converted + accomp) ** 2)
        assert np.abs(mix - scale * (converted + accomp)).max() < 2e-3
    assert result.transpose == transpose and not result.separation_cached


def test_a_second_cover_reuses_the_separated_stems(song, known_separator, tmp_path, monkeypatch):
    path, _ = song
    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                           options={"f0_predictor": "pm"}, transpose="auto")
    first = run_cover(request, tmp_path)
    assert not first.separation_cached
    from cover.songs import KnownStems

    def refuse(self, audio):
        raise AssertionError("separated again")

    monkeypatch.setattr(KnownStems, "separate_chunk", refuse)
    other = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_awb", separator=known_separator,
                         options={"f0_predictor": "pm", "noise_scale": 0.2}, transpose=-12, reverb=0.3)
    second = run_cover(other, tmp_path)
    assert second.separation_cached and second.transpose == -12
    # auto: the suggestion was used and explained
    assert first.transpose == first.suggestion.semitones and "MIDI" in first.suggestion.explanation


def test_a_cover_can_be_cancelled(song, known_separator, tmp_path):
    path, _ = song
    watch = cancel.Watch()
    stages = []

    def progress(stage, fraction, message):
        stages.append(stage)
        if stage == "convert":
            watch.cancel("stopped by the test")

    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                           options={"f0_predictor": "pm"})
    with pytest.raises(cancel.ConversionCancelled, match="stopped by the test"):
        run_cover(request, tmp_path, progress, watch=watch)
    assert "remix" not in stages and not list(tmp_path.glob("*.wav"))


def test_lead_and_dereverb_passes(song, known_separator, tmp_path, monkeypatch):
    """A lead/backing pass keeps its "vocals" as the lead and moves the backing into the accompaniment; a dereverb
    pass keeps its "vocals" (dry) and drops the rest; both go through the separator registry by name."""
    from svc_core.separation import registry

    path, stems = song
    model = tmp_path / "karaoke.onnx"
    model.write_bytes(b"a model file the test separator ignores")
    monkeypatch.setitem(registry._REGISTRY, "halves", registry.SeparatorEntry(
        "cover.songs.SplitHalves", "Halves (test)", "community", file_suffixes=(".onnx",)))
    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                           lead_separator="halves", lead_model=model, dereverb_separator="halves",
                           dereverb_model=model, options={"f0_predictor": "pm"}, formats=("wav",))
    result = run_cover(request, tmp_path / "out")
    lead = read(result.stems["original_vocals"]["wav"])
    accomp = read(result.stems["accompaniment"]["wav"])
    assert np.abs(lead - 0.75 * 0.75 * stems["vocals"]).max() < 1e-4  # lead pass, then the dry part of the lead
    assert np.abs(accomp - (stems["accompaniment"] + 0.25 * stems["vocals"])).max() < 1e-4  # + backing only
    assert result.separator == "known + halves (lead) + halves (dereverb)"
