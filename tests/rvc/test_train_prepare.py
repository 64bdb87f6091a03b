"""RVC training data: the experiment folder (pieces, f0, features, filelist, config), the index, the discriminator,
and the messages for bad input. Real encoders (a tiny ContentVec-layout checkpoint) and real f0 (Praat)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from rvc_train_factories import tiny_encoder, tiny_settings, write_recordings
from svc_core.errors import AudioError, EncoderMismatchError, OptionError
from svc_core.rvc.train.discriminator import PERIODS, rvc_discriminator
from svc_core.rvc.f0 import coarse_pitch
from svc_core.rvc.train.index import train_rvc_index
from svc_core.rvc.train.layout import FilelistEntry
from svc_core.rvc.train.prepare import prepare_experiment
from svc_core.rvc.train.slicing import PIECE_SECONDS, piece_bounds
from svc_core.retrieval import load_retrieval


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return tiny_encoder(tmp_path_factory.mktemp("enc") / "checkpoint_best_legacy_500.pt")


@pytest.fixture(scope="module")
def experiment(tmp_path_factory, encoder):
    root = tmp_path_factory.mktemp("rvc")
    data = write_recordings(root / "raw", ("alto", "tenor"), seconds=4.5)
    settings = tiny_settings(data, root / "exp", encoder)
    return settings, prepare_experiment(settings)


def test_the_experiment_folder_has_rvcs_layout(experiment):
    settings, summary = experiment
    layout = summary.layout
    assert summary.speakers == {"alto": 0, "tenor": 1}
    pieces = sorted(p.stem for p in layout.gt_wavs.glob("*.wav"))
    assert pieces and {p.split("_")[0] for p in pieces} == {"alto", "tenor"}
    for piece in pieces:
        files = layout.piece_files(piece)
        gt, sr = sf.read(str(files["gt"]), dtype="float32")
        assert sr == 40000 and 0.5 * sr <= gt.shape[0] <= PIECE_SECONDS * sr + 1
        assert sf.info(str(files["gt"])).subtype == "FLOAT"  # RVC writes float32 pieces
        assert np.max(np.abs(gt)) <= 0.9 + 1e-4  # RVC's peak blend never exceeds its 0.9 target
        wav16, sr16 = sf.read(str(files["16k"]), dtype="float32")
        assert sr16 == 16000 and abs(wav16.shape[0] - gt.shape[0] * 16000 / 40000) <= 2
        hz, coarse = np.load(files["hz"]), np.load(files["coarse"])
        assert hz.shape == coarse.shape == (wav16.shape[0] // 160,)  # pm: p_len frames
        assert coarse.dtype == np.int64 and np.array_equal(coarse, coarse_pitch(hz))
        assert np.all(coarse[hz == 0] == 1)  # unvoiced stays 0 Hz, coarse bin 1 (RVC: no interpolation)
        voiced = hz > 0
        assert 0.3 < voiced.mean() < 1.0  # the melody is voiced, its pauses are not
        assert np.all((hz[voiced] > 200) & (hz[voiced] < 360))  # the generated notes: 220-330 Hz with vibrato
        feats = np.load(files["feature"])
        assert feats.dtype == np.float32 and feats.shape[1] == 256
        assert abs(feats.shape[0] - wav16.shape[0] / 320) <= 2  # 50 frames/s


def test_the_filelist_and_config_follow_rvc(experiment):
    settings, summary = experiment
    layout = summary.layout
    lines = layout.filelist.read_text().splitlines()
    entries = [FilelistEntry.parse(line, f0=True) for line in lines]
    mute = [e for e in entries if e.wav.parent.parent.name == "mute"]
    assert sorted(e.sid for e in mute) == [0, 0, 1, 1]  # RVC adds two mute lines per speaker
    assert len(entries) - len(mute) == summary.pieces
    for e in entries:
        assert e.wav.is_file() and e.feature.is_file() and e.coarse.is_file() and e.hz.is_file()
        assert e.coarse.name == e.hz.name == e.wav.name + ".npy"
        assert e in mute or e.sid == summary.speakers[e.wav.stem.split("_")[0]]
    config = json.loads(layout.config.read_text())
    assert config["data"]["sampling_rate"] == 40000 and config["data"]["hop_length"] == 400
    assert config["data"]["filter_length"] == 2048 and config["data"]["n_mel_channels"] == 125
    assert config["model"]["upsample_rates"] == [10, 10, 2, 2] and config["model"]["spk_embed_dim"] == 109
    assert config["train"]["segment_size"] == 8 * 400 and config["train"]["c_mel"] == 45
    assert config["spk"] == {"alto": 0, "tenor": 1}
    assert config["svc_studio"]["encoder"] == "vec256l9" and config["svc_studio"]["f0_method"] == "pm"


def test_rerunning_keeps_every_file_and_refuses_other_settings(experiment):
    settings, summary = experiment
    files = sorted(summary.layout.root.rglob("*.npy"))
    before = {f: f.stat().st_mtime_ns for f in files}
    again = prepare_experiment(settings)
    assert again.pieces == summary.pieces
    assert {f: f.stat().st_mtime_ns for f in files} == before
    other = tiny_settings(settings.data_dir, settings.out_dir, settings.encoder_path, sample_rate="48k")
    with pytest.raises(OptionError, match="sr '40k' -> '48k'"):
        prepare_experiment(other)


def test_the_index_is_rvcs_and_loads(experiment):
    settings, summary = experiment
    layout = summary.layout
    n = sum(np.load(f).shape[0] for f in layout.features.glob("*.npy"))
    n_ivf = min(int(16 * math.sqrt(n)), n // 39)
    added = train_rvc_index(layout.root, "v1")
    assert added.name == f"added_IVF{n_ivf}_Flat_nprobe_1_exp_v1.index"
    assert (layout.root / f"trained_IVF{n_ivf}_Flat_nprobe_1_exp_v1.index").is_file()
    assert np.load(layout.root / "total_fea.npy").shape == (n, 256)
    import faiss

    trained = faiss.read_index(str(layout.root / f"trained_IVF{n_ivf}_Flat_nprobe_1_exp_v1.index"))
    assert trained.is_trained and trained.ntotal == 0
    retriever = load_retrieval(added)
    assert retriever.kind == "faiss_single" and retriever.dim == 256 and retriever.indexes[0].ntotal == n
    assert faiss.extract_index_ivf(retriever.indexes[0]).nprobe == 1


def test_pieces_are_cut_as_rvc_cuts():
    sr = 1000
    assert piece_bounds(3900, sr) == [(0, 3900)]  # up to 4.0 s: one piece
    assert piece_bounds(10000, sr) == [(0, 3700), (3400, 7100), (6800, 10000)]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_discriminator_has_rvcs_periods_and_keys(version):
    d = rvc_discriminator(version, width_divisor=32)
    assert [sub.period for sub in list(d.discriminators)[1:]] == list(PERIODS[version])
    keys = d.upstream_state_dict()
    last = len(PERIODS[version])
    assert f"discriminators.{last}.convs.0.weight_g" in keys and f"discriminators.{last + 1}.convs.0.weight_g" \
        not in keys
    real, fake, _, _ = d(torch.randn(1, 1, 1600), torch.randn(1, 1, 1600))
    assert len(real) == len(fake) == last + 1


def test_bad_inputs_get_clear_messages(tmp_path, encoder):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AudioError, match="No audio found"):
        prepare_experiment(tiny_settings(empty, tmp_path / "e1", encoder))
    silent = tmp_path / "silent" / "spk"
    silent.mkdir(parents=True)
    sf.write(str(silent / "a.wav"), np.zeros(44100 * 3, np.float32), 44100)
    with pytest.raises(AudioError, match="No training piece"):
        prepare_experiment(tiny_settings(silent.parent, tmp_path / "e2", encoder))
    data = write_recordings(tmp_path / "raw")
    with pytest.raises(EncoderMismatchError, match="needs 768"):
        prepare_experiment(tiny_settings(data, tmp_path / "e3", encoder, version="v2", encoder="vec256l9"))
    with pytest.raises(OptionError, match="must not be the data folder"):
        prepare_experiment(tiny_settings(data, data, encoder))
    with pytest.raises(OptionError, match="--speaker 'bass' is not in the data"):
        prepare_experiment(tiny_settings(data, tmp_path / "e4", encoder, speaker="bass"))
    with pytest.raises(OptionError, match="RVC training takes the f0 predictors pm, harvest"):
        prepare_experiment(tiny_settings(data, tmp_path / "e6", encoder, f0_method="dio"))
    with pytest.raises(OptionError, match="--sr must be one of"):
        prepare_experiment(tiny_settings(data, tmp_path / "e5", encoder, sample_rate="44k"))
