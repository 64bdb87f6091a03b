"""RVC voice folders for the web tests: RVC-layout model files with random weights (tests/rvc_factories.py) and
faiss indexes in RVC's layout (IVF, Flat, written with faiss.write_index as RVC's train_index does)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rvc_factories import make_rvc_model

INDEX_ROWS = 256  # feature vectors in a test index
INDEX_LISTS = 4  # IVF lists (RVC: min(16 sqrt(n), n / 39))


def make_rvc_index(path: Path, dim: int, seed: int = 0) -> Path:
    """An IVF-Flat faiss index of random `dim`-d vectors at `path` (RVC's added_*.index layout)."""
    import faiss

    vectors = np.random.default_rng(seed).standard_normal((INDEX_ROWS, dim)).astype(np.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, INDEX_LISTS)
    index.train(vectors)
    index.add(vectors)
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))
    return path


def index_name(name: str, version: str) -> str:
    return f"added_IVF{INDEX_LISTS}_Flat_nprobe_1_{name}_{version}.index"


def rvc_voice_folder(models: Path, name: str, version: str = "v1", sr: str = "40k", f0: bool = True,
                     index: bool = True, kind: str = "rvc-small", seed: int = 0) -> Path:
    """models/<name>/<name>.pth (or G_200.pth + config.json for kind "rvc-training") and, with `index`, its
    added_*.index of the model's width. v1 models take vec256l9 features (the web tests' ContentVec gives them)."""
    folder = models / name
    model = folder / ("G_200.pth" if kind == "rvc-training" else f"{name}.pth")
    make_rvc_model(model, version=version, sr=sr, f0=f0, kind=kind, seed=seed)
    if index:
        make_rvc_index(folder / index_name(name, version), 256 if version == "v1" else 768, seed=seed)
    return folder
