"""svc_core.audio: reading any clip people upload, and refusing the ones that cannot work, with a reason."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from svc_core.audio import check_audio, load_audio, pcm16_round_trip, resample, to_mono_float, write_audio
from svc_core.errors import AudioError

SR = 22050


def _tone(seconds: float = 1.0, sr: int = SR, f: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_reads_pcm16_stereo_and_downmixes(tmp_path):
    left, right = _tone(), -0.5 * _tone()
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), SR, subtype="PCM_16")
    wav, sr = load_audio(path)
    assert sr == SR and wav.dtype == np.float32 and wav.ndim == 1
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-4)


def test_reads_bytes_flac_and_tuple(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, _tone(), SR)
    wav, sr = load_audio(path.read_bytes())
    assert sr == SR and len(wav) == SR
    wav2, sr2 = load_audio((np.stack([_tone(), _tone()]), 16000))  # [C, N] array is transposed and mixed
    assert sr2 == 16000 and len(wav2) == SR


def test_integer_arrays_are_scaled():
    assert to_mono_float(np.array([-32768, 16384], np.int16)).tolist() == [-1.0, 0.5]
    np.testing.assert_allclose(to_mono_float(np.array([0, 128, 255], np.uint8)), [-1.0, 0.0, 127 / 128])


@pytest.mark.parametrize("content, match", [(b"", "empty"), (b"RIFF not really a wav file at all", "Could not read")])
def test_empty_and_corrupt_files(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with warnings.catch_warnings(record=True) as caught:  # the decoder fallback's own notes are not shown
        warnings.simplefilter("always")
        with pytest.raises(AudioError, match=match):
            load_audio(path)
    assert not caught, [str(w.message) for w in caught]


def test_a_format_that_needs_ffmpeg_says_so_when_it_is_missing(tmp_path, monkeypatch):
    import shutil

    clip = tmp_path / "phone.m4a"
    clip.write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(200))  # an m4a header and no audio
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match=r"'phone.m4a': .m4a files are decoded with ffmpeg, which is not installed"):
        load_audio(clip)
    (tmp_path / "bad.flac").write_bytes(b"fLaC" + bytes(50))  # other formats keep the general message
    with pytest.raises(AudioError, match="Could not read 'bad.flac' as audio"):
        load_audio(tmp_path / "bad.flac")


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(AudioError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_silent_nonfinite_rate_and_length_checks():
    with pytest.raises(AudioError, match="silent"):
        check_audio(np.zeros(SR, np.float32), SR)
    bad = _tone()
    bad[SR // 2] = np.nan
    with pytest.raises(AudioError, match=r"non-finite.*0\.500 s"):
        check_audio(bad, SR)
    with pytest.raises(AudioError, match="sample rate of 1000 Hz"):
        check_audio(_tone(sr=1000), 1000)
    with pytest.raises(AudioError, match="limit"):
        check_audio(_tone(3.0), SR, max_seconds=2.0)
    with pytest.raises(AudioError, match="no samples"):
        check_audio(np.zeros(0, np.float32), SR)


def test_resample_keeps_pitch_and_length():
    wav = _tone(1.0, 48000, 440.0)
    out = resample(wav, 48000, 44100)
    assert abs(len(out) - 44100) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(len(out))))
    assert abs(np.argmax(spectrum) * 44100 / len(out) - 440.0) < 2.0


def test_pcm16_round_trip_quantises_like_libsndfile():
    wav = _tone()
    out = pcm16_round_trip(wav, SR)
    assert np.max(np.abs(out - wav)) <= 1 / 32768 + 1e-7
    assert np.all(np.abs(out * 32768 - np.round(out * 32768)) < 1e-3)


def test_write_audio_creates_folders(tmp_path):
    path = tmp_path / "out" / "deep" / "x.wav"
    write_audio(path, _tone() * 5, SR)  # clipped, not wrapped
    data, sr = sf.read(path)
    assert sr == SR and np.max(np.abs(data)) <= 1.0


def test_a_one_sample_wav_is_refused_with_its_length(tmp_path):
    path = tmp_path / "one.wav"
    sf.write(path, np.array([0.5], np.float32), 44100, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"one.wav is only 1 sample \(2.27e-05 s\) long; the shortest clip we "
                                         r"convert is 0.25 s"):
        load_audio(path)
    with pytest.raises(AudioError, match="shortest clip"):
        check_audio(_tone(0.2), SR)
    check_audio(_tone(0.25), SR)


def test_a_truncated_wav_converts_what_is_there_with_a_note(tmp_path, caplog):
    from svc_core.audio import read_audio

    whole = tmp_path / "whole.wav"
    sf.write(whole, _tone(10.0), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + int(2.1 * SR) * 2])  # the header still says 10 s
    loaded = read_audio(cut)
    assert abs(loaded.seconds - 2.1) < 0.01
    assert loaded.notes == ("'cut.wav' ends early: 2.1 of 10.0 s could be read; the file may be truncated. "
                            "Converting what was read.",)
    assert read_audio(whole).notes == ()
    with caplog.at_level("WARNING", logger="svc_core"):
        wav, _ = load_audio(cut)
    assert len(wav) == len(loaded.wav) and "ends early: 2.1 of 10.0 s" in caplog.text


def test_a_flac_cut_mid_stream_keeps_the_decoded_part(tmp_path):
    from svc_core.audio import read_audio

    whole = tmp_path / "whole.flac"
    sf.write(whole, _tone(10.0), SR)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[:whole.stat().st_size // 3])
    loaded = read_audio(cut)
    assert 1.0 < loaded.seconds < 4.0
    assert len(loaded.notes) == 1 and "ends early" in loaded.notes[0] and "of 10.0 s" in loaded.notes[0]
    header_only = tmp_path / "header.wav"
    sf.write(tmp_path / "w.wav", _tone(1.0), SR, subtype="PCM_16")
    header_only.write_bytes((tmp_path / "w.wav").read_bytes()[:44])
    with pytest.raises(AudioError, match="no samples"):
        load_audio(header_only)
