"""Crafted files for the limit tests: zip bombs (torch .pth, .npz), pickles that build too much, faiss blobs and
ONNX files that declare more than they hold. Each is made here, in a few milliseconds, from real formats."""
from __future__ import annotations

import io
import pickle
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True)
class Member:
    """One zip member as written: name, stored bytes, declared unpacked size, method, CRC-32."""

    name: str
    data: bytes
    file_size: int
    method: int = zipfile.ZIP_STORED
    crc: int = 0


def zeros_deflated(n_bytes: int, head: bytes = b"") -> bytes:
    """A raw deflate stream that inflates to `head` followed by zeros, `n_bytes` in all (n_bytes - len(head) a
    multiple of 1 MiB). Built from one compressed MiB repeated (full flushes make the blocks independent), so
    4 GiB take 4 MB and a few milliseconds."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    lead = first.compress(head) + first.flush(zlib.Z_FULL_FLUSH) if head else b""
    block = zlib.compressobj(9, zlib.DEFLATED, -15)
    one_mib = block.compress(bytes(MiB)) + block.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(n_bytes - len(head), MiB)
    assert rest == 0
    return lead + one_mib * count + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def write_zip(path: Path, members: list[Member], *, central_copies: int = 1) -> Path:
    """A zip64 archive written byte by byte, so members may declare what we like (zipfile computes sizes itself).

    The CRC is not checked before the data is inflated, so a bomb needs no right one. central_copies > 1 lists
    every member that many times in the directory, pointing at the same data (overlapping members).
    """
    out = io.BytesIO()
    central = []
    for m in members:
        offset = out.tell()
        name = m.name.encode()
        extra = struct.pack("<HHQQ", 1, 16, m.file_size, len(m.data))
        out.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, m.method, 0, 0, m.crc, 0xFFFFFFFF, 0xFFFFFFFF,
                              len(name), len(extra)) + name + extra + m.data)
        for copy in range(central_copies):  # copies get names of their own and point at the same data
            listed = name if copy == 0 else name + f".{copy}".encode()
            extra = struct.pack("<HHQQQ", 1, 24, m.file_size, len(m.data), offset)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, m.method, 0, 0, m.crc,
                                       0xFFFFFFFF, 0xFFFFFFFF, len(listed), len(extra), 0, 0, 0, 0, 0xFFFFFFFF)
                           + listed + extra)
    cd_offset = out.tell()
    out.write(b"".join(central))
    cd_size = out.tell() - cd_offset
    eocd64 = out.tell()
    n = len(central)
    out.write(struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, cd_size, cd_offset))
    out.write(struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1))
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0))
    path.write_bytes(out.getvalue())
    return path


def torch_members(obj: object) -> list[Member]:
    """The members torch.save writes for `obj` (stored, as torch writes them)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as archive:
        return [Member(i.filename, archive.read(i), i.file_size, zipfile.ZIP_STORED, i.CRC) for i in archive.infolist()]


def small_state() -> dict:
    return {"model": {"emb_g.weight": torch.randn(2, 8), "pre.weight": torch.randn(8, 16, 5),
                      "enc_p.proj.weight": torch.randn(16, 8, 1)}, "iteration": 0, "learning_rate": 1e-4}


def torch_with_pickle(path: Path, data_pkl: bytes | None = None, *, inflates_to: int = 0) -> Path:
    """A real small checkpoint whose data.pkl is replaced: by `data_pkl` (stored), or by a deflated stream of
    zeros that inflates to `inflates_to` bytes (a zip bomb)."""
    members = []
    for m in torch_members(small_state()):
        if m.name.endswith("/data.pkl"):
            if inflates_to:
                m = Member(m.name, zeros_deflated(inflates_to), inflates_to, zipfile.ZIP_DEFLATED)
            else:
                m = Member(m.name, data_pkl, len(data_pkl), zipfile.ZIP_STORED, zlib.crc32(data_pkl))
        members.append(m)
    return write_zip(path, members)


def many_members(path: Path, count: int) -> Path:
    """A zip of `count` empty members (a directory bomb: each costs a parsed entry, the file ~100 bytes)."""
    return write_zip(path, [Member(f"archive/data/{i}", b"", 0) for i in range(count)])


