"""ONNX files that declare more than they hold, or point their weights outside their folder, are refused by the
wire-format walk (svc_core/onnx/proto_scan.py) before onnx or ONNX Runtime parse them; valid files still load."""
from __future__ import annotations

import os
import time

import numpy as np
import pytest

from safety import bombs
from svc_core import file_limits as limits
from svc_core.errors import FileLimitError
from svc_core.onnx.proto_scan import check_onnx_file


@pytest.fixture
def no_parsing(monkeypatch):
    """Fail the test if onnx.load or an ONNX Runtime session gets the file."""
    import onnx
    import onnxruntime

    def never(*args, **kwargs):
        raise AssertionError("the file was parsed before the refusal")

    monkeypatch.setattr(onnx, "load", never)
    monkeypatch.setattr(onnxruntime, "InferenceSession", never)


def _refused_everywhere(path, match: str) -> str:
    """The walk refuses `path`, and so do the two doors user files come through: ONNX Runtime sessions and
    load_proto (upload checks, manifests)."""
    from svc_core.onnx.export import load_proto
    from svc_core.onnx.runtime import make_session

    start = time.perf_counter()
    with pytest.raises(FileLimitError, match=match) as info:
        check_onnx_file(path)
    print(f"refused in {1000 * (time.perf_counter() - start):.1f} ms: {info.value}")
    with pytest.raises(FileLimitError, match=match):
        make_session(path, "cpu", 1)
    with pytest.raises(FileLimitError, match=match):
        load_proto(path)
    return str(info.value)


def test_a_valid_model_passes_and_runs(tmp_path):
    from svc_core.onnx.runtime import make_session

    weights = np.arange(6, dtype=np.float32)
    path = bombs.onnx_model(tmp_path / "model.onnx", bombs.raw_tensor([2, 3], weights.tobytes()))
    stats = check_onnx_file(path)
    assert stats.nodes == 1 and stats.declared_bytes == stats.stored_bytes == 24
    session, _ = make_session(path, "cpu", 1)
    assert float(session.run(None, {})[0]) == pytest.approx(15.0)


def test_initializer_claiming_huge_dims_is_refused(tmp_path, no_parsing):
    path = bombs.onnx_model(tmp_path / "model.onnx", bombs.raw_tensor([1 << 20, 1 << 20], bytes(16)))
    message = _refused_everywhere(path, r"declares a tensor of shape \[1048576, 1048576\] \(4096.0 GiB\) but holds "
                                        "16 bytes")
    assert "'model.onnx'" in message


def test_initializer_without_data_is_refused(tmp_path, no_parsing):
    """No slack per tensor: thousands of tensors each declaring 1 MiB over nothing would add up."""
    path = bombs.onnx_model(tmp_path / "model.onnx", bombs.raw_tensor([1 << 18], b""))
    _refused_everywhere(path, r"declares a tensor of shape \[262144\] \(1.0 MiB\) but holds 0 bytes")


def test_sparse_initializer_with_a_huge_dense_shape_is_refused(tmp_path, no_parsing):
    """ONNX Runtime densifies sparse initializers when it opens a file: 105 bytes would become 1 GiB here."""
    from onnx import TensorProto, helper

    values = helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])
    indices = helper.make_tensor("w_idx", TensorProto.INT64, [1], [5])
    sparse = helper.make_sparse_tensor(values, indices, [1 << 28])
    path = bombs.onnx_model(tmp_path / "model.onnx", None, sparse)
    _refused_everywhere(path, r"declares a sparse tensor of dense shape \[268435456\] \(1.0 GiB\)")


def test_millions_of_empty_nodes_are_refused_without_building_them(tmp_path, no_parsing):
    path = bombs.onnx_empty_nodes(tmp_path / "model.onnx", limits.MAX_ONNX_NODES + 1)
    assert path.stat().st_size < 1 << 20
    _refused_everywhere(path, "has more than 50,000 operators")


@pytest.mark.parametrize("where", ["absolute", "parent", "symlink", "nul"])
def test_external_data_outside_the_folder_is_refused(tmp_path, where, no_parsing):
    folder = tmp_path / "voice"
    folder.mkdir()
    (tmp_path / "outside.bin").write_bytes(bytes(64))
    location = {"absolute": "/etc/passwd", "parent": "../outside.bin", "symlink": "weights.bin",
                "nul": "weights.bin\x00/etc/passwd"}[where]
    if where == "symlink":
        os.symlink("/etc/passwd", folder / "weights.bin")
    path = bombs.onnx_model(folder / "model.onnx", bombs.external_tensor([4], location, 16))
    _refused_everywhere(path, "outside the model's folder")


def test_external_data_past_the_end_of_its_file_is_refused(tmp_path, no_parsing):
    (tmp_path / "weights.bin").write_bytes(bytes(64))
    path = bombs.onnx_model(tmp_path / "model.onnx", bombs.external_tensor([1 << 20], "weights.bin", 4 << 20))
    _refused_everywhere(path, r"reads 4.0 MiB at offset 0 of 'weights.bin', which is 64 bytes")


def test_external_data_inside_the_folder_loads(tmp_path):
    """CLI and API users may keep big weights beside the .onnx (files over 2 GiB need it): that still works."""
    from svc_core.onnx.runtime import make_session

    weights = np.arange(4, dtype=np.float32)
    (tmp_path / "weights.bin").write_bytes(bytes(8) + weights.tobytes())
    path = bombs.onnx_model(tmp_path / "model.onnx", bombs.external_tensor([4], "weights.bin", 16, offset=8))
    stats = check_onnx_file(path)
    assert stats.external_bytes == 16 and stats.declared_bytes == 16
    session, _ = make_session(path, "cpu", 1)
    assert float(session.run(None, {})[0]) == pytest.approx(6.0)


def test_oversized_onnx_file_is_not_read(tmp_path, no_parsing):
    path = tmp_path / "model.onnx"
    with open(path, "wb") as fh:
        fh.truncate(limits.MAX_ONNX_FILE_BYTES + 1)  # sparse file: no disk used
    _refused_everywhere(path, "is 2.0 GiB, larger than the 2 GiB accepted")


def test_upload_check_refuses_before_parsing(tmp_path, no_parsing):
    """The web upload's self-containment check reads the file through load_proto: the walk refuses first."""
    from svc_core.onnx.upstream_file import check_self_contained

    path = bombs.onnx_empty_nodes(tmp_path / "nyaru_SoVits.onnx", limits.MAX_ONNX_NODES + 1)
    with pytest.raises(FileLimitError, match="operators"):
        check_self_contained(path)
