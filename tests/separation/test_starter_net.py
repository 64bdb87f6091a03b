"""The built-in separation network: the shipped weights load and really separate a generated song (an unseen
test-split voice, soundfont and programs), chunked == whole away from chunk edges, stems sum to the mixture,
damaged weights -> clear errors, and training from nothing writes a loadable, resumable run."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from svc_core.errors import ModelError, SvcError
from svc_core.separation import get_separator
from svc_core.separation.starter_net import DEFAULT_WEIGHTS, MaskNet, NetConfig, StarterSeparator, load_weights, \
    save_weights
from svc_core.separation.train_net import TrainSettings, sdr_db, train

MAX_WEIGHTS_BYTES = 30 * 1024 * 1024
TINY = NetConfig(hidden=8, dilations=(1, 2))
SONG_SECONDS = 6.0
TEST_SONG = 0  # a test-split clip (flite kal) rendered with TimGM6mb (a quick soundfont to load)
QUALITY_SONGS = (0, 1, 2, 3)  # test-split clips (voices, programs, soundfonts the network never saw)
MIN_MEAN_GAIN_DB = 4.0  # vocals SDR over the mixture as is, mean over QUALITY_SONGS (shipped weights: ~7.5)
MIN_GAIN_DB = 1.5  # ... and on every one of them (shipped weights: 2.4 at the least)


def need_generator():
    missing = [t for t in ("fluidsynth", "flite", "espeak-ng", "festival") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs the Debian tools {', '.join(missing)} (.ci/run installs them)")
    from svc_core.separation.mixtures import splits

    try:
        splits.soundfonts_for("test")
    except SvcError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def song():
    need_generator()
    from svc_core.separation.mixtures import make_song

    return make_song("test", TEST_SONG, seconds=SONG_SECONDS)


@pytest.fixture(scope="module")
def starter():
    return get_separator("starter")


def test_shipped_weights_are_small_and_described():
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size <= MAX_WEIGHTS_BYTES
    net, info = load_weights(DEFAULT_WEIGHTS)
    assert isinstance(net, MaskNet) and info["steps"] > 0 and info["minutes"] > 0


def test_separates_unseen_songs_well_above_the_mixture(song, starter):
    from svc_core.separation.mixtures import make_song

    gains, accompaniment_gains = [], []
    for index in QUALITY_SONGS:
        clip = song if index == TEST_SONG else make_song("test", index, seconds=SONG_SECONDS)
        stems = starter.separate(clip.mixture, clip.sample_rate)
        assert stems.vocals.shape == clip.mixture.shape and stems.separator
        assert np.allclose(stems.vocals + stems.accompaniment, clip.mixture, atol=1e-5)
        gains.append(sdr_db(clip.vocals, stems.vocals) - sdr_db(clip.vocals, clip.mixture))
        accompaniment_gains.append(sdr_db(clip.accompaniment, stems.accompaniment)
                                   - sdr_db(clip.accompaniment, clip.mixture))
    assert min(gains) > MIN_GAIN_DB and np.mean(gains) > MIN_MEAN_GAIN_DB, gains
    assert np.mean(accompaniment_gains) > 1.0, accompaniment_gains


def test_chunked_equals_whole_away_from_chunk_edges(song, starter):
    whole = starter.separate_chunk(song.mixture)["vocals"]
    chunked = StarterSeparator()
    chunked.chunk_seconds, chunked.overlap_seconds = 2.5, 0.5  # multiples of the 10 ms hop
    out = chunked.separate(song.mixture, song.sample_rate).vocals
    sr = song.sample_rate
    margin = int(0.6 * sr)  # > half the receptive field (0.39 s) + the STFT window
    edges = [int(2.5 * sr), int(2.0 * sr) + int(2.5 * sr), int((SONG_SECONDS - 2.5) * sr)]
    keep = np.ones(song.mixture.shape[1], bool)
    for edge in edges + [int(2.0 * sr), int(4.0 * sr)]:  # chunk starts and ends
        keep[max(0, edge - margin):edge + margin] = False
    assert keep.sum() > sr
    assert np.max(np.abs(out[:, keep] - whole[:, keep])) < 1e-4
    assert np.max(np.abs(out - whole)) > 0  # the edges do differ: the comparison is not trivial


def test_no_model_file_and_silence(starter):
    with pytest.raises(SvcError, match="takes no model file"):
        get_separator("starter", model_path="x.onnx")
    quiet = starter.separate_chunk(np.zeros((2, 44100), np.float32))
    assert np.all(np.isfinite(quiet["vocals"])) and np.max(np.abs(quiet["vocals"])) < 1e-6


def test_damaged_weights_give_clear_errors(tmp_path):
    good = tmp_path / "good.pt"
    save_weights(MaskNet(TINY), good, {"steps": 1})
    net, _ = load_weights(good)
    assert net.config == TINY
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="truncated.pt"):
        StarterSeparator(weights=truncated)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all" * 10)
    with pytest.raises(ModelError, match="garbage.pt"):
        load_weights(garbage)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ModelError):
        load_weights(empty)
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(3)}, other)
    with pytest.raises(ModelError, match="not a starter separation weights file"):
        load_weights(other)
    doc = torch.load(good, weights_only=True)
    del doc["state_dict"]["out.weight"]
    torch.save(doc, tmp_path / "missing.pt")
    with pytest.raises(ModelError, match="complete starter separation network"):
        load_weights(tmp_path / "missing.pt")
    doc = torch.load(good, weights_only=True)
    doc["state_dict"]["inp.bias"][0] = float("nan")
    torch.save(doc, tmp_path / "nan.pt")
    with pytest.raises(ModelError, match="non-finite"):
        load_weights(tmp_path / "nan.pt")


def test_training_from_nothing_writes_weights_and_resumes(tmp_path):
    need_generator()
    from svc_core.separation.mixtures.writer import SetSettings, write_set

    write_set(SetSettings(str(tmp_path / "pool"), "train", n=2, seconds=2.0, subtype="PCM_16"))
    settings = TrainSettings(str(tmp_path / "pool"), str(tmp_path / "run"), max_minutes=0.02, budget_minutes=1.0,
                             batch=2, crop_seconds=1.0, hidden=8, eval_dir=str(tmp_path / "pool"), eval_clips=1)
    out = train(settings)
    net, info = load_weights(out)
    assert info["steps"] >= 1 and net.config.hidden == 8 and info["eval"]["clips"] == 2
    first = info["steps"]
    train(settings)
    _, info = load_weights(out)
    assert info["steps"] > first  # resumed from state.pt, not restarted
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert any(row.get("final") for row in log)
