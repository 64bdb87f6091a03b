"""Crafted files that would unpack, unpickle or parse into far more than they hold are refused first
(FileLimitError), from the headers alone; real files still load. Bombs are made in the test (tests/safety/bombs.py).

Refusals are timed and the time printed (run with -s), not asserted. That nothing was decompressed, unpickled or
parsed is asserted by replacing the decompressor, torch.load, the unpickler, faiss and onnx with functions that
fail the test when called.
"""
from __future__ import annotations

import json
import pickle
import time
import zipfile
import zlib

import numpy as np
import pytest
import torch

from safety import bombs
from svc_core import file_limits as limits
from svc_core import safe_load
from svc_core.errors import FileLimitError, ModelError, UnsafeFileError


def _never(what: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{what} was called before the refusal")
    return fail


@pytest.fixture
def guard(monkeypatch):
    """guard(): from now on, fail the test if torch.load or the restricted unpickler runs, and (unless
    members=True) if any zip member is even opened. Tests call it once their bomb is made."""
    def activate(members: bool = False) -> None:
        if not members:
            monkeypatch.setattr(zipfile, "_get_decompressor", _never("opening a zip member"))
        monkeypatch.setattr(torch, "load", _never("torch.load"))
        monkeypatch.setattr(safe_load, "_AllowListUnpickler", _never("the restricted unpickler"))
    return activate


def _refused(call, *args, match: str) -> str:
    start = time.perf_counter()
    with pytest.raises(FileLimitError, match=match) as info:
        call(*args)
    print(f"refused in {1000 * (time.perf_counter() - start):.1f} ms: {info.value}")
    return str(info.value)


# ------------------------------------------------------------------------------------------- torch zip


def test_data_pkl_zip_bomb_is_refused_from_the_directory(tmp_path, guard):
    from svc_core.checkpoint import read_generator_state

    bomb = bombs.torch_with_pickle(tmp_path / "G_1000.pth", inflates_to=4 * bombs.GiB)
    assert bomb.stat().st_size < 5 * bombs.MiB
    guard()
    message = _refused(read_generator_state, bomb, match="would unpack")
    assert message.startswith("'G_1000.pth' would unpack to 4.0 GiB (limit 3 GiB, file is 4.1 MiB)")
    assert "zip bomb" in message


def test_the_bomb_is_real(tmp_path):
    """Control: the member does inflate to zeros for as long as the directory says (8 MiB read here)."""
    bomb = bombs.torch_with_pickle(tmp_path / "G_1000.pth", inflates_to=4 * bombs.GiB)
    with zipfile.ZipFile(bomb) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("data.pkl"))
        assert info.file_size == 4 * bombs.GiB
        with archive.open(info) as member:
            assert member.read(8 * bombs.MiB) == bytes(8 * bombs.MiB)


def test_compression_ratio_is_limited_below_the_absolute_cap(tmp_path, guard):
    from svc_core.safe_load import load_torch

    bomb = bombs.torch_with_pickle(tmp_path / "kmeans_10000.pt", inflates_to=512 * bombs.MiB)
    guard()
    message = _refused(load_torch, bomb, "cluster file", match="would unpack to 512.0 MiB")
    assert f"more than {limits.MAX_COMPRESSION_RATIO} times its size" in message


def test_one_member_compressed_far_beyond_the_ratio_is_refused(tmp_path, guard):
    """A big honest member hides a bomb from the whole-file ratio; the member's own ratio still counts."""
    honest = bytes(200 * bombs.MiB)  # stored: ratio 1
    members = [bombs.Member("archive/data/0", honest, len(honest)),
               bombs.Member("archive/data/1", bombs.zeros_deflated(600 * bombs.MiB), 600 * bombs.MiB,
                            zipfile.ZIP_DEFLATED)]
    path = bombs.write_zip(tmp_path / "model.pth", members)
    from svc_core.file_limits import check_zip

    guard()
    _refused(check_zip, path, "checkpoint", match=r"member 'archive/data/1' is compressed [\d,]+:1, limit 20:1")


def test_a_large_data_pkl_is_refused_before_unpickling(tmp_path, guard):
    from svc_core.safe_load import load_torch

    size = limits.MAX_TORCH_PICKLE_BYTES + bombs.MiB  # under the ratio-free allowance, over the data.pkl cap
    bomb = bombs.torch_with_pickle(tmp_path / "G_5.pth", inflates_to=size)
    guard()
    message = _refused(load_torch, bomb, match="17.0 MiB data.pkl")
    assert "(limit 16 MiB;" in message and "G_5.pth" in message


def test_many_members_are_refused_before_the_directory_is_listed(tmp_path, monkeypatch, guard):
    from svc_core.safe_load import load_torch

    bomb = bombs.many_members(tmp_path / "G_1.pth", limits.MAX_ZIP_MEMBERS + 1)
    monkeypatch.setattr(zipfile, "ZipFile", _never("zipfile.ZipFile"))  # refused from the end record alone
    guard()
    _refused(load_torch, bomb, match="has 20,001 members \\(limit 20,000\\)")


