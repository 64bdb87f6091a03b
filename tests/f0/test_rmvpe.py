"""RMVPE: checkpoint layout, both file formats, salience decoding maths, missing and unsafe files."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from svc_core.errors import MissingWeightsError, ModelError, UnsafeFileError
from svc_core.f0 import get_predictor, predictor_status
from svc_core.f0.rmvpe import cents_to_hz, load_rmvpe_model, log_mel, resample_to_16k, salience_to_cents
from svc_core.f0.rmvpe_model import E2E0

from .conftest import HOP, SR


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> dict[str, str]:
    """A random E2E0 saved as so-vits' {'model': sd} and as RVC's bare sd without unet.tf.*."""
    torch.manual_seed(0)
    state = E2E0().state_dict()
    folder = tmp_path_factory.mktemp("rmvpe")
    sovits, rvc = folder / "sovits" / "rmvpe.pt", folder / "rvc_rmvpe.pt"
    sovits.parent.mkdir()
    torch.save({"model": state}, sovits)
    torch.save({k: v for k, v in state.items() if not k.startswith("unet.tf.")}, rvc)
    yield {"sovits": str(sovits), "rvc": str(rvc)}
    sovits.unlink()
    rvc.unlink()


def test_state_dict_matches_upstream_manifest(manifests_dir):
    manifest = json.loads((manifests_dir / "rmvpe_random.json").read_text())
    assert manifest["state_dict_key"] == "model"
    expected = {k: v["shape"] for k, v in manifest["state_dict"].items()}
    ours = {k: list(v.shape) for k, v in E2E0(4, 1, (2, 2)).state_dict().items()}
    assert list(ours) == list(expected)
    assert ours == expected


def test_both_layouts_load_and_agree(random_weights, monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(SR // 2 + 77)).astype(np.float32)
    outputs = []
    for path in (random_weights["sovits"], random_weights["rvc"]):
        pred = get_predictor("rmvpe", weights_path=path)
        f0, uv = pred.compute_f0_uv(wav)
        assert f0.shape == uv.shape == (len(wav) // HOP,) and f0.dtype == np.float32
        assert pred.compute_f0_uv(wav, 30)[0].shape == (30,)
        outputs.append(pred.salience(wav))
    assert outputs[0].shape == (1 + (len(wav) * 16000 // SR + 1) // 160, 360)
    torch.testing.assert_close(outputs[0], outputs[1])  # unet.tf is stored but unused by E2E0
    # found through $SVC_PRETRAIN_DIR without an explicit path
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SVC_PRETRAIN_DIR", os.path.dirname(random_weights["sovits"]))
    assert predictor_status()["rmvpe"] is None
    assert isinstance(load_rmvpe_model(), E2E0)


def test_wrong_keys_are_refused(random_weights, tmp_path):
    state = torch.load(random_weights["rvc"], weights_only=True)
    del state["cnn.bias"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(ModelError, match="missing keys"):
        load_rmvpe_model(bad)
    state["cnn.bias"] = torch.zeros(4)
    torch.save(state, bad)
    with pytest.raises(ModelError, match="wrong shape"):
        load_rmvpe_model(bad)


def test_missing_file_explains_where_to_get_it(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(MissingWeightsError) as info:
        get_predictor("rmvpe")
    message = str(info.value)
    for part in ("rmvpe.pt", "yxlllc", "model.pt", "assets/rmvpe", "pm, dio, harvest", "fcpe"):
        assert part in message
    assert "rmvpe.pt" in predictor_status()["rmvpe"]
    with pytest.raises(MissingWeightsError, match="elsewhere.pt"):
        get_predictor("rmvpe", weights_path=tmp_path / "elsewhere.pt")


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_file_that_runs_code_is_refused(tmp_path):
    evil = tmp_path / "rmvpe.pt"
    torch.save({"model": {"cnn.bias": torch.zeros(3)}, "x": _RunsCode()}, evil)
    with pytest.raises(UnsafeFileError, match="system"):
        get_predictor("rmvpe", weights_path=evil)


@pytest.mark.parametrize("peak_bin", [0, 57, 200, 359])
def test_single_peak_decodes_to_its_bin(peak_bin):
    salience = torch.zeros(3, 360)
    salience[1, peak_bin] = 0.9
    hz = cents_to_hz(salience_to_cents(salience, threshold=0.05))
    expected = 10 * 2 ** ((20 * peak_bin + 1997.3794084376191) / 1200)
    assert hz[1].item() == pytest.approx(expected, rel=1e-5)
    assert hz[0] == 0 and hz[2] == 0  # all-zero rows are unvoiced


def test_local_weighted_average_and_threshold():
    salience = torch.zeros(4, 360)
    salience[0, [99, 100, 101]] = torch.tensor([0.5, 1.0, 0.5])  # symmetric: stays on bin 100
    salience[1, [100, 101]] = torch.tensor([0.6, 0.2])  # pulled a quarter bin up
    salience[2, [100, 110]] = torch.tensor([0.8, 0.7])  # bin 110 is outside +-4: ignored
    salience[3, 100] = 0.05  # at the threshold: unvoiced
    cents = salience_to_cents(salience, threshold=0.05)
    base = 20 * 100 + 1997.3794084376191
    assert cents[0].item() == pytest.approx(base, abs=1e-3)
    assert cents[1].item() == pytest.approx(base + 20 * 0.25, abs=1e-3)
    assert cents[2].item() == pytest.approx(base, abs=1e-3)
    assert cents[3].item() == 0


def test_front_end_frame_counts():
    wav = torch.zeros(SR + 5)
    wav16 = resample_to_16k(wav, SR)
    assert wav16.shape == (int(np.ceil((SR + 5) * 16000 / SR)),)
    mel = log_mel(torch.randn(16000))
    assert mel.shape == (128, 1 + 16000 // 160)
    assert torch.all(log_mel(torch.zeros(3200)) == np.log(1e-5))


def test_resampler_passes_a_tone():
    """A 1 kHz tone keeps its level through the 44.1 -> 16 kHz filter; 7.9 kHz (above 0.99 * 8 kHz) does not."""
    t = np.arange(SR) / SR
    for freq, lo, hi in [(1000.0, 0.99, 1.01), (7950.0, 0.0, 0.5)]:
        out = resample_to_16k(torch.from_numpy(np.sin(2 * np.pi * freq * t).astype(np.float32)), SR)
        rms = out[2000:-2000].pow(2).mean().sqrt().item() * np.sqrt(2)
        assert lo <= rms <= hi, (freq, rms)


def test_onnx_export_gives_the_same_f0(random_weights, tmp_path, capsys):
    """export-onnx --f0 rmvpe, then the predictor with the .onnx file: same salience network on ONNX Runtime."""
    from svc_core.cli import main as cli_main
    from svc_core.onnx.export import read_manifest

    out = tmp_path / "rmvpe.onnx"
    assert cli_main(["export-onnx", "--f0", "rmvpe", "--f0-path", random_weights["sovits"], "-o", str(out)]) == 0
    assert "salience" in capsys.readouterr().out
    manifest = read_manifest(out)
    assert manifest["kind"] == "f0" and manifest["parity"]["max_abs_diff"] < 1e-3
    t = np.arange(int(SR * 1.5)) / SR
    wav = (0.3 * np.sin(2 * np.pi * 220 * t * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)))).astype(np.float32)
    torch_f0 = get_predictor("rmvpe", weights_path=random_weights["sovits"], hop_length=HOP, sampling_rate=SR)
    onnx_f0 = get_predictor("rmvpe", weights_path=str(out), hop_length=HOP, sampling_rate=SR)
    a, b = torch_f0.salience(wav), onnx_f0.salience(wav)
    assert a.shape == b.shape and float((a - b).abs().max()) < 1e-3


def test_onnx_file_of_another_kind_is_refused(tmp_path):
    from svc_core.onnx.f0_export import OnnxRmvpeNetwork

    fake = tmp_path / "x.onnx"
    fake.write_bytes(b"")
    (tmp_path / "x.onnx.json").write_text(json.dumps({"kind": "synthesizer"}))
    with pytest.raises(ModelError, match="not an exported RMVPE"):
        OnnxRmvpeNetwork(fake)
