"""faiss feature indexes: upstream pickle layout, safe loading, and the (1/d)^2 retrieval math (spec e.2)."""
from __future__ import annotations

import json
import os
import pickle
import pickletools

import faiss
import numpy as np
import pytest

from svc_core.errors import ModelError, SpeakerError, UnsafeFileError
from svc_core.retrieval import (FaissRetriever, build_faiss_index, load_index_pickle, load_retrieval,
                                neighbour_weights, save_index_pickle)

DIM = 16
ROWS = 780  # n_ivf = min(int(16 * sqrt(780)) = 446, 780 // 39 = 20) = 20


def pickle_globals(data: bytes) -> set[tuple[str, str]]:
    """(module, name) of every global a pickle references (GLOBAL and STACK_GLOBAL)."""
    found, strings = set(), []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(arg)
        elif op.name == "GLOBAL":
            found.add(tuple(arg.split(" ", 1)))
        elif op.name == "STACK_GLOBAL":
            found.add((strings[-2], strings[-1]))
    return found


def brute_force_mix(feats, stored, ratio, k=8):
    """Exact kNN in float64 and upstream's weighting: w = (1/d)^2 / sum, d = squared L2."""
    d2 = ((feats[:, None, :].astype(np.float64) - stored[None].astype(np.float64)) ** 2).sum(-1)
    ids = np.argsort(d2, axis=1)[:, :k]
    d = np.take_along_axis(d2, ids, axis=1)
    w = (1.0 / d) ** 2
    w /= w.sum(axis=1, keepdims=True)
    retrieved = (stored[ids] * w[:, :, None]).sum(axis=1)
    return ratio * retrieved + (1 - ratio) * feats


@pytest.fixture(scope="module")
def speaker_rows():
    rng = np.random.default_rng(3001)
    return {0: rng.standard_normal((ROWS, DIM)).astype(np.float32),
            1: (rng.standard_normal((ROWS, DIM)) + 2.0).astype(np.float32)}


@pytest.fixture(scope="module")
def index_file(tmp_path_factory, speaker_rows):
    path = tmp_path_factory.mktemp("index") / "feature_and_index.pkl"
    save_index_pickle(path, {spk: build_faiss_index(rows, seed=spk) for spk, rows in speaker_rows.items()})
    return path


def test_built_index_follows_upstream_rules(speaker_rows):
    index = build_faiss_index(speaker_rows[0], seed=0)
    assert type(index).__name__ == "IndexIVFFlat"
    assert (index.d, index.ntotal, index.nlist, index.nprobe) == (DIM, ROWS, 20, 1)


def test_n_ivf_of_the_upstream_manifest(manifests_dir):
    manifest = json.loads((manifests_dir / "feature_and_index_full_hubertsoft.json").read_text())
    spk = manifest["top_level"]["0"]
    rows = np.random.default_rng(0).standard_normal((spk["ntotal"], 4)).astype(np.float32)
    index = build_faiss_index(rows)  # 4 dims instead of 256 keeps it cheap; n_ivf only depends on the rows
    assert (type(index).__name__, index.ntotal, index.nlist, index.nprobe) == (
        spk["faiss_type"], spk["ntotal"], spk["nlist"], spk["nprobe"])


def test_pickle_layout_and_its_only_global(index_file):
    data = index_file.read_bytes()
    assert pickle_globals(data) == {("faiss.swigfaiss", "IndexIVFFlat")}
    retriever = load_retrieval(index_file)
    assert isinstance(retriever, FaissRetriever) and retriever.kind == "faiss"
    assert retriever.speakers == (0, 1) and retriever.dim == DIM
    for spk in (0, 1):
        index = retriever.indexes[spk]
        assert (type(index).__name__, index.ntotal, index.nlist, index.nprobe) == ("IndexIVFFlat", ROWS, 20, 1)


def test_reconstructed_vectors_are_the_training_rows(index_file, speaker_rows):
    stored = load_retrieval(index_file).vectors(1)
    assert stored.shape == (ROWS, DIM)
    order = np.lexsort(stored.T)
    np.testing.assert_array_equal(stored[order], speaker_rows[1][np.lexsort(speaker_rows[1].T)])


def test_mix_matches_brute_force_when_search_is_exhaustive(tmp_path, speaker_rows):
    index = build_faiss_index(speaker_rows[1], seed=4)
    index.nprobe = index.nlist  # every list searched: faiss returns the exact 8 nearest neighbours
    path = tmp_path / "exhaustive.pkl"
    save_index_pickle(path, {3: index})
    feats = np.random.default_rng(11).standard_normal((30, DIM)).astype(np.float32) + 2.0
    out = load_retrieval(path).mix(feats, "spk", 3, 0.6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, brute_force_mix(feats, speaker_rows[1], 0.6), rtol=1e-4, atol=1e-5)