@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "/etc/passwd", "C:\\evil.dll", "archive/\x01data.pkl"])
def test_member_names_must_stay_inside_the_archive(tmp_path, name, guard):
    from svc_core.file_limits import check_zip

    path = bombs.write_zip(tmp_path / "G_2.pth", [bombs.Member(name, b"x", 1, crc=zlib.crc32(b"x"))])
    guard()
    _refused(check_zip, path, "checkpoint", match="member name")


def test_overlapping_members_are_refused(tmp_path, guard):
    """Many directory entries pointing at the same data (the overlapping-file zip bomb)."""
    from svc_core.file_limits import check_zip

    data = bombs.zeros_deflated(16 * bombs.MiB)
    path = bombs.write_zip(tmp_path / "G_3.pth", [bombs.Member("archive/data/0", data, 16 * bombs.MiB,
                                                               zipfile.ZIP_DEFLATED)], central_copies=200)
    guard()
    _refused(check_zip, path, "checkpoint", match="overlapping members")


# ------------------------------------------------------------------------------------------- pickles


def test_pickle_instruction_bomb_in_data_pkl_is_refused_before_unpickling(tmp_path, guard):
    from svc_core.safe_load import load_torch

    stream = bombs.instruction_bomb(600_000)  # 1.2 MB of stream, ~100 MB of lists and memo entries
    bomb = bombs.torch_with_pickle(tmp_path / "G_4.pth", stream)
    guard(members=True)
    _refused(load_torch, bomb, match="refused before unpickling")


@pytest.mark.parametrize("call", [("builtins", "bytearray", 4 * bombs.GiB), ("torch", "FloatStorage", 10**9),
                                  ("torch", "Tensor", 50_000, 50_000)],
                         ids=["bytearray", "storage", "tensor"])
@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_allow_listed_constructors_cannot_ask_for_gigabytes(tmp_path, call, fmt, guard):
    """torch's weights_only allow-list has bytearray and the typed storages/tensors: a 30-byte pickle calling them
    with a huge size would allocate (and zero) it."""
    from svc_core.safe_load import load_torch

    stream = bombs.call_pickle(*call)
    if fmt == "zip":
        path = bombs.torch_with_pickle(tmp_path / "G_6.pth", stream)
    else:
        path = tmp_path / "G_6.pth"
        path.write_bytes(stream)
    guard(members=True)
    _refused(load_torch, path, match=f"asks {call[0]}.{call[1]} for up to")


