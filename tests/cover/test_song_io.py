"""Songs in (stereo, limits, video) and stems out (wav / flac / mp3, zip); bad inputs answered clearly."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf

from cover.songs import SR, VOICE_CONFIG, VOICE_MODEL
from svc_core import audio as audio_io
from svc_core import song_io
from svc_core.cover import CoverRequest, run_cover
from svc_core.errors import AudioError, ModelError, OptionError
from svc_core.song_io import read_song, write_stem, write_zip


def melody(seconds: float = 2.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([wave * (1 - 0.1 * c) for c in range(channels)], axis=1).astype(np.float32)  # [N, C]


def test_mono_is_duplicated(tmp_path):
    path = tmp_path / "mono.flac"
    sf.write(str(path), melody()[:, 0], SR)
    song, sr = read_song(path)
    assert sr == SR and song.shape == (2, 2 * SR) and song.dtype == np.float32
    assert np.array_equal(song[0], song[1])


def test_stereo_files_bytes_and_arrays(tmp_path):
    data = melody(channels=2)
    path = tmp_path / "stereo.wav"
    sf.write(str(path), data, SR, subtype="FLOAT")
    from_file, _ = read_song(path)
    assert np.array_equal(from_file, data.T)
    from_bytes, _ = read_song(path.read_bytes())
    assert np.array_equal(from_bytes, data.T)
    for arr in (data, data.T, (data * 32767).astype(np.int16)):  # [N, C], [C, N], integer PCM
        song, _ = read_song((arr, SR))
        assert song.shape == (2, 2 * SR) and np.abs(song - data.T).max() < 1e-3


def test_eight_channels_are_refused_from_the_header(tmp_path, monkeypatch):
    path = tmp_path / "surround.wav"
    sf.write(str(path), np.repeat(melody(), 8, axis=1), SR)
    with pytest.raises(AudioError, match="8 channels"):
        read_song((np.zeros((8, SR), np.float32), SR))
    monkeypatch.setattr(audio_io, "_decode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(AudioError, match="8 channels; covers take mono or stereo"):
        read_song(path)


def test_an_hour_long_file_is_refused_without_decoding_it(tmp_path, monkeypatch):
    path = tmp_path / "hour.flac"
    with sf.SoundFile(str(path), "w", 8000, 1, "PCM_16") as f:
        block = np.zeros(8000 * 60, np.int16)
        for _ in range(60):
            f.write(block)
    monkeypatch.setattr(audio_io, "_decode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(AudioError, match=r"'hour.flac' is 60.0 minutes long; a cover takes songs up to 10 minutes"):
        read_song(path)


def test_a_video_file_without_ffmpeg_gets_a_clear_message(tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2000))
    monkeypatch.setattr(audio_io, "ffmpeg_path", lambda: None)
    with pytest.raises(AudioError, match=r"'clip.mp4' is a video file; its audio track is extracted with ffmpeg, "
                                         r"which is not installed here \(apt-get install ffmpeg"):
        read_song(path)


@pytest.mark.skipif(audio_io.ffmpeg_path() is None, reason="ffmpeg is not installed")
def test_the_audio_track_of_a_video(tmp_path):
    import subprocess

    wav, video = tmp_path / "a.wav", tmp_path / "v.mkv"
    sf.write(str(wav), melody(channels=2), SR)
    subprocess.run([audio_io.ffmpeg_path(), "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=32x32:d=2", "-i",
                    str(wav), "-shortest", "-c:a", "flac", str(video)], check=True)
    song, sr = read_song(video)
    assert sr == SR and song.shape[0] == 2 and abs(song.shape[1] - 2 * SR) < SR // 10


def test_broken_and_silent_songs(tmp_path):
    bad = tmp_path / "song.mp3"
    bad.write_bytes(b"ID3" + bytes(range(256)) * 20)
    with pytest.raises(AudioError, match="song.mp3"):
        read_song(bad)
    with pytest.raises(AudioError, match="silent"):
        read_song((np.zeros((2, SR), np.float32), SR))
    with pytest.raises(AudioError, match="Song file"):
        read_song(tmp_path / "missing.wav")


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_stem_writers(tmp_path, fmt):
    x = melody(channels=2).T
    path = write_stem(tmp_path / f"stem.{fmt}", x, SR)
    got, sr = sf.read(str(path), dtype="float32", always_2d=True)
    assert sr == SR and got.shape[1] == 2
    if fmt == "mp3":  # lossy, with encoder delay: compare levels
        assert abs(np.sqrt(np.mean(got ** 2)) / np.sqrt(np.mean(x ** 2)) - 1) < 0.05
    else:  # 24-bit
        assert got.shape[0] == x.shape[1] and np.abs(got.T - x).max() < 1e-6
    assert not list(tmp_path.glob("*.part"))
    with pytest.raises(OptionError, match="stems are written as"):
        write_stem(tmp_path / "stem.ogg", x, SR)


def test_zip_of_stems(tmp_path):
    files = [write_stem(tmp_path / f"s.{fmt}", melody(channels=2).T, SR) for fmt in ("wav", "mp3")]
    archive = write_zip(tmp_path / "all.zip", files)
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == ["s.mp3", "s.wav"]
        assert zf.getinfo("s.mp3").compress_type == zipfile.ZIP_STORED
        assert zf.read("s.wav") == files[0].read_bytes()


def test_a_corrupt_voice_model_is_refused_before_separation(song, known_separator, tmp_path, monkeypatch):
    from cover.songs import KnownStems

    path, _ = song
    monkeypatch.setattr(KnownStems, "separate_chunk", lambda self, a: pytest.fail("separated"))
    bad = tmp_path / "G_100.pth"
    bad.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ModelError, match="G_100.pth"):
        run_cover(CoverRequest(path, bad, VOICE_CONFIG, separator=known_separator), tmp_path / "out")
    with pytest.raises(ModelError, match="Voice model"):
        run_cover(CoverRequest(path, tmp_path / "none.pth", VOICE_CONFIG, separator=known_separator), tmp_path)
    with pytest.raises(OptionError, match="noise_scal"):
        run_cover(CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                               options={"noise_scal": 1}), tmp_path)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"transpose": 30}, "transpose is 30"),
    ({"transpose": "up"}, "'auto'"),
    ({"reverb": 2}, "reverb is 2"),
    ({"target_lufs": 0}, "target_lufs is 0"),
    ({"formats": ("wav", "aiff")}, "Unknown export format 'aiff'"),
    ({"separator": "nope"}, "Unknown separator 'nope'"),
    ({"options": {"transpose": 2}}, "CoverRequest.transpose"),
    ({"lead_model": "x.onnx"}, "lead_separator"),
])
def test_request_settings_are_checked(kwargs, message):
    with pytest.raises(OptionError, match=message):
        CoverRequest("song.wav", "G.pth", **kwargs)
