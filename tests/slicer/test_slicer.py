"""Slicer: parity with upstream's chunks and cut positions derived by hand from the rules (spec g, step 1).

Hand derivations use sr = 1000 Hz: hop 20 samples, RMS window 80 samples (centred, so frame i sees samples
[20i - 40, 20i + 40)), min_length 250 frames, min_interval 15 frames, max_sil_kept 250 frames. With exact-zero
silences between multiples of 20 samples, frame i is silent iff its window holds only zeros, and every silent
frame has RMS 0, so an RMS argmin over a range is the first silent frame in it.
"""
from __future__ import annotations

import json
import tracemalloc

import librosa
import numpy as np
import pytest
import soundfile as sf

from svc_core.errors import AudioError, OptionError
from svc_core.slicer import Chunk, chunks_to_upstream, frame_rms, slice_audio

SR = 1000


def loud(n: int) -> np.ndarray:
    """A Nyquist square tone at 0.5: every window that touches it is far above -40 dB."""
    out = np.full(n, 0.5, dtype=np.float32)
    out[1::2] = -0.5
    return out


def quiet(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.float32)


def join(*parts: np.ndarray) -> np.ndarray:
    return np.concatenate(parts)


def spans(chunks: list[Chunk]) -> list[tuple[int, int, bool]]:
    return [(c.start, c.end, c.silent) for c in chunks]


def assert_covers(chunks: list[Chunk], n: int) -> None:
    assert chunks[0].start == 0 and chunks[-1].end == n
    for prev, nxt in zip(chunks, chunks[1:]):
        assert prev.end == nxt.start
    assert all(c.end >= c.start for c in chunks)


def test_parity_sweep_matches_upstream_chunks(parity_dir):
    wav, sr = sf.read(parity_dir / "sweep5s_44k.wav", dtype="float32")
    meta = json.loads((parity_dir / "e2e_meta.json").read_text())
    expected = meta["e2e_pm"]["slicer_chunks"]
    chunks = slice_audio(wav, sr, db_thresh=meta["e2e_pm"]["params"]["slice_db"])
    assert chunks_to_upstream(chunks) == expected
    assert_covers(chunks, wav.shape[0])


@pytest.mark.parametrize("pad_mode", ["constant", "reflect"])
def test_frame_rms_equals_librosa_bit_for_bit(pad_mode, monkeypatch):
    import svc_core.slicer as slicer

    monkeypatch.setattr(slicer, "FRAMES_PER_BLOCK", 7)  # many blocks, including both padded edges
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(44100)).astype(np.float32)
    ours = frame_rms(wav, 3528, 882, pad_mode)
    ref = librosa.feature.rms(y=wav, frame_length=3528, hop_length=882, pad_mode=pad_mode)[0]
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, ref)


def test_frame_rms_memory_stays_bounded():
    wav = loud(44100 * 60)  # one minute at 44.1 kHz: 10.6 MB
    tracemalloc.start()
    try:
        frame_rms(wav, 3528, 882)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # librosa on the whole signal would hold a padded copy plus a [3528, 3001] float32 array (42 MB).
    assert peak < 16 * 2**20


def test_short_gap_before_min_length_is_not_cut():
    wav = join(loud(1000), quiet(1000), loud(3000))
    assert spans(slice_audio(wav, SR)) == [(0, 5000, False)]


def test_one_second_gap_after_a_long_clip_gives_a_zero_width_cut():
    # silent frames 302..348, first loud frame 349; 349 >= min_length, run 47 >= 15, <= 250: cut at frame 302
    wav = join(loud(6000), quiet(1000), loud(3000))
    chunks = slice_audio(wav, SR)
    assert spans(chunks) == [(0, 6040, False), (6040, 6040, True), (6040, 10000, False)]
    assert_covers(chunks, wav.shape[0])


def test_one_second_gap_at_44k_with_a_sine():
    sr = 44100  # hop 882, window 3528; the gap spans frames 300..350, silent frames 302..348
    t = np.arange(sr * 6) / sr
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    wav = join(tone, quiet(sr), tone[: sr * 3])
    assert spans(slice_audio(wav, sr)) == [(0, 302 * 882, False), (302 * 882, 302 * 882, True),
                                           (302 * 882, wav.shape[0], False)]


def test_silence_between_one_and_two_max_sil_kept():
    # silent 302..698, i = 699, run 397: mid = argmin[449:553] = 449, left = 302, right = argmin[449:700] = 449
    wav = join(loud(6000), quiet(8000), loud(2000))
    assert spans(slice_audio(wav, SR)) == [(0, 6040, False), (6040, 8980, True), (8980, 16000, False)]


def test_silence_longer_than_two_max_sil_kept():
    # silent 302..898, i = 899, run 597: left = argmin[302:553] = 302, right = argmin[649:900] = 649
    wav = join(loud(6000), quiet(12000), loud(2000))
    chunks = slice_audio(wav, SR)
    assert spans(chunks) == [(0, 6040, False), (6040, 12980, True), (12980, 20000, False)]
    assert_covers(chunks, wav.shape[0])


def test_long_leading_silence():
    # silent 0..298, i = 299 > max_sil_kept: leading cut, 299 <= 500 so (0, argmin[49:300] = 49)
    wav = join(quiet(6000), loud(4000))
    assert spans(slice_audio(wav, SR)) == [(0, 980, True), (980, 10000, False)]


def test_short_leading_silence_is_kept():
    wav = join(quiet(2000), loud(8000))
    assert spans(slice_audio(wav, SR)) == [(0, 10000, False)]


def test_trailing_silence():
    # silent 302..450 up to the last frame (T = 451): 149 >= 15, pos = argmin[302:553] = 302, tag (302, 452)
    wav = join(loud(6000), quiet(3000))
    assert spans(slice_audio(wav, SR)) == [(0, 6040, False), (6040, 9000, True)]


def test_short_trailing_silence_is_kept():
    wav = join(loud(6000), quiet(200))  # silent frames 302..310 only: 9 < min_interval
    assert spans(slice_audio(wav, SR)) == [(0, 6200, False)]


def test_all_silent():
    assert spans(slice_audio(quiet(10000), SR)) == [(0, 10000, True)]


def test_shorter_than_min_length_frames_is_one_voiced_chunk():
    # upstream's early exit compares the sample count with min_length in frames (250)
    assert spans(slice_audio(quiet(250), SR)) == [(0, 250, False)]
    assert spans(slice_audio(quiet(300), SR)) == [(0, 300, True)]


def test_several_silences_stay_contiguous():
    rng = np.random.default_rng(3)
    parts = []
    for _ in range(8):
        parts.append(loud(int(rng.integers(300, 7000))))
        parts.append(quiet(int(rng.integers(100, 12000))))
    wav = join(*parts)
    chunks = slice_audio(wav, SR)
    assert_covers(chunks, wav.shape[0])
    assert sum(c.silent for c in chunks) >= 2
    for c in chunks:
        if c.silent and c.length:
            assert np.all(wav[c.start : c.end] == 0)  # cuts land inside silences


def test_errors():
    with pytest.raises(AudioError):
        slice_audio(np.zeros((2, 1000), dtype=np.float32), SR)
    with pytest.raises(AudioError):
        slice_audio(np.zeros(1000, dtype=np.int16), SR)
    bad = loud(2000)
    bad[500] = np.nan
    with pytest.raises(AudioError):
        slice_audio(bad, SR)
    with pytest.raises(OptionError):
        slice_audio(loud(2000), SR, min_length_ms=100, min_interval_ms=300)
    with pytest.raises(OptionError):
        slice_audio(loud(2000), SR, max_sil_kept_ms=10)