def test_mix_with_upstream_nprobe_uses_faiss_neighbours(index_file):
    retriever = load_retrieval(index_file)
    feats = np.random.default_rng(12).standard_normal((25, DIM)).astype(np.float32)
    d, ids = retriever.indexes[0].search(feats, 8)
    assert (ids >= 0).all()
    w = (1.0 / d.astype(np.float64)) ** 2
    w /= w.sum(axis=1, keepdims=True)
    expected = 0.25 * (retriever.vectors(0)[ids] * w[:, :, None]).sum(1) + 0.75 * feats
    np.testing.assert_allclose(retriever.mix(feats, "spk0", 0, 0.25), expected, rtol=1e-5, atol=1e-6)


def test_ratio_edges(index_file, speaker_rows):
    retriever = load_retrieval(index_file)
    feats = speaker_rows[0][:10] + 0.01
    assert retriever.mix(feats, "spk0", 0, 0.0) is feats
    full = retriever.mix(feats, "spk0", 0, 1.0)
    assert np.isfinite(full).all() and not np.allclose(full, feats)


def test_zero_distance_frames_take_the_exact_match(index_file, speaker_rows):
    feats = speaker_rows[0][:12].copy()  # every query is a stored vector: d == 0 for it
    out = load_retrieval(index_file).mix(feats, "spk0", 0, 1.0)
    np.testing.assert_array_equal(out, feats)


def test_neighbour_weights_guards():
    d = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.4e38], [5.0, 5.0, 5.0]], dtype=np.float32)
    ids = np.array([[4, 5, 6], [1, 2, -1], [-1, -1, -1]])
    w = neighbour_weights(d, ids)
    np.testing.assert_array_equal(w[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(w[1], [0.8, 0.2, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(w[2], [0.0, 0.0, 0.0])


def test_unknown_speaker_id_lists_known_ones(index_file):
    with pytest.raises(SpeakerError, match="0, 1"):
        load_retrieval(index_file).mix(np.zeros((2, DIM), np.float32), "bob", 7, 0.5)


def test_feature_dim_mismatch(index_file):
    with pytest.raises(ModelError, match="holds 16-dim features; the model uses 768-dim vec768l12 features"):
        load_retrieval(index_file).check_dim(768, "vec768l12")


class _RunsShell:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_forbidden_global_next_to_a_real_index_is_refused(tmp_path, speaker_rows):
    marker = tmp_path / "pwned"
    path = tmp_path / "feature_and_index.pkl"
    payload = {0: build_faiss_index(speaker_rows[0]), 1: _RunsShell(f"touch {marker}")}
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafeFileError, match="system"):
        load_retrieval(path)
    assert not marker.exists()


def test_codecs_encode_is_only_allowed_for_latin1(tmp_path):
    path = tmp_path / "codec.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vx\nVrot13\ntR.")  # protocol 0: _codecs.encode("x", "rot13")
    with pytest.raises(UnsafeFileError):
        load_index_pickle(path)


def test_class_name_must_match_the_serialized_index(tmp_path, speaker_rows):
    data = pickle.dumps({0: build_faiss_index(speaker_rows[0])}, protocol=2)  # text GLOBAL opcode
    forged = data.replace(b"faiss.swigfaiss\nIndexIVFFlat\n", b"faiss.swigfaiss_avx2\nIndexFlatL2\n")
    assert forged != data
    path = tmp_path / "forged.pkl"
    path.write_bytes(forged)
    with pytest.raises(ModelError, match="claims to be IndexFlatL2"):
        load_index_pickle(path)
    # the same bytes under the avx2 module name and the true class load fine
    path.write_bytes(data.replace(b"faiss.swigfaiss\n", b"faiss.swigfaiss_avx2\n"))
    assert load_index_pickle(path).indexes[0].ntotal == ROWS


def test_single_index_file_serves_every_speaker(tmp_path, index_file):
    pickled = load_retrieval(index_file)
    path = tmp_path / "added_spk0.index"
    faiss.write_index(pickled.indexes[0], str(path))
    single = load_retrieval(path)
    assert single.kind == "faiss_single" and single.speakers == () and single.dim == DIM
    feats = np.random.default_rng(13).standard_normal((9, DIM)).astype(np.float32)
    np.testing.assert_array_equal(single.mix(feats, "anyone", 42, 0.5), pickled.mix(feats, "spk0", 0, 0.5))


def test_truncated_index_file_is_a_model_error(tmp_path, index_file):
    path = tmp_path / "broken.index"
    faiss.write_index(load_retrieval(index_file).indexes[0], str(path))
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ModelError):
        load_retrieval(path)


def test_unknown_file_kind(tmp_path):
    path = tmp_path / "notes.pkl"
    path.write_text("hello, not an index")
    with pytest.raises(ModelError, match="feature index pickle"):
        load_retrieval(path)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        load_retrieval(empty)
