"""K-means cluster files: upstream layout, nearest-centre lookup and the mixing math (spec e.1)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import svc_core.retrieval.kmeans as kmeans_mod
from svc_core.errors import ModelError, OptionError, SpeakerError
from svc_core.retrieval import (KMeansRetriever, load_kmeans, load_retrieval, nearest_centers, save_kmeans,
                                train_kmeans)
from svc_core.safe_load import load_torch

DIM = 256
N_CLUSTERS = 64


def describe(value):
    """The manifest's description of a loaded object (dicts, ints and ndarrays)."""
    if isinstance(value, dict):
        return {"dict": {k: describe(v) for k, v in value.items()}}
    if isinstance(value, np.ndarray):
        return {"ndarray": list(value.shape), "dtype": str(value.dtype)}
    return {"type": type(value).__name__, "value": value}


@pytest.fixture(scope="module")
def cluster_file(tmp_path_factory):
    """Two speakers like manifests/kmeans_small_hubertsoft_64.json: 64 centres fitted on 2000 x 256 N(0, 1)."""
    rng = np.random.default_rng(2001)
    centers = {}
    for k, name in enumerate(("spk0", "spk1")):
        feats = rng.standard_normal((2000, DIM)).astype(np.float32)
        centers[name] = train_kmeans(feats, N_CLUSTERS, seed=k, max_iter=20, init="random")
    path = tmp_path_factory.mktemp("cluster") / "kmeans_64.pt"
    save_kmeans(path, centers, n_threads=2)
    return path, centers


def test_layout_matches_upstream_manifest(cluster_file, manifests_dir):
    path, _ = cluster_file
    manifest = json.loads((manifests_dir / "kmeans_small_hubertsoft_64.json").read_text())
    raw = load_torch(path, what="cluster file")
    layout = {spk: describe(entry) for spk, entry in raw.items()}
    assert layout == manifest["top_level"]


def test_saved_centres_round_trip(cluster_file):
    path, centers = cluster_file
    retriever = load_retrieval(path)
    assert isinstance(retriever, KMeansRetriever) and retriever.kind == "kmeans"
    assert retriever.dim == DIM and retriever.speakers == ("spk0", "spk1")
    for name, c in centers.items():
        np.testing.assert_array_equal(retriever.centers[name], c)


def test_nearest_centers_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((300, 24)).astype(np.float32)
    feats = rng.standard_normal((257, 24)).astype(np.float32)
    monkeypatch.setattr(kmeans_mod, "DISTANCE_BLOCK_ELEMENTS", 300 * 10)  # 10 frames per block, ragged tail
    d2 = ((feats[:, None, :].astype(np.float64) - centers[None].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_array_equal(nearest_centers(feats, centers), d2.argmin(axis=1))


def test_mix_math(cluster_file):
    path, centers = cluster_file
    retriever = load_retrieval(path)
    feats = np.random.default_rng(7).standard_normal((40, DIM)).astype(np.float32)
    c = centers["spk1"].astype(np.float64)
    labels = ((feats[:, None, :] - c[None]) ** 2).sum(-1).argmin(axis=1)
    out = retriever.mix(feats, "spk1", 1, 0.3)
    assert out.dtype == np.float32 and out.shape == feats.shape
    np.testing.assert_allclose(out, 0.3 * c[labels] + 0.7 * feats, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(retriever.mix(feats, "spk1", 1, 1.0), centers["spk1"][labels])


def test_ratio_edges_and_range(cluster_file):
    retriever = load_retrieval(cluster_file[0])
    feats = np.ones((5, DIM), dtype=np.float32)
    assert retriever.mix(feats, "spk0", 0, 0.0) is feats
    assert retriever.mix(feats, "not-a-speaker", 9, 0) is feats  # nothing looked up when nothing is mixed
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(OptionError):
            retriever.mix(feats, "spk0", 0, bad)


def test_unknown_speaker_lists_known_ones(cluster_file):
    retriever = load_retrieval(cluster_file[0])
    with pytest.raises(SpeakerError, match="spk0, spk1"):
        retriever.mix(np.zeros((3, DIM), np.float32), "alice", 0, 0.5)


def test_feature_dim_mismatch(cluster_file):
    retriever = load_retrieval(cluster_file[0])
    with pytest.raises(ModelError, match="holds 256-dim features; the model uses 768-dim vec768l12 features"):
        retriever.check_dim(768, "vec768l12")
    with pytest.raises(ModelError, match="holds 256-dim features; the model uses 768-dim features"):
        retriever.mix(np.zeros((3, 768), np.float32), "spk0", 0, 0.5)
    retriever.check_dim(DIM, "hubertsoft")


def test_checkpoint_is_not_a_cluster_file(tmp_path):
    path = tmp_path / "G_0.pth"
    torch.save({"model": {"emb_g.weight": torch.zeros(2, 4)}, "iteration": 0}, path)
    with pytest.raises(ModelError, match="not a so-vits-svc cluster file"):
        load_kmeans(path)


def test_inconsistent_declared_dim_is_refused(tmp_path):
    path = tmp_path / "kmeans.pt"
    torch.save({"spk0": {"n_features_in_": 768, "_n_threads": 1,
                         "cluster_centers_": np.zeros((4, 256), np.float32)}}, path)
    with pytest.raises(ModelError, match="damaged"):
        load_kmeans(path)


def test_legacy_torch_format_is_detected(tmp_path, cluster_file):
    path = tmp_path / "kmeans_legacy.pt"
    torch.save({"spk0": {"n_features_in_": DIM, "_n_threads": 4, "cluster_centers_": cluster_file[1]["spk0"]}},
               path, _use_new_zipfile_serialization=False)
    retriever = load_retrieval(path)
    assert retriever.kind == "kmeans" and retriever.speakers == ("spk0",)


def test_train_kmeans_needs_enough_frames():
    with pytest.raises(OptionError):
        train_kmeans(np.zeros((5, 3), np.float32), 10)
