"""`load_retrieval(path)`: open a cluster or feature-retrieval file, telling the kind from its first bytes."""
from __future__ import annotations

import os

from ..errors import ModelError
from .base import Retriever
from .faiss_index import load_index_file, load_index_pickle
from .kmeans import load_kmeans

ZIP_MAGIC = b"PK\x03\x04"  # torch.save (zip format, torch >= 1.6)
# torch.save legacy format: a protocol-2 pickle of the long 0x1950a86a20f9469cfc6c first
LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
PICKLE_PROTO = b"\x80"  # protocol >= 2 pickles start with PROTO
FAISS_FOURCC_LEAD = b"I"  # faiss.write_index files start with a fourcc such as b"IwFl" or b"IxF2"
KIND_BY_EXTENSION = {".pt": "kmeans", ".pth": "kmeans", ".pkl": "faiss", ".index": "faiss_single"}


def detect_kind(path: str) -> str | None:
    """"kmeans", "faiss" (pickled dict of indexes), "faiss_single" (.index file) or None when unknown."""
    with open(path, "rb") as fh:
        head = fh.read(len(LEGACY_TORCH_MAGIC))
    if head.startswith(ZIP_MAGIC) or head.startswith(LEGACY_TORCH_MAGIC):
        return "kmeans"
    if head.startswith(PICKLE_PROTO):
        return "faiss"
    if len(head) >= 4 and head.startswith(FAISS_FOURCC_LEAD) and head[:4].isalnum():
        return "faiss_single"
    return None


def load_retrieval(path: str | os.PathLike) -> Retriever:
    """Open `kmeans_*.pt`, `feature_and_index.pkl` or a single faiss `.index` file as a Retriever.

    The kind comes from the file's content; the extension only shapes the error message when neither fits.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelError(f"Cluster/retrieval file '{path}' does not exist or is not a file.")
    if os.path.getsize(path) == 0:
        raise ModelError(f"Cluster/retrieval file '{path}' is empty (0 bytes); the copy probably failed.")
    kind = detect_kind(path)
    if kind == "kmeans":
        return load_kmeans(path)
    if kind == "faiss":
        return load_index_pickle(path)
    if kind == "faiss_single":
        return load_index_file(path)
    hint = KIND_BY_EXTENSION.get(os.path.splitext(path)[1].lower())
    named = {"kmeans": "a k-means cluster file", "faiss": "a feature index pickle",
             "faiss_single": "a faiss .index file"}
    expected = f"Its name suggests {named[hint]}, but its content is not. " if hint else ""
    raise ModelError(
        f"'{os.path.basename(path)}' is not a known cluster/retrieval file. {expected}Use a so-vits-svc "
        "kmeans_*.pt (cluster_model), a feature_and_index.pkl (feature retrieval) or a faiss .index file."
    )
