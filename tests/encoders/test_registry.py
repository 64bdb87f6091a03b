"""Registry: names, info, weights lookup, compatibility messages and input checks."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from svc_core.encoders import (
    ContentEncoder,
    check_compatible,
    encoder_info,
    expected_encoder,
    find_weights,
    get_encoder,
    list_encoders,
)
from svc_core.errors import AudioError, EncoderMismatchError, MissingWeightsError, OptionError

NAMES = ["hubertsoft", "phoneppg42", "phonevec256", "vec256l12", "vec256l9", "vec768l12", "vec768l9"]


def test_list_and_info() -> None:
    assert list_encoders() == NAMES
    assert {n: encoder_info(n).dim for n in NAMES} == {
        "hubertsoft": 256, "phoneppg42": 42, "phonevec256": 256, "vec256l12": 256, "vec256l9": 256,
        "vec768l12": 768, "vec768l9": 768,
    }
    info = encoder_info("vec768l12")
    assert info.default_file == "checkpoint_best_legacy_500.pt"
    assert "ContentVec" in info.where_to_get and "hubert_base.pt" in info.where_to_get
    soft = encoder_info("hubertsoft")
    assert soft.default_file == "hubert-soft-0d54a1f4.pt" and "bshall/hubert" in soft.where_to_get
    assert encoder_info("vec256l9-onnx").name == "vec256l9"


def test_unknown_name_lists_valid_ones() -> None:
    with pytest.raises(OptionError) as err:
        get_encoder("whisper-ppg")
    assert "whisper-ppg" in str(err.value)
    assert all(name in str(err.value) for name in NAMES)


def test_missing_file_names_file_source_and_alternatives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SVC_PRETRAIN_DIR", raising=False)
    with pytest.raises(MissingWeightsError) as err:
        get_encoder("vec768l12")
    text = str(err.value)
    assert "checkpoint_best_legacy_500.pt" in text and "ContentVec" in text and "pretrain" in text
    assert "none works without one" in text
    with pytest.raises(MissingWeightsError, match="hubert-soft-0d54a1f4.pt.*bshall/hubert"):
        get_encoder("hubertsoft", tmp_path / "nowhere" / "hubert-soft-0d54a1f4.pt")


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_checkpoint: str) -> None:
    env_dir, local_dir = tmp_path / "env", tmp_path / "work" / "pretrain"
    env_dir.mkdir()
    local_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(env_dir))
    with pytest.raises(MissingWeightsError, match="env"):
        find_weights("vec256l9")
    shutil.copy(small_checkpoint, local_dir / "checkpoint_best_legacy_500.pt")
    assert find_weights("vec256l9") == str(Path("pretrain") / "checkpoint_best_legacy_500.pt")
    shutil.copy(small_checkpoint, env_dir / "checkpoint_best_legacy_500.pt")
    assert find_weights("vec256l9") == str(env_dir / "checkpoint_best_legacy_500.pt")
    assert find_weights("vec256l9", local_dir) == str(local_dir / "checkpoint_best_legacy_500.pt")  # a folder
    assert get_encoder("vec256l9").encode(torch.zeros(1000)).shape == (1, 32, 2)


def test_expected_encoder_for_configs() -> None:
    assert expected_encoder(768, "vec768l12") == "vec768l12"
    assert expected_encoder(256, None) == "vec256l9"  # 4.0 configs have no speech_encoder
    assert expected_encoder(768, None) == "vec768l12"
    assert expected_encoder(256, "hubertsoft-onnx") == "hubertsoft"


def test_check_compatible_messages() -> None:
    assert check_compatible("vec256l9", 256, "vec256l9") == "vec256l9"
    assert check_compatible("vec256l9", 256, None) == "vec256l9"
    with pytest.raises(EncoderMismatchError, match=r"(?i)this model expects 256-dim vec256l9 features; "
                                                   r"the selected encoder 'vec768l12' gives 768"):
        check_compatible("vec768l12", 256, "vec256l9")
    with pytest.raises(EncoderMismatchError, match="trained on vec256l9 features.*'hubertsoft'"):
        check_compatible("hubertsoft", 256, "vec256l9")


def test_check_compatible_uses_the_loaded_dimension(small_checkpoint: str) -> None:
    encoder = get_encoder("vec256l9", small_checkpoint)  # the small checkpoint's final_proj gives 32 channels
    with pytest.raises(EncoderMismatchError, match="256-dim vec256l9 features; the selected encoder 'vec256l9' gives 32"):
        check_compatible(encoder, 256, "vec256l9")
    assert check_compatible(encoder, 32, "vec256l9") == "vec256l9"


@pytest.mark.parametrize(
    "wav, fragment",
    [
        (torch.zeros(2, 1000), "mono"),
        (torch.zeros(399), "too short"),
        (torch.zeros(1000, dtype=torch.int16), "float"),
        (torch.full((1000,), float("nan")), "NaN"),
        ([0.0] * 1000, "tensor"),
    ],
)
def test_bad_audio_is_explained(wav, fragment: str, small_checkpoint: str) -> None:
    encoder: ContentEncoder = get_encoder("vec768l12", small_checkpoint)
    with pytest.raises(AudioError, match=fragment):
        encoder.encode(wav)


def test_shortest_input_gives_one_frame(small_checkpoint: str) -> None:
    encoder = get_encoder("vec768l12", small_checkpoint)
    assert encoder.encode(torch.zeros(400)).shape == (1, 64, 1)
    assert encoder.to("cpu") is encoder
