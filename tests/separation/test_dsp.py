"""The DSP baselines: REPET-SIM and HPSS separate a synthetic song better than the mixture as is; their options,
edge cases and errors."""
import librosa
import numpy as np
import pytest

from separation_songs import synthetic_song
from svc_core.errors import OptionError, SvcError
from svc_core.separation import get_separator
from svc_core.separation.dsp import HpssSeparator, RepetSimSeparator, median_of_frames, similar_frames
from svc_core.separation.metrics import score_stem

SR = 44100
MARGIN_DB = 1.0  # loose: each baseline must beat the mixture as is by at least this much (SDR, dB)


@pytest.fixture(scope="module")
def song():
    """12 s: a non-repeating harmonic voice 6 dB under a one-bar drum + bass loop (it repeats every 2 s)."""
    vocals, accompaniment = synthetic_song(12, SR, seed=0, vocal_db=-6.0, parts=("drums", "bass"), bars=1)
    return vocals, accompaniment, vocals + accompaniment


@pytest.mark.parametrize("name", ["repet-sim", "hpss"])
def test_each_baseline_beats_the_mixture_as_is(song, name):
    vocals, accompaniment, mixture = song
    stems = get_separator(name).separate(mixture, SR)
    assert stems.vocals.shape == stems.accompaniment.shape == mixture.shape
    assert np.allclose(stems.vocals + stems.accompaniment, mixture, atol=1e-5)  # the stems sum to the song
    floor, got = score_stem(vocals, mixture, SR).sdr, score_stem(vocals, stems.vocals, SR).sdr
    assert got > floor + MARGIN_DB, (name, floor, got)
    # the accompaniment is already 6 dB over the voice in the mixture; it must not get much worse
    floor, got = score_stem(accompaniment, mixture, SR).sdr, score_stem(accompaniment, stems.accompaniment, SR).sdr
    assert got > floor - 2.0, (name, floor, got)


def test_repet_sim_background_is_librosas_nn_filter():
    """Our neighbour search + blocked median == librosa.decompose.nn_filter (cosine, median, nearest k)."""
    mag = np.random.default_rng(0).random((40, 300)).astype(np.float32) ** 3
    for k, width in ((None, 10), (7, 25)):
        ref = librosa.decompose.nn_filter(mag, aggregate=np.median, metric="cosine", width=width, k=k,
                                          mode="distance")
        k = k or 2 * int(np.ceil(np.sqrt(300 - 2 * width + 1)))
        assert np.array_equal(median_of_frames(mag, similar_frames(mag, k, width), block=17), ref)


@pytest.mark.parametrize("cls", [RepetSimSeparator, HpssSeparator])
def test_silence_short_and_mono_input(cls):
    sep = cls()
    silent = sep.separate(np.zeros((2, SR), np.float32), SR)
    assert not np.any(silent.vocals) and not np.any(silent.accompaniment)
    tiny = np.random.default_rng(1).standard_normal(300).astype(np.float32) * 0.1  # mono, 7 ms
    stems = sep.separate(tiny, SR)
    assert stems.vocals.shape == (2, 300) and np.all(np.isfinite(stems.vocals))
    stems = sep.separate(np.random.default_rng(2).standard_normal((1, 2 * 22050)).astype(np.float32), 22050)
    assert stems.vocals.shape == (2, 2 * 22050) and stems.sample_rate == 22050  # resampled to 44.1 kHz and back


def test_options_and_model_files_are_checked():
    with pytest.raises(SvcError, match="takes no model file"):
        get_separator("hpss", model_path="x.onnx")
    with pytest.raises(OptionError, match="vocals_part"):
        HpssSeparator(vocals_part="drums")
    with pytest.raises(OptionError, match="repet-sim"):
        RepetSimSeparator(neighbors=3)
    with pytest.raises(OptionError, match="neighbours must be at least 1"):
        RepetSimSeparator(neighbours=0)
    with pytest.raises(OptionError, match="must be > 0"):
        RepetSimSeparator(power=0)
    assert "harmonic" in HpssSeparator().label and HpssSeparator(vocals_part="percussive").vocals_part == "percussive"
