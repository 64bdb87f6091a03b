"""export_synthesizer: upstream's interface (names, dtypes, dynamic axes), onnx.checker, manifest, parity."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from svc_core.checkpoint import load_synthesizer
from svc_core.onnx import MANIFEST_KEY, SynthesizerGraph, make_session, manifest_path, prior_noise, read_manifest
from svc_core.onnx.export import dummy_inputs

ONNX_TYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64"}


def _dims(value_info) -> list:
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


@pytest.mark.parametrize("variant", ["vec256l9", "vol", "mix"])
def test_interface_matches_upstream(exported, variant):
    e = exported[variant]
    onnx.checker.check_model(str(e.onnx))
    graph = onnx.load(str(e.onnx)).graph
    names = [i.name for i in graph.input]
    expected = ["c", "f0", "mel2ph", "uv", "noise", "sid"] + (["vol"] if variant == "vol" else [])
    assert names == expected and [o.name for o in graph.output] == ["audio"]
    ins = {i.name: i for i in graph.input}
    types = {n: ONNX_TYPES[v.type.tensor_type.elem_type] for n, v in ins.items()}
    assert types["mel2ph"] == "int64" and types["c"] == types["f0"] == types["uv"] == types["noise"] == "float32"
    assert types["sid"] == ("float32" if variant == "mix" else "int64")
    dims = {n: _dims(v) for n, v in ins.items()}
    ssl = 768 if variant == "vol" else 256
    assert isinstance(dims["c"][0], str) and isinstance(dims["c"][1], str) and dims["c"][2] == ssl
    for n in ("f0", "mel2ph", "uv") + (("vol",) if variant == "vol" else ()):
        assert dims[n][0] == 1 and isinstance(dims[n][1], str)
    assert dims["noise"][:2] == [1, 32] and isinstance(dims["noise"][2], str)  # inter_channels of the small model
    if variant == "mix":
        assert isinstance(dims["sid"][0], str) and dims["sid"][1] == 3
    else:
        assert dims["sid"] == [1]
    out = _dims(graph.output[0])
    assert out[1] == 1 and isinstance(out[2], str)  # dim 0 follows c's dynamic axis 0, as upstream
    assert graph is not None and onnx.load(str(e.onnx)).opset_import[0].version >= 16


@pytest.mark.parametrize("variant", ["vec256l9", "vol", "mix"])
def test_manifest(exported, variant):
    e = exported[variant]
    m = read_manifest(e.onnx)
    assert m == json.loads(manifest_path(e.onnx).read_text()) == e.manifest
    meta = {p.key: p.value for p in onnx.load(str(e.onnx)).metadata_props}
    assert json.loads(meta[MANIFEST_KEY]) == m
    assert m["source_checkpoint"]["sha256"] == hashlib.sha256(e.model.read_bytes()).hexdigest()
    assert m["config"] == json.loads(e.config.read_text())
    assert m["speech_encoder"] == ("vec768l12" if variant == "vol" else "vec256l9")
    assert (m["sample_rate"], m["hop_length"]) == (44100, 512)
    assert m["speaker_mix"] is (variant == "mix") and m["vol_embedding"] is (variant == "vol")
    assert m["parity"]["max_abs_diff"] < 1e-3
    assert m["moevoicestudio"]["Type"] == "SoVits" and m["moevoicestudio"]["CharaMix"] is (variant == "mix")


@pytest.mark.parametrize("variant", ["vec256l9", "vol", "mix"])
@pytest.mark.parametrize("frames", [9, 150])
def test_onnx_matches_torch_graph(exported, variant, frames):
    e = exported[variant]
    model = load_synthesizer(e.model, e.config)
    graph = SynthesizerGraph(model, speaker_mix=variant == "mix").eval()
    inputs = dummy_inputs(model, variant == "mix", frames=frames, seed=5)
    if variant == "mix":
        w = torch.rand(frames, 3, generator=torch.Generator().manual_seed(2))
        inputs["sid"] = w / w.sum(1, keepdim=True)
    names = list(e.manifest["inputs"])
    with torch.no_grad():
        ref = graph(*(inputs[n] for n in names)).numpy()
    session, info = make_session(e.onnx, device="cpu", threads=1)
    got = session.run(["audio"], {n: inputs[n].numpy() for n in names})[0]
    assert info.provider == "CPUExecutionProvider" and info.intra_op_threads == 1
    assert got.shape == ref.shape == (1, 1, frames * 512)
    assert np.abs(got - ref).max() < 1e-3 and np.abs(ref).max() > 1e-2


def test_graph_is_infer_without_source_randomness(exported, monkeypatch):
    """With the NSF source's random phases/noise zeroed on both sides (and no prior noise), the export graph
    computes exactly SynthesizerTrn.infer: the only difference between the two is the source's random draws."""
    e = exported["vol"]
    model = load_synthesizer(e.model, e.config)
    graph = SynthesizerGraph(model, speaker_mix=False).eval()
    graph.source.initial_phase.zero_()
    graph.source.noise_table.zero_()
    inputs = dummy_inputs(model, False, frames=40, seed=3)
    inputs["noise"].zero_()
    with torch.no_grad():
        ours = graph(*(inputs[n] for n in e.manifest["inputs"]))
    monkeypatch.setattr(torch, "rand", lambda *shape, **kw: torch.zeros(*shape, device=kw.get("device")))
    monkeypatch.setattr(torch, "randn_like", torch.zeros_like)
    eager, _ = model.infer(inputs["c"].transpose(1, 2), inputs["f0"], inputs["uv"], torch.tensor([[0]]),
                           noise_scale=0.4, vol=inputs["vol"])
    assert np.abs((ours - eager).numpy()).max() < 1e-4


def test_prior_noise_is_the_draw_infer_makes():
    torch.manual_seed(52468)
    expected = torch.randn_like(torch.empty(1, 32, 17))
    assert torch.equal(prior_noise(32, 17, 1.0, 52468), expected)
    assert torch.allclose(prior_noise(32, 17, 0.4, 52468), expected * 0.4)


def test_cli_export(exported, tmp_path, capsys):
    from svc_core.cli import main

    e = exported["vec256l9"]
    out = tmp_path / "cli.onnx"
    assert main(["export-onnx", "-m", str(e.model), "-c", str(e.config), "-o", str(out), "--speaker-mix", "on"]) == 0
    text = capsys.readouterr().out
    assert "onnx.checker passed" in text and "sid float32" in text
    assert read_manifest(out)["speaker_mix"] is True
    assert main(["export-onnx", "-m", str(tmp_path / "missing.pth"), "-c", str(e.config), "-o", str(out)]) == 2
    capsys.readouterr()
    before = Path(e.model).read_bytes()
    assert main(["export-onnx", "-m", str(e.model), "-c", str(e.config), "-o", str(e.model)]) == 2
    assert "is written to an .onnx file" in capsys.readouterr().err
    assert Path(e.model).read_bytes() == before  # the checkpoint is not overwritten by its export
