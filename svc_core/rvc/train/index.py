"""RVC's feature index of an experiment (infer-web.py `train_index`), written in its layout:

    <exp>/total_fea.npy                                        the (shuffled) rows the index was trained on
    <exp>/trained_IVF{n}_Flat_nprobe_1_{name}_{version}.index  trained, empty
    <exp>/added_IVF{n}_Flat_nprobe_1_{name}_{version}.index    trained and filled: the file voices ship

Rows: every 3_feature<C>/*.npy of the experiment (sorted), shuffled; above 200 000 rows replaced by 10 000 k-means
centres; n = min(int(16 sqrt(N)), N // 39), nprobe 1 -- svc_core.retrieval.build_faiss_index does all of it.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import OptionError
from ...retrieval import build_faiss_index
from .layout import ExperimentLayout

log = logging.getLogger("svc_core.train")
TOTAL_FEATURES = "total_fea.npy"


def index_name(kind: str, n_ivf: int, name: str, version: str) -> str:
    """RVC's index file name; kind "trained" or "added"."""
    return f"{kind}_IVF{n_ivf}_Flat_nprobe_1_{name}_{version}.index"


def experiment_features(layout: ExperimentLayout) -> np.ndarray:
    """All content frames of the experiment, float32 [N, C] (the mute pieces are not in 3_feature*)."""
    files = sorted(layout.features.glob("*.npy")) if layout.features.is_dir() else []
    if not files:
        raise OptionError(f"'{layout.features}' holds no features; prepare the experiment (extract features) first.")
    rows = [np.load(f, allow_pickle=False).astype(np.float32) for f in files]
    dims = {r.shape[1] for r in rows if r.ndim == 2}
    if len(dims) != 1 or any(r.ndim != 2 for r in rows):
        raise OptionError(f"The features in '{layout.features}' do not share one [frames, C] shape "
                          f"(widths {sorted(dims)}); prepare the experiment again.")
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


def train_rvc_index(exp_dir: str | Path, version: str = "v2", name: str | None = None, seed: int = 0) -> Path:
    """Build the experiment's index files; returns the added_*.index path."""
    layout = ExperimentLayout(Path(exp_dir), version)
    name = name or layout.name
    feats = experiment_features(layout)
    written: dict[str, int] = {}

    def on_trained(index: Any, rows: np.ndarray) -> None:
        import faiss  # imported by build_faiss_index already (which names faiss-cpu when it is missing)

        np.save(layout.root / TOTAL_FEATURES, rows, allow_pickle=False)
        n_ivf = faiss.extract_index_ivf(index).nlist
        written["n_ivf"] = n_ivf
        faiss.write_index(index, str(layout.root / index_name("trained", n_ivf, name, version)))

    log.info(f"training the feature index on {feats.shape[0]} frames of {feats.shape[1]} dims")
    index = build_faiss_index(feats, seed=seed, on_trained=on_trained)
    import faiss

    out = layout.root / index_name("added", written["n_ivf"], name, version)
    faiss.write_index(index, str(out))
    log.info(f"wrote {out.name} ({index.ntotal} vectors)")
    return out
