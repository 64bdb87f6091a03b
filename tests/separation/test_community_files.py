"""Finding and identifying community model files in a models folder laid out as UVR users have it."""
from __future__ import annotations

import pytest
import torch

from separation_factories import (make_demucs_safetensors, make_demucs_th, make_mdx_onnx, make_roformer,
                                  write_yaml)
from svc_core.errors import ModelError
from svc_core.separation import get_separator
from svc_core.separation.community.files import find_model_files, identify_model_file


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("separation_models")
    mdx_dir = root / "MDX_Net_Models"
    mdx_dir.mkdir()
    settings = make_mdx_onnx(mdx_dir / "Tiny_Inst.onnx")
    write_yaml(mdx_dir / "Tiny_Inst.onnx.yaml", settings)
    write_yaml(mdx_dir / "model_data.yaml", {"x": 1})
    repo = root / "Demucs_Models" / "v3_v4_repo"
    repo.mkdir(parents=True)
    make_demucs_th(repo / "aaaa1111-12345678.th", seed=1)
    make_demucs_th(repo / "bbbb2222.th", seed=2)
    make_demucs_th(repo / "cccc3333.th", seed=3)  # in no bag: listed on its own
    make_demucs_safetensors(repo / "dddd4444.safetensors", seed=4)
    (root / "weights.safetensors").write_bytes(b"\x08" + bytes(7) + b"{}")  # a safetensors of no family
    write_yaml(repo / "tiny_ft.yaml", {"models": ["aaaa1111", "bbbb2222"]})
    make_roformer(root, "mel", name="mel_tiny")
    (root / "notes.txt").write_text("hello")
    (root / "orphan.ckpt").write_bytes(b"PK\x03\x04" + bytes(10))
    torch.save({"a": torch.zeros(1)}, root / "UVR-DeEcho.pth")
    return root


def test_find_lists_each_usable_model_once(models):
    rows = find_model_files(models)
    names = [(entry, path.name) for entry, path, _ in rows]
    assert names == [("mdx", "Tiny_Inst.onnx"), ("demucs", "cccc3333.th"), ("demucs", "dddd4444.safetensors"),
                     ("demucs", "tiny_ft.yaml"), ("roformer", "mel_tiny.ckpt"), ("vr", "UVR-DeEcho.pth")]
    assert rows[0][2] == "MDX-Net: Tiny_Inst" and rows[4][2] == "RoFormer: mel_tiny"
    assert find_model_files(models / "absent") == []


def test_every_found_file_builds_through_the_registry(models):
    for entry, path, _ in find_model_files(models):
        if entry == "vr":
            continue  # the VR family has no loader in this build (see docs/covers.md)
        sep = get_separator(entry, model_path=path)
        assert sep.name == entry


def test_identify_explains_what_a_file_is_not(models):
    assert identify_model_file(models / "Demucs_Models" / "v3_v4_repo" / "tiny_ft.yaml") == "demucs"
    with pytest.raises(ModelError, match="settings file"):
        identify_model_file(models / "mel_tiny.yaml")
    with pytest.raises(ModelError, match="needs its config"):
        identify_model_file(models / "orphan.ckpt")
    with pytest.raises(ModelError, match="no separation family reads '.txt'"):
        identify_model_file(models / "notes.txt")
    with pytest.raises(ModelError, match="without a demucs model class"):
        identify_model_file(models / "weights.safetensors")
    with pytest.raises(ModelError, match="not a file"):
        identify_model_file(models / "MDX_Net_Models")


def test_vr_files_are_found_but_refused_with_a_reason(models):
    from svc_core.errors import OptionError
    from svc_core.separation import separator_status

    assert separator_status()["vr"].startswith("has no loader in this version")
    assert all(separator_status()[name] is None for name in ("mdx", "demucs", "roformer"))
    with pytest.raises(OptionError, match="'vr' separator cannot run here"):
        get_separator("vr", model_path=models / "UVR-DeEcho.pth")
