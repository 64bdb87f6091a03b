"""Svc.convert_file: file to file, block by block, with the same samples as the in-memory path."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase
from svc_core import Svc
from svc_core.audio import load_audio, write_audio
from svc_core.errors import AudioError, SpeakerError
from svc_core.stream import FileSamples, open_samples

SR = 44100


def _song(seconds: float, sr: int = SR) -> np.ndarray:
    wav = sung_phrase(seconds, gap_every=3.0, gap=0.5)
    if sr != SR:
        from svc_core.audio import resample

        wav = resample(wav, SR, sr)
    return wav


@pytest.mark.parametrize("name,sr,channels,subtype", [("in.wav", SR, 1, "PCM_16"), ("in.flac", 32000, 2, "PCM_24"),
                                                      ("in.wav", 48000, 2, "FLOAT")])
def test_same_samples_as_the_in_memory_path(svc, tmp_path, name, sr, channels, subtype):
    wav = _song(7.0, sr)
    data = np.stack([wav, 0.5 * wav], axis=1) if channels == 2 else wav
    src = tmp_path / name
    sf.write(src, data, sr, subtype=subtype)
    options = dict(f0_predictor="pm", transpose=3, clip_seconds=2.0, crossfade_seconds=0.4)
    result = svc.convert_file(src, tmp_path / "streamed.wav", "tenor", **options)
    assert result.streamed and (tmp_path / "streamed.wav").is_file()
    assert "write" in svc.last_times.seconds
    memory = svc.slice_inference(*load_audio(src), "tenor", **options)
    write_audio(tmp_path / "memory.wav", memory, SR)
    streamed, _ = sf.read(tmp_path / "streamed.wav", dtype="int16")
    expected, _ = sf.read(tmp_path / "memory.wav", dtype="int16")
    np.testing.assert_array_equal(streamed, expected)
    assert result.seconds == pytest.approx(len(memory) / SR)


def test_file_samples_read_ranges_and_index_arrays(tmp_path):
    data = np.random.default_rng(0).uniform(-0.5, 0.5, (1000, 3)).astype(np.float32)
    sf.write(tmp_path / "x.wav", data, 8000, subtype="FLOAT")
    with FileSamples(tmp_path / "x.wav") as s:
        mono = data.mean(axis=1)
        assert s.shape == (1000,) and s.sample_rate == 8000
        np.testing.assert_array_equal(s[100:250], mono[100:250])
        np.testing.assert_array_equal(s[np.array([5, 2, 999])], mono[[5, 2, 999]])
        np.testing.assert_array_equal(np.concatenate(list(s.blocks(300))), mono)
        assert s[990:2000].shape == (10,)


def test_bad_inputs_leave_no_output(svc, tmp_path):
    out = tmp_path / "out.wav"
    (tmp_path / "junk.wav").write_bytes(b"RIFF" + bytes(200))
    with pytest.raises(AudioError, match="junk.wav"):
        svc.convert_file(tmp_path / "junk.wav", out, "alto", f0_predictor="pm")
    sf.write(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    with pytest.raises(AudioError, match="silent"):
        svc.convert_file(tmp_path / "quiet.wav", out, "alto", f0_predictor="pm")
    nan = _song(2.0)
    nan[SR // 2] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        svc.convert_file(tmp_path / "nan.wav", out, "alto", f0_predictor="pm")
    sf.write(tmp_path / "ok.wav", _song(2.0), SR)
    with pytest.raises(SpeakerError):
        svc.convert_file(tmp_path / "ok.wav", out, "nobody", f0_predictor="pm")
    with pytest.raises(AudioError, match="minutes long"):
        svc.convert_file(tmp_path / "ok.wav", out, "alto", f0_predictor="pm", max_seconds=1.0)
    sf.write(tmp_path / "whole.flac", _song(4.0), SR)
    data = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])  # header promises more than the file holds
    with pytest.raises(AudioError, match="cut.flac.*truncated or corrupt"):
        svc.convert_file(tmp_path / "cut.flac", out, "alto", f0_predictor="pm")
    before = (tmp_path / "ok.wav").read_bytes()
    with pytest.raises(AudioError, match="'ok.wav' is the input file"):  # also through another spelling of it
        svc.convert_file(tmp_path / "ok.wav", tmp_path / ".." / tmp_path.name / "ok.wav", "alto", f0_predictor="pm")
    assert (tmp_path / "ok.wav").read_bytes() == before
    with pytest.raises(AudioError, match="is a folder"):
        svc.convert_file(tmp_path / "ok.wav", tmp_path, "alto", f0_predictor="pm")
    assert open_samples(tmp_path / "junk.wav") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.flac", "junk.wav", "nan.wav", "ok.wav", "quiet.wav",
                                                          "whole.flac"]


def test_a_failure_midway_removes_the_partial_file(svc, tmp_path):
    sf.write(tmp_path / "song.wav", _song(7.0), SR)

    def stop_after_first_piece(fraction, message):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        svc.convert_file(tmp_path / "song.wav", tmp_path / "out.wav", "alto", f0_predictor="pm",
                         progress=stop_after_first_piece)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.wav"]


def test_cache_false_stores_no_features(voice, tmp_path):
    svc = Svc(voice.model, voice.config, encoder_path=str(voice.encoder))
    sf.write(tmp_path / "song.wav", _song(4.0), SR)
    svc.convert_file(tmp_path / "song.wav", tmp_path / "a.wav", "alto", f0_predictor="pm", cache=False)
    assert svc.cache._bytes == 0 and svc.cache.hits == 0
    svc.convert_file(tmp_path / "song.wav", tmp_path / "b.wav", "alto", f0_predictor="pm")
    stored = svc.cache._bytes
    assert stored > 0
    svc.convert_file(tmp_path / "song.wav", tmp_path / "c.wav", "alto", f0_predictor="pm", transpose=2)
    assert svc.cache.hits > 0 and not svc.cache.paused


def test_a_truncated_wav_is_converted_as_far_as_it_goes_with_a_warning(svc, tmp_path, caplog):
    whole = tmp_path / "whole.wav"
    sf.write(whole, _song(6.0), SR, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:44 + int(2.5 * SR) * 2])  # the header still promises 6 s
    with caplog.at_level("WARNING", logger="svc_core"):
        result = svc.convert_file(cut, tmp_path / "out.wav", "alto", f0_predictor="pm")
    assert result.streamed and abs(result.seconds - 2.5) < 0.01
    assert "'cut.wav' ends early: 2.5 of 6.0 s could be read" in caplog.text
