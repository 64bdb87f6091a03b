"""The int8 vocoder for RVC ONNX voices (svc_core/onnx/vocoder_int8.py on rvc_export's voice.dec.onnx):
calibration through RVC's recipe on the engine, what the quantised graph holds, its selection by
vocoder_precision="int8" in `Svc`, the manifest record, the CLI, and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase
from onnx_files import copy_export
from rvc_factories import make_rvc_model
from svc_core.errors import ModelError, OptionError
from svc_core.onnx.split_export import int8_decoder_path
from svc_core.onnx.vocoder_int8 import FLOAT_LAYERS, INT8_MANIFEST_KEY, add_int8_vocoder
from svc_core.pipeline import Svc

SNR_FLOOR_DB = 15.0  # int8 vs float32, small random voice: measured 24.6 dB (held-out windows), 23.3 dB (conversion)
SNR_CEILING_DB = 80.0  # above this the "int8" output would be float32 in disguise


def _snr(ref: np.ndarray, got: np.ndarray) -> float:
    diff = ref.astype(np.float64) - got
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum(diff ** 2)))


@pytest.fixture(scope="module")
def rvc_export(tmp_path_factory):
    """A small random RVC v2 40k pitch voice (2 speakers) exported to ONNX (float only)."""
    from svc_core.onnx.rvc_export import export_rvc

    root = tmp_path_factory.mktemp("rvc_int8")
    pth = make_rvc_model(root / "voice.pth", version="v2", sr="40k", speakers=2, seed=5)
    export_rvc(pth, root / "voice.onnx", verify=False)
    return pth, root / "voice.onnx"


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rvc_calibration")
    for i, seconds in enumerate((2.0, 1.6, 1.8)):
        sf.write(folder / f"clip{i}.wav", sung_phrase(seconds, gap_every=1.0, gap=0.3, seed=40 + i), 44100)
    return folder


@pytest.fixture(scope="module")
def int8_voice(rvc_export, encoder768, clips_dir, tmp_path_factory):
    onnx_path = copy_export(rvc_export[1], tmp_path_factory.mktemp("rvc_int8_voice"))
    svc = Svc(onnx_path, None, encoder_path=str(encoder768))
    entry = add_int8_vocoder(svc, [clips_dir])
    return svc, entry


def test_calibration_writes_the_file_and_records_it(int8_voice):
    import onnx

    svc, entry = int8_voice
    path = int8_decoder_path(svc.model.onnx_path)
    assert path.is_file() and path.name == "voice.dec.int8.onnx" and entry["file"] == path.name
    assert entry["calibration"]["clips"] == ["clip0.wav", "clip1.wav"] and entry["calibration"]["windows"] >= 2
    check = entry["check"]
    assert check["clip"] == "clip2.wav" and check["held_out"] is True and check["windows"] >= 1
    assert SNR_FLOOR_DB < check["snr_db"] < SNR_CEILING_DB and check["max_abs_diff"] > 0
    side = json.loads(open(str(svc.model.onnx_path) + ".json").read())
    assert side["split"]["int8"] == entry and side["kind"] == "rvc-synthesizer"
    assert svc.model.manifest["split"]["int8"] == entry
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[INT8_MANIFEST_KEY])["check"] == check


def test_calibration_feeds_are_the_rvc_decoder_inputs(int8_voice, clips_dir):
    """The recorded windows carry RVC's decoder inputs (noise, not so-vits' offset) and nothing is decoded."""
    from svc_core.onnx.vocoder_int8 import CALIBRATION_FRAMES, capture_feeds

    svc, _ = int8_voice
    (feeds,) = capture_feeds(svc, [clips_dir / "clip0.wav"])
    assert svc.model._decode_override is None and feeds
    context = int(svc.model.manifest["split"]["context_frames"])
    for feed in feeds:
        assert set(feed) == {"z", "g", "f0", "phase0", "noise"}
        frames = feed["z"].shape[-1]
        assert frames <= CALIBRATION_FRAMES + 2 * context
        assert feed["noise"].shape == (1, frames * svc.hop_length, 1) and feed["f0"].shape == (1, frames)


def test_graph_quantizes_inner_convolutions_only(int8_voice):
    """Residual-block and upsampling-stage Convs get int8 weights; conv_pre, conv_post, cond and noise_convs keep
    float32 ones; the transposed convolutions and the NSF source's linear layer stay float."""
    import onnx

    svc, entry = int8_voice
    graph = onnx.load(str(int8_decoder_path(svc.model.onnx_path))).graph
    produced_by = {out: node.op_type for node in graph.node for out in node.output}
    quantized, kept = [], []
    for node in graph.node:
        modules = {part.split(".")[0] for part in node.name.split("/") if part}
        if node.op_type == "Conv":
            if produced_by.get(node.input[1]) == "DequantizeLinear":
                assert not modules & FLOAT_LAYERS and "resblocks" in modules, node.name
                quantized.append(node.name)
            else:
                assert modules & FLOAT_LAYERS, node.name
                kept.append(node.name)
        elif node.op_type in ("ConvTranspose", "MatMul", "Gemm"):
            assert produced_by.get(node.input[1]) != "DequantizeLinear", node.name
    assert len(quantized) == entry["quantized_layers"] > 10 and len(kept) == entry["float_layers"]
    assert {m for name in kept for m in FLOAT_LAYERS if m in name} == FLOAT_LAYERS


