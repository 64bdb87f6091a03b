"""Dataset reading rules, the train-index command and the train command's option wiring."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.cli import main
from svc_core.config import load_config
from svc_core.retrieval import load_retrieval
from svc_core.train.settings import TrainSettings
from svc_core.train.dataset import DatasetError, SvcDataset, collate, load_f0
from svc_core.train.mel import linear_spectrogram


def test_dataset_items_match_the_contract(tiny_data):
    config = load_config(tiny_data / "config.json")
    train = SvcDataset(tiny_data, config, "train")
    val = SvcDataset(tiny_data, config, "val", random_crop=False)  # val.txt holds relative paths
    assert len(train) == 4 and len(val) == 2
    item = train[0]
    t = item["f0"].shape[0]
    assert item["c"].shape == (config.model.ssl_dim, t) and item["spec"].shape == (1025, t)
    assert item["wav"].shape == (1, t * 512) and item["spk"] in (0, 1)
    batch = collate([train[0], train[3]])
    assert batch.lengths.tolist() == sorted(batch.lengths.tolist(), reverse=True)
    assert batch.c.shape[-1] == batch.lengths.max() and batch.wav.shape[-1] == batch.c.shape[-1] * 512
    assert batch.spk.shape == (2, 1) and batch.spk.dtype == torch.long


def test_long_clips_are_cropped_like_upstream(tmp_path):
    from train_factories import build_dataset

    data = build_dataset(tmp_path / "d", n_speakers=1, clips_per_speaker=2, seconds=(9.5, 9.5))
    config = load_config(data / "config.json")
    item = SvcDataset(data, config, "train")[0]
    assert item["c"].shape[-1] == 790 and item["wav"].shape[-1] == 790 * 512
    assert SvcDataset(data, config, "train", random_crop=False)[0]["c"].shape[-1] > 800
    short = SvcDataset(data, config, "train", crop_frames=256)[0]  # the starter model's shorter window
    assert short["c"].shape[-1] == 256 and short["spec"].shape[-1] == 256 and short["wav"].shape[-1] == 256 * 512
    assert TrainSettings.from_config(config).crop_frames == 790


def test_pickled_upstream_f0_cache_is_refused(tmp_path):
    path = tmp_path / "x.wav.f0.npy"
    np.save(path, np.array([np.zeros(5), np.ones(5)], dtype=object), allow_pickle=True)
    with pytest.raises(DatasetError, match="re-run preprocessing"):
        load_f0(path)


def test_spectrogram_contract():
    wav = torch.randn(44100) * 0.1
    spec = linear_spectrogram(wav)
    assert spec.shape == (1025, 44100 // 512)
    frame = torch.nn.functional.pad(wav[None, None], (768, 768), mode="reflect")[0, 0, 512 * 3: 512 * 3 + 2048]
    ref = torch.fft.rfft(frame * torch.hann_window(2048)).abs()
    assert torch.allclose(spec[:, 3], torch.sqrt(ref ** 2 + 1e-6), rtol=1e-4, atol=1e-4)


def test_train_index_kmeans_and_faiss(tiny_data, tmp_path):
    km, fi = tmp_path / "kmeans_8.pt", tmp_path / "feature_and_index.pkl"
    assert main(["train-index", "--data", str(tiny_data), "--kind", "kmeans", "--clusters", "8", "-o", str(km)]) == 0
    assert main(["train-index", "--data", str(tiny_data), "--kind", "faiss", "-o", str(fi)]) == 0
    kmeans = load_retrieval(km)
    assert sorted(kmeans.speakers) == ["spk0", "spk1"] and kmeans.dim == 256
    centers = torch.load(km, weights_only=False)["spk0"]["cluster_centers_"]
    assert centers.shape == (8, 256)
    for kind, name in (("kmeans", "G_100.pth"), ("kmeans", "G_100.pt"), ("faiss", "kmeans_8.pt")):
        assert main(["train-index", "--data", str(tiny_data), "--kind", kind, "-o", str(tmp_path / name)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feature_and_index.pkl", "kmeans_8.pt"]
    faiss_r = load_retrieval(fi)
    assert sorted(faiss_r.speakers) == [0, 1] and faiss_r.dim == 256
    feats = np.random.default_rng(0).standard_normal((10, 256)).astype(np.float32)
    assert faiss_r.mix(feats, "spk1", 1, 0.5).shape == (10, 256)


def test_kmeans_on_a_frame_sample(tiny_data, tmp_path, capsys):
    """--max-frames fits the centres on a seeded random sample of each speaker's frames."""
    from svc_core.train.index import speaker_features, speaker_folders

    n = speaker_features(speaker_folders(tiny_data)["spk0"]).shape[0]
    km = tmp_path / "kmeans_4.pt"
    assert main(["train-index", "--data", str(tiny_data), "--kind", "kmeans", "--clusters", "4", "--max-frames",
                 str(n // 2), "-o", str(km)]) == 0
    assert f"{n // 2} of {n} frames drawn" in capsys.readouterr().out
    assert torch.load(km, weights_only=False)["spk0"]["cluster_centers_"].shape == (4, 256)


def test_train_command_maps_options(tiny_data, tmp_path, monkeypatch):
    seen = {}

    class FakeTrainer:
        def __init__(self, data, out, settings):
            seen.update(data=data, out=out, settings=settings)
            from svc_core.train.ddp import DistInfo

            self.dist = DistInfo()

        def fit(self):
            from svc_core.train.trainer import TrainSummary

            return TrainSummary(step=7, epoch=1)

    monkeypatch.setattr("svc_core.train.trainer.Trainer", FakeTrainer)
    out = tmp_path / "run"
    code = main(["train", "--data", str(tiny_data), "--out", str(out), "--steps", "7", "--batch-size", "3",
                 "--eval-interval", "5", "--keep-best", "2", "--resume", "--base", "g.pth", "d.pth"])
    s = seen["settings"]
    assert code == 0 and seen["out"] == str(out)
    assert (s.steps, s.batch_size, s.eval_interval, s.keep_best, s.resume, s.base) == (7, 3, 5, 2, True,
                                                                                     ("g.pth", "d.pth"))
    assert s.segment_frames == 8 and s.learning_rate == 1e-4 and s.device == "cpu"  # from config.json