def instruction_bomb(pairs: int, numbered: bool = False) -> bytes:
    """A protocol-4 pickle that builds `pairs` empty lists, each kept in the memo: 2 bytes of stream per ~180
    bytes of memory. numbered: protocol 2's LONG_BINPUT instead of MEMOIZE (torch's unpickler takes only that)."""
    if numbered:
        return b"\x80\x02" + b"".join(b"]r" + struct.pack("<I", i) for i in range(pairs)) + b"N."
    return b"\x80\x04" + b"]\x94" * pairs + b"N."


def call_pickle(module: str, name: str, *args: int) -> bytes:
    """A protocol-2 pickle of module.name(*args), e.g. builtins.bytearray(4_000_000_000): a few bytes asking
    an allow-listed constructor for gigabytes."""
    ints = b"".join(b"\x8a" + bytes([len(b)]) + b for b in (a.to_bytes(8, "little", signed=True) for a in args))
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"(" + ints + b"tR.")


def npz_bomb(path: Path, inflates_to: int) -> Path:
    """An .npz whose x.npy is a float64 header for the whole member followed by zeros, deflated."""
    count = (inflates_to - 128) // 8
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (count,)})
    head = header.getvalue()
    head += bytes(128 - len(head))  # pad to 128 bytes so the rest is whole MiBs of zeros
    size = 128 + count * 8
    size -= (size - 128) % MiB
    return write_zip(path, [Member("x.npy", zeros_deflated(size, head), size, zipfile.ZIP_DEFLATED)])


def npz_header_lie(path: Path, claimed: tuple[int, ...]) -> Path:
    """A stored .npz whose x.npy header claims `claimed` float64 elements over 16 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": claimed})
    data = header.getvalue() + bytes(16)
    return write_zip(path, [Member("x.npy", data, len(data), zipfile.ZIP_STORED, zlib.crc32(data))])


def _small_flat_index():
    import faiss

    index = faiss.IndexFlatL2(4)
    index.add(np.zeros((3, 4), dtype=np.float32))
    return index


FLAT_COUNT_OFFSET = 4 + 4 + 8 + 8 + 8 + 1 + 4  # fourcc, d, ntotal, two dummies, is_trained, metric


def faiss_blob_claiming(floats: int) -> bytes:
    """A real IndexFlatL2 blob whose vector count says `floats` floats (faiss would allocate them first)."""
    import faiss

    blob = bytearray(faiss.serialize_index(_small_flat_index()))
    struct.pack_into("<Q", blob, FLAT_COUNT_OFFSET, floats)
    return bytes(blob)


def feature_index_pickle(path: Path, blob: bytes) -> Path:
    """feature_and_index.pkl as faiss pickles it ({0: index}), with the index's bytes replaced by `blob` (of the
    same length as a 3 x 4 IndexFlatL2's)."""
    import faiss

    index = _small_flat_index()
    original = bytes(faiss.serialize_index(index))
    data = pickle.dumps({0: index})
    assert len(blob) == len(original) and data.count(original) == 1
    path.write_bytes(data.replace(original, blob))
    return path


# ------------------------------------------------------------------------------------------- ONNX (wire format)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def onnx_empty_nodes(path: Path, count: int) -> Path:
    """A ModelProto whose graph holds `count` empty NodeProtos: 2 bytes each in the file, a parsed message each
    in memory (onnx.load would build them all)."""
    graph = b"\x0a\x00" * count
    path.write_bytes(b"\x08\x08" + b"\x3a" + _varint(len(graph)) + graph)
    return path


def onnx_model(path: Path, initializer, sparse=None) -> Path:
    """A valid one-node model (ReduceSum over initializer 'w') built with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("ReduceSum", ["w"], ["out"], keepdims=0)
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("out", TensorProto.FLOAT, [])],
                              initializer=[initializer] if initializer is not None else [],
                              sparse_initializer=[sparse] if sparse is not None else [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.save(model, str(path))
    return path


def raw_tensor(dims: list[int], raw: bytes, name: str = "w"):
    """A float TensorProto declaring `dims` over `raw` (onnx.helper refuses mismatches, so it is set by hand)."""
    from onnx import TensorProto

    t = TensorProto()
    t.name, t.data_type = name, TensorProto.FLOAT
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def external_tensor(dims: list[int], location: str, length: int | None = None, offset: int = 0):
    from onnx import TensorProto

    t = TensorProto()
    t.name, t.data_type = "w", TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", str(offset)),
                       ("length", str(length if length is not None else 4 * int(np.prod(dims))))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    return t
