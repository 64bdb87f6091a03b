"""run_chunked: chunk placement, exact joins, progress, cancellation, bad separators; chunked HPSS (and the
starter network, when it is in the build) equals whole-song separation away from the chunk edges."""
import numpy as np
import pytest

from separation_songs import synthetic_song
from svc_core import cancel
from svc_core.errors import SvcError
from svc_core.separation.chunks import chunk_starts, fade_in, run_chunked
from svc_core.separation.dsp import HOP


def _identity(audio):
    return {"vocals": audio.copy(), "accompaniment": -audio}


@pytest.mark.parametrize("n, chunk, overlap, starts", [
    (50, 100, 10, [0]),  # shorter than a chunk: one short chunk
    (100, 100, 10, [0]),  # exactly one chunk
    (280, 100, 10, [0, 90, 180]),  # exact multiple of the step: the last chunk is not duplicated
    (250, 100, 10, [0, 90, 150]),  # the last chunk is moved back to end at n
])
def test_chunk_starts(n, chunk, overlap, starts):
    assert chunk_starts(n, chunk, overlap) == starts
    assert all(s + chunk <= max(n, chunk) for s in starts)


def test_bad_chunking_is_refused():
    for chunk, overlap in ((0, 0), (10, 10), (10, -1)):
        with pytest.raises(ValueError):
            chunk_starts(100, chunk, overlap)


@pytest.mark.parametrize("n", [1, 37, 100, 280, 251, 999])
def test_identity_separator_gives_the_input_back(n):
    """The crossfade gains sum to 1 in every overlap (also the wider one before a moved-back last chunk)."""
    audio = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    calls = []
    out = run_chunked(_identity, audio, 100, 10, lambda done, total: calls.append((done, total)))
    np.testing.assert_allclose(out["vocals"], audio, atol=1e-6)
    np.testing.assert_allclose(out["accompaniment"], -audio, atol=1e-6)
    total = len(chunk_starts(n, 100, 10))
    assert calls == [(i + 1, total) for i in range(total)]
    ramp = fade_in(10)
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)


def test_cancelling_stops_between_chunks():
    class Recorder(cancel.Watch):
        def __init__(self):
            super().__init__()
            self.steps = []

        def on_step(self, piece, stage, fraction):
            self.steps.append((stage, round(fraction, 3)))

    audio = np.zeros((2, 1000), np.float32)
    watch, seen = Recorder(), []

    def separate(chunk):
        seen.append(chunk.shape[1])
        if len(seen) == 2:
            watch.cancel("stopped by the user")
        return _identity(chunk)

    with cancel.watching(watch), pytest.raises(cancel.ConversionCancelled, match="stopped by the user"):
        run_chunked(separate, audio, 100, 10)
    assert len(seen) == 2  # no chunk after the cancel
    assert watch.steps == [("separation", 0.0), ("separation", round(1 / len(chunk_starts(1000, 100, 10)), 3))]
    finished = Recorder()
    with cancel.watching(finished):
        run_chunked(_identity, audio, 400, 100)
    assert finished.steps == [("separation", 0.0), ("separation", 0.333), ("separation", 0.667), ("separation", 1.0)]


def test_a_separator_returning_wrong_shapes_is_a_clear_bug_report():
    audio = np.zeros((2, 300), np.float32)
    with pytest.raises(SvcError, match="returned vocals of shape"):
        run_chunked(lambda a: {"vocals": a[:, :-1], "accompaniment": a}, audio, 100, 10)
    names = iter([("vocals",), ("vocals", "drums")])
    with pytest.raises(SvcError, match="new stem 'drums' mid-song"):
        run_chunked(lambda a: {k: a for k in next(names)}, audio, 200, 10)


def _local_separator(name, tmp_path):
    """(separator, STFT hop, reach in samples: how far an output sample's inputs lie) of a chunk-local separator;
    the starter network with seeded random weights (locality does not depend on the training)."""
    from svc_core.separation import get_separator, separator_status

    if separator_status()[name] is not None:
        pytest.skip(f"{name} cannot run here: {separator_status()[name]}")
    if name == "hpss":
        sep = get_separator(name)
        return sep, HOP, (sep.kernel_frames // 2 + 4) * HOP + 2048  # the median filter's reach, the STFT window
    import torch

    from svc_core.separation.starter_net import MaskNet, NetConfig, StarterSeparator, save_weights

    torch.manual_seed(0)
    save_weights(MaskNet(NetConfig(hidden=32)), tmp_path / "random.pt")
    sep = StarterSeparator(weights=tmp_path / "random.pt")
    config = sep.net.config  # starter: a convolutional mask network with a finite receptive field
    return sep, config.hop, (config.receptive_frames // 2 + 4) * config.hop + config.n_fft


@pytest.mark.parametrize("name", ["hpss", "starter"])
def test_chunked_equals_whole_song_away_from_chunk_edges(name, tmp_path):
    """Chunk length, step and the moved-back last start on the STFT hop grid: every output sample that only
    chunks far (their reach) from their own edges contributed to equals the whole-song separation's."""
    sep, hop, margin = _local_separator(name, tmp_path)
    sr = sep.sample_rate
    chunk, overlap = 200 * hop, 40 * hop  # hpss: 2.3 s, 0.46 s
    n = chunk + 3 * (chunk - overlap) + 70 * hop  # 4 steps: the last chunk moved back by a whole number of hops
    vocals, accompaniment = synthetic_song(n / sr + 0.1, sr, seed=3)
    audio = np.ascontiguousarray((vocals + accompaniment)[:, :n])
    starts = chunk_starts(n, chunk, overlap)
    assert len(starts) == 5 and all(s % hop == 0 for s in starts) and starts[-1] - starts[-2] < chunk - overlap
    whole = sep.separate_chunk(audio)
    chunked = run_chunked(sep.separate_chunk, audio, chunk, overlap)

    def near_edge(piece):  # 1 within `margin` of the chunk's edges, through the same crossfades
        flag = np.zeros(piece.shape[1], np.float32)
        flag[:margin], flag[-margin:] = 1, 1
        return {"edge": np.broadcast_to(flag, piece.shape).copy()}

    interior = run_chunked(near_edge, audio, chunk, overlap)["edge"][0] == 0
    assert interior.sum() > n / 4  # the comparison covers a good part of the song
    for stem in ("vocals", "accompaniment"):
        np.testing.assert_allclose(chunked[stem][:, interior], whole[stem][:, interior], atol=1e-4)
        assert np.abs(chunked[stem] - whole[stem]).max() > 1e-3  # the edges do differ: the test can see it
