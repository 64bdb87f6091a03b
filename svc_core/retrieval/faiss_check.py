"""Check a serialized faiss index (IndexFlat*, IndexIVFFlat) against its own length before faiss reads it.

faiss's reader sizes each vector from a count in the bytes and allocates it before reading: a 93-byte IndexFlat
declaring 4 G floats makes faiss zero 16 GB of memory, then fail. The layouts below are faiss's
(faiss/impl/index_write.cpp, 1.7 to 1.15): every count is checked against the bytes that remain, and the walk must
end exactly at the blob's end, so faiss never allocates more than the file holds.
"""
from __future__ import annotations

import mmap
import struct

from ..errors import FileLimitError, ModelError
from ..file_limits import MAX_FAISS_DIM, MAX_FAISS_LISTS, format_size

FLAT_FOURCCS = (b"IxF2", b"IxFI", b"IxFl")  # IndexFlatL2, IndexFlatIP, IndexFlat
IVF_FLAT_FOURCC = b"IwFl"
ARRAY_LISTS, FULL_SIZES, SPARSE_SIZES = b"ilar", b"full", b"sprs"
HASHTABLE_MAP = 2  # DirectMap::Hashtable
FLOAT_BYTES, ID_BYTES, SIZE_BYTES = 4, 8, 8


class _Blob:
    def __init__(self, data: bytes | mmap.mmap, what: str) -> None:
        self.data = data  # bytes, or a memory-mapped file: only the headers' pages are touched
        self.at = 0
        self.what = what

    def broken(self, problem: str) -> ModelError:
        return ModelError(f"{self.what} is not a plain faiss IVF-Flat or Flat index ({problem}); it is damaged or "
                          "was written by another tool.")

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.at + size > len(self.data):
            raise self.broken("it ends early")
        value = struct.unpack_from(fmt, self.data, self.at)[0]
        self.at += size
        return value

    def fourcc(self) -> bytes:
        if self.at + 4 > len(self.data):
            raise self.broken("it ends early")
        self.at += 4
        return bytes(self.data[self.at - 4 : self.at])

    def payload(self, count: int, width: int, name: str) -> None:
        """Skip `count` items of `width` bytes, refusing a count the remaining bytes cannot hold."""
        need = count * width
        left = len(self.data) - self.at
        if need > left:
            raise FileLimitError(f"{self.what} declares {name} of {format_size(need)} but only {format_size(left)} "
                                 "follow: refused before faiss reads it.")
        self.at += need

    def vector(self, width: int, name: str) -> int:
        count = self.take("<Q")
        self.payload(count, width, name)
        return count


def _header(blob: _Blob) -> int:
    """write_index_header: d, ntotal, two dummies, is_trained, metric (and its argument past L2/IP); returns d."""
    d = blob.take("<i")
    ntotal = blob.take("<q")
    blob.take("<q"), blob.take("<q"), blob.take("<B")
    metric = blob.take("<i")
    if metric > 1:
        blob.take("<f")
    if not 0 < d <= MAX_FAISS_DIM or ntotal < 0:
        raise blob.broken(f"dimension {d}, {ntotal} vectors")
    return d


def _flat(blob: _Blob) -> None:
    d = _header(blob)
    count = blob.vector(FLOAT_BYTES, "stored vectors")
    if count % d:
        raise blob.broken(f"{count} floats do not make {d}-dim vectors")


def _ivf_flat(blob: _Blob) -> None:
    d = _header(blob)
    nlist = blob.take("<Q")
    blob.take("<Q")  # nprobe
    if not 0 < nlist <= MAX_FAISS_LISTS:
        raise FileLimitError(f"{blob.what} declares {nlist:,} inverted lists (limit {MAX_FAISS_LISTS:,}): refused "
                             "before faiss reads it.")
    if blob.fourcc() not in FLAT_FOURCCS:
        raise blob.broken("its coarse quantizer is not a flat index")
    _flat(blob)
    map_type = blob.take("<B")
    blob.vector(ID_BYTES, "a direct map")
    if map_type == HASHTABLE_MAP:
        blob.vector(2 * ID_BYTES, "a direct-map hashtable")
    if blob.fourcc() != ARRAY_LISTS:
        raise blob.broken("its inverted lists are not stored inline")
    if blob.take("<Q") != nlist or blob.take("<Q") != d * FLOAT_BYTES:
        raise blob.broken("its inverted lists do not match the index")
    kind = blob.fourcc()
    start = blob.at
    if kind == FULL_SIZES:
        count = blob.vector(SIZE_BYTES, "list sizes")
        if count != nlist:
            raise blob.broken("it lists the wrong number of list sizes")
        sizes = struct.unpack_from(f"<{count}Q", blob.data, start + SIZE_BYTES)
    elif kind == SPARSE_SIZES:
        count = blob.vector(SIZE_BYTES, "list sizes")
        pairs = struct.unpack_from(f"<{count}Q", blob.data, start + SIZE_BYTES)
        sizes = pairs[1::2]
        if count % 2 or any(i >= nlist for i in pairs[0::2]):
            raise blob.broken("its sparse list sizes are malformed")
    else:
        raise blob.broken(f"unknown list-size layout {kind!r}")
    for size in sizes:
        blob.payload(size, d * FLOAT_BYTES + ID_BYTES, "an inverted list")


def check_faiss_blob(data: bytes | mmap.mmap, what: str) -> None:
    """Refuse (FileLimitError / ModelError) a serialized index whose counts exceed its bytes or whose layout is
    not a Flat or IVF-Flat index; `what` names it in messages ("the index for speaker 0 in 'x.pkl'")."""
    blob = _Blob(data, what)
    fourcc = blob.fourcc()
    if fourcc in FLAT_FOURCCS:
        _flat(blob)
    elif fourcc == IVF_FLAT_FOURCC:
        _ivf_flat(blob)
    else:
        raise blob.broken(f"it starts with {fourcc!r}")
    if blob.at != len(blob.data):
        raise blob.broken(f"{len(blob.data) - blob.at:,} bytes follow the index")
