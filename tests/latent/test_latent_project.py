"""Projections: PCA (exact), UMAP on a small set (umap-learn, seeded), out-of-sample placement, no-pickle files."""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.errors import OptionError
from svc_core.latent import project
from svc_core.latent.project import Projection, fit_projection, knn_place, pca_basis


def blobs(n: int = 150, dim: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs 8 units apart in `dim` dimensions; labels 0 / 1."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2 * n, dim)).astype(np.float32)
    x[n:, :3] += 8.0
    return x, np.repeat([0, 1], n)


def test_pca_is_exact_and_places_new_frames_linearly(tmp_path):
    x, y = blobs()
    proj = fit_projection(x, "pca")
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:2].T
    # same axes up to sign (pca_basis fixes the sign by each axis' largest coefficient)
    assert np.allclose(np.abs(proj.coords), np.abs(expected), atol=1e-3)
    assert np.allclose(proj.place(x), proj.coords, atol=1e-5)
    assert abs(proj.coords[y == 0, 0].mean() - proj.coords[y == 1, 0].mean()) > 10  # the blobs split on axis 1
    path = tmp_path / "p.npz"
    proj.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays only
        assert set(data.files) == {"proj_meta", "proj_mean", "proj_basis", "proj_coords", "proj_reduced"}
    back = Projection.load(path)
    assert back.method == "pca" and np.array_equal(back.place(x[:5]), proj.place(x[:5]))


@pytest.mark.skipif(not project.umap_available(), reason="umap-learn is not installed")
def test_umap_separates_blobs_and_places_out_of_sample():
    x, y = blobs(n=100)
    proj = fit_projection(x, "umap", seed=0)
    assert proj.method == "umap" and proj.coords.shape == (len(x), 2) and proj.reduced.shape[1] == x.shape[1]
    c0, c1 = proj.coords[y == 0].mean(0), proj.coords[y == 1].mean(0)
    spread = max(np.linalg.norm(proj.coords[y == k] - proj.coords[y == k].mean(0), axis=1).mean() for k in (0, 1))
    assert np.linalg.norm(c0 - c1) > 3 * spread  # two separate islands
    new, new_y = blobs(n=20, seed=5)
    placed = proj.place(new)
    near_own = [np.linalg.norm(p - (c1 if k else c0)) < np.linalg.norm(p - (c0 if k else c1))
                for p, k in zip(placed, new_y)]
    assert all(near_own)
    assert np.allclose(proj.place(x[:10]), proj.coords[:10], atol=1e-3)  # a reference frame lands on itself


def test_umap_missing_falls_back_to_pca_with_a_note(monkeypatch):
    monkeypatch.setattr(project, "umap_available", lambda: False)
    x, _ = blobs(n=20)
    proj = fit_projection(x, "umap")
    assert proj.method == "pca" and "umap-learn is not installed" in proj.notes[0]


def test_bad_requests_are_messages():
    x, _ = blobs(n=20)
    with pytest.raises(OptionError, match="method"):
        fit_projection(x, "tsne")
    with pytest.raises(OptionError, match="at least"):
        fit_projection(x[:2], "pca")
    proj = fit_projection(x, "pca")
    with pytest.raises(OptionError, match="another content encoder"):
        proj.place(np.zeros((3, 7), np.float32))


def test_knn_place_weights_by_inverse_distance():
    ref = np.array([[0.0], [1.0], [10.0]], np.float32)
    coords = np.array([[0, 0], [1, 0], [5, 5]], np.float32)
    out = knn_place(ref, coords, np.array([[0.25]], np.float32), k=2)
    # distances 0.25 and 0.75 -> weights 3:1
    assert np.allclose(out, [[0.25, 0.0]])
    mean, basis = pca_basis(np.array([[0, 0], [2, 0], [4, 0.1]], np.float32), 1)
    assert np.allclose(np.abs(basis[0]), [1, 0], atol=0.05) and basis[0][0] > 0


@pytest.mark.skipif(not project.umap_available(), reason="umap-learn is not installed")
def test_umap_landmarks_place_the_other_frames():
    x, y = blobs(n=100)
    proj = fit_projection(x, "umap", seed=0, max_fit=60)
    assert proj.coords.shape == (200, 2) and "60 of 200" in proj.notes[0]
    c0, c1 = proj.coords[y == 0].mean(0), proj.coords[y == 1].mean(0)
    own = [np.linalg.norm(p - (c1 if k else c0)) < np.linalg.norm(p - (c0 if k else c1))
           for p, k in zip(proj.coords, y)]
    assert all(own)  # placed frames land with their own blob
