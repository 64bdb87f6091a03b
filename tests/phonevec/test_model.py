"""Model shapes and frame counts, the encoder file format, registry round trip and refused unsafe files."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from svc_core.encoders import check_compatible, encoder_info, find_weights, get_encoder
from svc_core.errors import AudioError, ModelError, UnsafeFileError
from svc_core.phonevec.checkpoint import FORMAT, encoder_state, load_encoder, save_encoder
from svc_core.phonevec.model import HOP, PhoneVec, PhoneVecConfig, count_parameters

from .conftest import TINY_MODEL


@pytest.fixture(scope="module")
def full_model() -> PhoneVec:
    torch.manual_seed(0)
    return PhoneVec(PhoneVecConfig()).eval()


def test_default_size_is_small(full_model: PhoneVec) -> None:
    n = count_parameters(full_model)
    assert 2_500_000 < n < 4_500_000  # a few M parameters: ~14 MB float32, ~7 MB float16
    assert full_model.cfg.dim == 256 and full_model.cfg.n_classes == 42


@pytest.mark.parametrize("n", [320, 639, 640, 16000, 16159, 48321])
def test_frame_count_is_n_over_320(full_model: PhoneVec, n: int) -> None:
    wav = 0.1 * torch.randn(1, n)
    with torch.no_grad():
        feats = full_model.features(wav)
        logits, lengths, states = full_model(wav)
    assert feats.shape == (1, 256, n // HOP)
    assert logits.shape == (1, n // HOP, 42) and lengths.tolist() == [n // HOP]
    assert len(states) == 7 and all(s.shape == (1, n // HOP, 256) for s in states)
    # layer-normalised features: zero mean, unit variance per frame
    assert torch.allclose(feats.mean(1), torch.zeros(1, n // HOP), atol=1e-4)


def test_padding_does_not_change_a_clip(full_model: PhoneVec) -> None:
    torch.manual_seed(1)
    a, b = 0.1 * torch.randn(9600), 0.1 * torch.randn(16000)
    batch = torch.zeros(2, 16000)
    batch[0, :9600], batch[1] = a, b
    with torch.no_grad():
        logits, lengths, _ = full_model(batch, torch.tensor([9600, 16000]))
        alone, _, _ = full_model(a[None])
    assert lengths.tolist() == [30, 50]
    # padded frames are masked out of attention; only the clip's last frames see the padding through the
    # STFT/conv context (and reach the others through attention), so the padded result stays close
    assert (logits[0, :30] - alone[0, :30]).abs().max() < 0.1
    assert (logits[0, :27] - alone[0, :27]).abs().mean() < 0.01


def test_layers_and_errors(full_model: PhoneVec) -> None:
    wav = 0.1 * torch.randn(1, 3200)
    with torch.no_grad():
        assert full_model.features(wav, 0).shape == (1, 256, 10)
        assert not torch.allclose(full_model.features(wav, 2), full_model.features(wav, 5))
    with pytest.raises(ValueError):
        full_model.features(wav, 7)


def test_registry_round_trip(tmp_path: Path, full_model: PhoneVec) -> None:
    info = encoder_info("phonevec256")
    assert info.dim == 256 and info.default_file == "phonevec256.pt" and "make phonevec" in info.where_to_get
    path = tmp_path / "phonevec256.pt"
    save_encoder(path, full_model, meta={"note": "test"})
    assert find_weights("phonevec256", tmp_path) == str(path)
    enc = get_encoder("phonevec256", path)
    assert enc.name == "phonevec256" and enc.dim == 256 and enc.min_samples == 320
    wav = (0.1 * np.random.default_rng(0).standard_normal(16000 * 2 + 100)).astype(np.float32)
    feats = enc.encode(wav)
    assert feats.shape == (1, 256, 100) and feats.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(feats, full_model.features(torch.from_numpy(wav)[None]), atol=1e-5)
    assert check_compatible(enc, 256, "phonevec256") == "phonevec256"
    with pytest.raises(AudioError):
        enc.encode(np.zeros(100, dtype=np.float32))
    # float16 storage halves the file and reads back as float32
    half = tmp_path / "half.pt"
    save_encoder(half, full_model, half=True)
    assert os.path.getsize(half) < 0.6 * os.path.getsize(path)
    half_feats = get_encoder("phonevec256", half).encode(wav)
    assert half_feats.dtype == torch.float32 and (half_feats - feats).abs().max() < 0.05


def test_posteriorgram_encoder_reads_the_same_file(tmp_path: Path, full_model: PhoneVec) -> None:
    info = encoder_info("phoneppg42")
    assert info.dim == 42 and info.default_file == "phonevec256.pt" and info.shipped == "voices/starter/phonevec256.pt"
    path = tmp_path / "phonevec256.pt"
    save_encoder(path, full_model)
    enc = get_encoder("phoneppg42", tmp_path)
    assert enc.name == "phoneppg42" and enc.dim == 42
    wav = (0.1 * np.random.default_rng(1).standard_normal(16000 + 500)).astype(np.float32)
    ppg = enc.encode(wav)
    assert ppg.shape == (1, 42, 51) and ppg.dtype == torch.float32
    blank, phones = ppg[0, 0], ppg[0, 1:]
    assert ((blank >= 0) & (blank <= 1)).all() and torch.allclose(phones.sum(0), torch.ones(51), atol=1e-5)
    with torch.no_grad():
        logits, _, _ = full_model(torch.from_numpy(wav)[None])
    posterior = torch.softmax(logits[0], -1).T  # [42, T]: the CTC decision is recoverable from the feature
    assert torch.allclose(blank, posterior[0], atol=1e-5)
    assert torch.allclose((1 - blank) * phones, posterior[1:], atol=1e-5)
    assert check_compatible(enc, 42, "phoneppg42") == "phoneppg42"
    with pytest.raises(Exception, match="phoneppg42"):
        check_compatible(enc, 256, "phonevec256")


def test_foreign_and_mismatched_files_are_refused(tmp_path: Path) -> None:
    tiny = PhoneVec(TINY_MODEL)
    path = tmp_path / "tiny.pt"
    save_encoder(path, tiny)
    assert load_encoder(path).cfg == TINY_MODEL
    with pytest.raises(ModelError, match="needs 256"):
        get_encoder("phonevec256", path)  # 64-dim features under the 256 name
    bad = encoder_state(tiny)
    bad["format"] = "something-else"
    torch.save(bad, tmp_path / "foreign.pt")
    with pytest.raises(ModelError, match=FORMAT):
        load_encoder(tmp_path / "foreign.pt")
    bad = encoder_state(tiny)
    bad["model"]["head.weight"] = torch.zeros(3, 3)
    torch.save(bad, tmp_path / "shape.pt")
    with pytest.raises(ModelError, match="head.weight"):
        load_encoder(tmp_path / "shape.pt")


def test_unsafe_file_is_refused_before_anything_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    state = encoder_state(PhoneVec(TINY_MODEL))
    state["meta"] = {"hook": Exploit()}
    path = tmp_path / "phonevec256.pt"
    torch.save(state, path)
    with pytest.raises(UnsafeFileError, match="system"):
        get_encoder("phonevec256", path)
    assert not marker.exists()