def test_int8_conversion_is_close_to_float(int8_voice, clips_dir):
    svc, _ = int8_voice
    wav, sr = sf.read(clips_dir / "clip2.wav", dtype="float32")
    a = svc.slice_inference(wav, sr, 1, f0_predictor="pm")
    b = svc.slice_inference(wav, sr, 1, f0_predictor="pm", vocoder_precision="int8")
    assert a.shape == b.shape and np.abs(a).max() > 1e-2
    assert np.abs(a - b).max() > 0 and SNR_FLOOR_DB < _snr(a, b) < SNR_CEILING_DB
    assert svc.model._int8_session is not None
    again = svc.slice_inference(wav, sr, 1, f0_predictor="pm", vocoder_precision="int8", decoder_chunk_frames=24)
    # many chunks instead of one: as close to float32 (ONNX Runtime's int8 kernels round differently with the input
    # length on one thread, so it is not the same int8 output: measured 27 dB apart, each 23.3 dB from float32)
    assert again.shape == b.shape and SNR_FLOOR_DB < _snr(a, again) < SNR_CEILING_DB


def test_int8_needs_its_file(rvc_export, encoder768, tmp_path):
    svc = Svc(copy_export(rvc_export[1], tmp_path), None, encoder_path=str(encoder768))
    wav = sung_phrase(1.0)
    with pytest.raises(OptionError, match="no int8 vocoder \\(voice.dec.int8.onnx\\).*--int8-vocoder"):
        svc.slice_inference(wav, 44100, 0, f0_predictor="pm", vocoder_precision="int8")
    with pytest.raises(OptionError, match="bf16 is a torch-backend option"):
        svc.slice_inference(wav, 44100, 0, f0_predictor="pm", vocoder_precision="bf16")


def test_int8_needs_the_split_export(rvc_export, encoder768, tmp_path):
    from svc_core.onnx.rvc_export import export_rvc

    export_rvc(rvc_export[0], tmp_path / "one.onnx", verify=False, split=False)
    svc = Svc(tmp_path / "one.onnx", None, encoder_path=str(encoder768))
    with pytest.raises(OptionError, match="split export.*without --no-split"):
        svc.slice_inference(sung_phrase(1.0), 44100, 0, f0_predictor="pm", vocoder_precision="int8")
    with pytest.raises(ModelError, match="split export"):
        add_int8_vocoder(svc, [tmp_path])


def test_torch_rvc_voice_refuses_int8(rvc_export, encoder768):
    svc = Svc(rvc_export[0], None, encoder_path=str(encoder768))
    with pytest.raises(OptionError, match="int8 runs on the ONNX backend"):
        svc.slice_inference(sung_phrase(1.0), 44100, 0, f0_predictor="pm", vocoder_precision="int8")
    with pytest.raises(ModelError, match="runs in torch.*export-onnx"):
        add_int8_vocoder(svc)


def test_int8_is_for_the_cpu_provider(int8_voice):
    import dataclasses

    voice = int8_voice[0].model
    cpu = voice.session_info
    voice.session_info = dataclasses.replace(cpu, provider="CUDAExecutionProvider")
    try:
        with pytest.raises(OptionError, match="int8 vocoder is for CPUs.*CUDAExecutionProvider"):
            voice.vocoder_precision_dtype("int8")
    finally:
        voice.session_info = cpu


def test_reexport_removes_a_stale_int8_file(rvc_export, tmp_path):
    from svc_core.onnx.rvc_export import export_rvc

    target = tmp_path / "voice.onnx"
    int8_decoder_path(target).write_bytes(b"calibrated for another voice")
    export_rvc(rvc_export[0], target, verify=False)
    assert not int8_decoder_path(target).exists()


def test_cli_exports_with_int8_vocoder_and_infer_uses_it(rvc_export, encoder768, clips_dir, tmp_path, capsys):
    """`export-onnx -m voice.pth -o voice.onnx --int8-vocoder`, then `infer --vocoder-precision int8`."""
    from svc_core.cli import main

    out = tmp_path / "voice.onnx"
    assert main(["export-onnx", "-m", str(rvc_export[0]), "-o", str(out), "--no-verify", "--int8-vocoder",
                 "--calibration", str(clips_dir / "clip0.wav"), str(clips_dir / "clip1.wav"),
                 "--encoder-path", str(encoder768)]) == 0
    text = capsys.readouterr().out
    assert "RVC v2 pitch voice" in text and "wrote voice.dec.int8.onnx" in text
    assert "held-out clip clip1.wav" in text and "dB" in text
    assert json.loads((tmp_path / "voice.onnx.json").read_text())["split"]["int8"]["check"]["clip"] == "clip1.wav"
    assert main(["infer", "-m", str(out), "--encoder", str(encoder768), "-i", str(clips_dir / "clip0.wav"),
                 "-o", str(tmp_path / "out.wav"), "-s", "0", "--f0", "pm", "--vocoder-precision", "int8"]) == 0
    assert abs(sf.info(str(tmp_path / "out.wav")).duration - 2.0) < 0.05
    assert main(["export-onnx", "-m", str(rvc_export[0]), "-o", str(tmp_path / "x.onnx"), "--int8-vocoder",
                 "--no-split"]) == 2
    assert "drop --no-split" in capsys.readouterr().err
