"""Pairing an RVC voice file with its index, as RVC WebUI does (svc_core.rvc.index_files)."""
from __future__ import annotations

import pytest

from svc_core.errors import ModelError
from svc_core.rvc.index_files import find_index


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_the_added_index_beside_the_voice_is_found_and_trained_is_not(tmp_path):
    model = _touch(tmp_path / "alto.pth")
    assert find_index(model) is None
    _touch(tmp_path / "trained_IVF26_Flat_nprobe_1_alto_v2.index")
    assert find_index(model) is None  # centroids only: not searchable
    added = _touch(tmp_path / "added_IVF26_Flat_nprobe_1_alto_v2.index")
    assert find_index(model) == added


def test_rvc_layout_logs_folder_and_name_match(tmp_path):
    weights = _touch(tmp_path / "assets" / "weights" / "alto.pth")
    _touch(tmp_path / "assets" / "logs" / "tenor" / "added_IVF9_Flat_nprobe_1_tenor_v2.index")
    wanted = _touch(tmp_path / "assets" / "logs" / "alto" / "added_IVF9_Flat_nprobe_1_alto_v2.index")
    assert find_index(weights) == wanted


def test_several_candidates_are_named_in_the_error(tmp_path):
    model = _touch(tmp_path / "alto.pth")
    _touch(tmp_path / "added_IVF9_Flat_nprobe_1_alto_v2.index")
    _touch(tmp_path / "added_IVF10_Flat_nprobe_1_alto_v2.index")
    with pytest.raises(ModelError, match="several index files.*--index"):
        find_index(model)
    other = tmp_path / "b"
    one = _touch(other / "voice.pth")
    index = _touch(other / "whatever.index")
    assert find_index(one) == index  # the only one, whatever its name
