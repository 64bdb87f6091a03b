"""Content encoders exported to ONNX: parity with torch, int8 report, OnnxEncoder in the shared pipeline."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from encoder_factories import make_contentvec_checkpoint
from svc_core.encoders import get_encoder
from svc_core.errors import ModelError
from svc_core.onnx.encoder_export import OnnxEncoder, export_encoder, feature_error, int8_path

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def contentvec(tmp_path_factory):
    return make_contentvec_checkpoint(tmp_path_factory.mktemp("cv") / "checkpoint_best_legacy_500.pt")


@pytest.mark.parametrize("name", ["vec768l12", "vec256l9"])
def test_contentvec_export_matches_torch_on_other_lengths(contentvec, tmp_path, name):
    out = tmp_path / f"{name}.onnx"
    manifest = export_encoder(name, contentvec, out)
    assert manifest["kind"] == "encoder" and manifest["encoder"] == name
    assert manifest["parity"]["max_abs"] < 1e-4 and manifest["parity"]["min_cosine"] > 0.9999
    assert json.loads(out.with_name(out.name + ".json").read_text())["source_weights"]["sha256"] == \
        manifest["source_weights"]["sha256"]
    onnx_enc, torch_enc = OnnxEncoder(out), get_encoder(name, contentvec)
    assert (onnx_enc.name, onnx_enc.dim) == (name, torch_enc.dim)
    # an odd length that was neither traced nor checked at export; T has 2 + 1 frames (HuBERT pads to 2)
    wav = 0.1 * torch.randn(16000 * 2 + 1234, generator=torch.Generator().manual_seed(5))
    a, b = torch_enc.encode(wav).numpy(), onnx_enc.encode(wav).numpy()
    assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


def test_int8_file_is_smaller_and_its_feature_error_is_reported(contentvec, tmp_path):
    out = tmp_path / "vec768l12.onnx"
    manifest = export_encoder("vec768l12", contentvec, out, int8=True)
    q = manifest["int8"]
    assert int8_path(out).is_file() and q["int8"] is True
    assert q["size_bytes"]["int8"] < q["size_bytes"]["float"]
    err = q["feature_error_vs_float"]
    assert 0 < err["max_abs"] and 0.9 < err["mean_cosine"] < 1.0  # measurably different, still the same features
    enc = OnnxEncoder(int8_path(out))
    wav = 0.1 * torch.randn(16000, generator=torch.Generator().manual_seed(1))
    got, ref = enc.encode(wav).numpy(), get_encoder("vec768l12", contentvec).encode(wav).numpy()
    assert feature_error(ref, got)["mean_cosine"] > 0.9


def test_synthesizer_file_is_not_an_encoder(tmp_path, contentvec):
    out = tmp_path / "enc.onnx"
    export_encoder("vec256l9", contentvec, out)
    manifest = json.loads(out.with_name(out.name + ".json").read_text())
    manifest["kind"] = "synthesizer"
    out.with_name(out.name + ".json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="not a content encoder"):
        OnnxEncoder(out)


def test_phonevec_and_hubertsoft_export(tmp_path):
    """phonevec's log-mel (STFT as a DFT convolution) and hubert-soft's torch attention export with a dynamic T."""
    from svc_core.encoders import HubertSoft
    from svc_core.encoders.hubert_soft import SoftArch
    from svc_core.phonevec.checkpoint import save_encoder
    from svc_core.phonevec.model import PhoneVec, PhoneVecConfig

    torch.manual_seed(0)
    save_encoder(tmp_path / "phonevec256.pt", PhoneVec(PhoneVecConfig(n_layers=2, feature_layer=2)).eval())
    soft = HubertSoft(SoftArch(conv_dim=16, dim=128, ffn_dim=64, layers=2, pos_kernel=16, unit_dim=8,
                               num_labels=5)).eval()
    torch.save({f"module.{k}": v for k, v in soft.state_dict().items()}, tmp_path / "hubert-soft-0d54a1f4.pt")
    for name, weights in (("phonevec256", "phonevec256.pt"), ("hubertsoft", "hubert-soft-0d54a1f4.pt")):
        out = tmp_path / f"{name}.onnx"
        assert export_encoder(name, tmp_path / weights, out)["parity"]["max_abs"] < 1e-4
        wav = 0.1 * torch.randn(16000 + 777, generator=torch.Generator().manual_seed(2))
        a = get_encoder(name, tmp_path / weights).encode(wav).numpy()
        b = OnnxEncoder(out).encode(wav).numpy()
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4


def test_cli_exports_an_encoder_and_infer_runs_it(contentvec, tmp_path, capsys):
    """`export-onnx --encoder ... --int8`, then `infer -m model.onnx --encoder enc.int8.onnx` (both on ORT)."""
    import soundfile as sf

    from audio_factories import sung_phrase
    from factories import make_upstream_checkpoint
    from svc_core.cli import main

    assert main(["export-onnx", "--encoder", "vec768l12", "--encoder-path", str(contentvec), "-o",
                 str(tmp_path / "enc.onnx"), "--int8"]) == 0
    text = capsys.readouterr().out
    assert "enc.int8.onnx" in text and "mean frame cosine" in text
    model, config = make_upstream_checkpoint(tmp_path / "voice", ssl_dim=64, speech_encoder="vec768l12")
    assert main(["export-onnx", "-m", str(model), "-c", str(config), "-o", str(tmp_path / "g.onnx")]) == 0
    sf.write(tmp_path / "in.wav", sung_phrase(1.5), 44100)
    capsys.readouterr()
    assert main(["infer", "-m", str(tmp_path / "g.onnx"), "--encoder", str(tmp_path / "enc.int8.onnx"), "-i",
                 str(tmp_path / "in.wav"), "-o", str(tmp_path / "out.wav"), "-s", "0", "--f0", "pm"]) == 0
    text = capsys.readouterr().out
    assert "onnxruntime CPUExecutionProvider" in text and "synthesizer: onnxruntime" in text
    assert abs(sf.info(str(tmp_path / "out.wav")).duration - 1.5) < 0.05