def test_plain_pickle_bigger_than_the_cap_is_not_read(tmp_path, monkeypatch):
    from svc_core.retrieval import load_retrieval

    path = tmp_path / "feature_and_index.pkl"
    with open(path, "wb") as fh:
        fh.write(b"\x80\x04")
        fh.truncate(limits.MAX_PLAIN_PICKLE_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(safe_load, "_AllowListUnpickler", _never("the restricted unpickler"))
    _refused(load_retrieval, path, match="is 2.0 GiB, larger than the 2 GiB accepted")


def test_plain_pickle_instruction_bomb_is_refused(tmp_path, monkeypatch):
    from svc_core.safe_load import load_pickle

    path = tmp_path / "feature_and_index.pkl"
    path.write_bytes(bombs.instruction_bomb(600_000))
    monkeypatch.setattr(safe_load, "_AllowListUnpickler", _never("the restricted unpickler"))
    _refused(load_pickle, path, {}, match="refused before unpickling")


def test_stride_zero_tensor_claiming_gigabytes_is_refused(tmp_path):
    """A real torch.save of a 4-byte storage viewed as 10**9 floats: loading maps 4 bytes, the first copy (our
    .float() of an fp16 checkpoint, np.ascontiguousarray of cluster centres) would allocate 3.7 GiB."""
    from svc_core.safe_load import load_torch

    path = tmp_path / "kmeans_10000.pt"
    torch.save({"spk0": {"cluster_centers_": torch.zeros(1, 1).expand(1_000_000, 1000)}}, path)
    _refused(load_torch, path, "cluster file", match=r"declares a tensor of shape \[1000000, 1000\] \(3.7 GiB\) "
                                                     r"over 4 bytes")


def test_sparse_tensors_are_refused(tmp_path):
    from svc_core.safe_load import load_torch

    path = tmp_path / "G_7.pth"
    torch.save({"model": {"w": torch.sparse_coo_tensor([[0]], [1.0], (10**9,))}}, path)
    _refused(load_torch, path, match="sparse_coo tensor without plain data")


# ------------------------------------------------------------------------------------------- real files pass


def test_real_checkpoints_pass_with_room_to_spare(tmp_path):
    """A training G_*.pth (optimizer state included) and a cluster file load; their numbers are far below the
    limits."""
    from factories import make_upstream_checkpoint
    from svc_core.checkpoint import read_generator_state
    from svc_core.pickle_scan import scan_pickle
    from svc_core.retrieval import load_retrieval, save_kmeans

    generator, _ = make_upstream_checkpoint(tmp_path / "voice", speech_encoder="vec256l9", n_speakers=2, seed=1)
    state = read_generator_state(generator)
    assert "emb_g.weight" in state
    summary = limits.check_zip(generator, "generator checkpoint")
    assert len(summary.infos) < limits.MAX_ZIP_MEMBERS / 10
    with zipfile.ZipFile(generator) as archive:
        name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
        with archive.open(name) as member:
            stats = scan_pickle(member, generator.name, limits.MAX_TORCH_PICKLE_BYTES)
    assert stats.opcodes < limits.MAX_PICKLE_OPCODES / 10
    assert stats.object_bytes < limits.MAX_PICKLE_OBJECT_BYTES / 10
    save_kmeans(tmp_path / "kmeans_10000.pt", {"spk0": np.zeros((64, 256), np.float32)})
    assert load_retrieval(tmp_path / "kmeans_10000.pt").dim == 256


@pytest.mark.parametrize("protocol", range(0, 6))
def test_scanner_follows_every_pickle_protocol(tmp_path, protocol):
    """The scanner ends exactly at STOP and names the globals for every protocol's encoding."""
    import collections
    import io

    from svc_core.pickle_scan import scan_pickle

    obj = {"a": [1, 2.5, "x" * 300, b"y" * 1000, (1, 2, 3)], "n": np.arange(10.0), 3: None, "big": 2**100,
           "od": collections.OrderedDict(a=1), "nested": [[[]]] * 3}
    data = pickle.dumps(obj, protocol=protocol)
    stats = scan_pickle(io.BytesIO(data + b"trailing"), "x.pkl", len(data) + 8)
    assert stats.end == len(data)
    assert "collections.OrderedDict" in stats.globals


def test_real_npz_loads_and_npz_bombs_do_not(tmp_path, guard, monkeypatch):
    from svc_core.safe_load import load_npz

    bomb = bombs.npz_bomb(tmp_path / "features.npz", 4 * bombs.GiB)
    guard()
    message = _refused(load_npz, bomb, match="would unpack to 4.0 GiB")
    assert "features.npz" in message
    monkeypatch.undo()
    liar = bombs.npz_header_lie(tmp_path / "f0.npz", (10**9,))
    guard(members=True)  # the .npy header is read (a stored member of 144 bytes), the array is not
    _refused(load_npz, liar, match=r"declares a \[1000000000\] float64 array \(7.5 GiB\) in a 144 bytes member")
    good = tmp_path / "good.npz"
    np.savez_compressed(good, f0=np.linspace(0, 1, 1000), uv=np.ones(1000, np.float32))
    arrays = load_npz(good)
    assert arrays["f0"].shape == (1000,) and arrays["uv"].dtype == np.float32


def test_npz_with_objects_is_refused(tmp_path):
    from svc_core.safe_load import load_npz

    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object))
    with pytest.raises(UnsafeFileError, match="Python objects"):
        load_npz(path)


# ------------------------------------------------------------------------------------------- faiss


def test_faiss_blob_claiming_gigabytes_is_refused_before_faiss_reads_it(tmp_path, monkeypatch):
    import faiss

    from svc_core.retrieval import load_retrieval

    path = bombs.feature_index_pickle(tmp_path / "feature_and_index.pkl", bombs.faiss_blob_claiming(1 << 32))
    monkeypatch.setattr(faiss, "deserialize_index", _never("faiss.deserialize_index"))
    message = _refused(load_retrieval, path, match="declares stored vectors of 16.0 GiB but only 48 bytes follow")
    assert "feature_and_index.pkl" in message
    index_file = tmp_path / "added_IVF.index"
    index_file.write_bytes(bombs.faiss_blob_claiming(1 << 32))
    monkeypatch.setattr(faiss, "read_index", _never("faiss.read_index"))
    _refused(load_retrieval, index_file, match="declares stored vectors of 16.0 GiB")


def test_real_faiss_indexes_pass_the_check(tmp_path):
    from svc_core.retrieval import build_faiss_index, load_retrieval, save_index_pickle

    rng = np.random.default_rng(0)
    index = build_faiss_index(rng.standard_normal((2000, 16)).astype(np.float32))
    save_index_pickle(tmp_path / "feature_and_index.pkl", {0: index, 1: index})
    retriever = load_retrieval(tmp_path / "feature_and_index.pkl")
    assert retriever.dim == 16 and retriever.speakers == (0, 1)


# ------------------------------------------------------------------------------------------- config.json


def test_oversized_config_json_is_refused_unread(tmp_path):
    from svc_core.config import load_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"pad": "x" * limits.MAX_CONFIG_BYTES}))
    _refused(load_config, path, match="Config file 'config.json' is 1.0 MiB, larger than the 1 MiB accepted")


def test_deeply_nested_config_json_is_a_model_error(tmp_path):
    from svc_core.config import load_config

    path = tmp_path / "config.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ModelError, match="nests lists or objects too deeply"):
        load_config(path)
