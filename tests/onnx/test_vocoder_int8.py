"""The opt-in int8 vocoder (svc_core/onnx/vocoder_int8.py): calibration through the real pipeline, what the
quantised graph contains, its use by OnnxSvc, the manifest record, and the refusals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase
from onnx_files import copy_export
from svc_core.errors import OptionError
from svc_core.onnx import OnnxSvc
from svc_core.onnx.split_export import int8_decoder_path
from svc_core.onnx.vocoder_int8 import (FLOAT_LAYERS, INT8_MANIFEST_KEY, MAX_CALIBRATION_WINDOWS, _spread,
                                        add_int8_vocoder, calibration_clips, compare_decoders)


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibration")
    for i, seconds in enumerate((2.5, 1.8, 2.2)):
        sf.write(folder / f"clip{i}.wav", sung_phrase(seconds, gap_every=1.2, gap=0.4, seed=20 + i), 44100)
    return folder


@pytest.fixture(scope="module")
def int8_export(exported, encoder256, clips_dir, tmp_path_factory):
    onnx_path = copy_export(exported["mix"].onnx, tmp_path_factory.mktemp("int8"))
    svc = OnnxSvc(onnx_path, encoder_path=str(encoder256))
    entry = add_int8_vocoder(svc, [clips_dir])
    return svc, entry


def test_calibration_writes_the_file_and_records_it(int8_export):
    svc, entry = int8_export
    import onnx

    path = int8_decoder_path(svc.onnx_path)
    assert path.is_file() and path.name == "model.dec.int8.onnx" and entry["file"] == path.name
    calibration = entry["calibration"]
    assert calibration["clips"] == ["clip0.wav", "clip1.wav"]
    assert 2 <= calibration["windows"] == min(calibration["windows_recorded"], MAX_CALIBRATION_WINDOWS)
    check = entry["check"]
    assert check["clip"] == "clip2.wav" and check["held_out"] is True and check["windows"] >= 1
    assert 15.0 < check["snr_db"] < 80.0 and check["max_abs_diff"] > 0  # close to float32, and not float32
    side = json.loads(open(svc.onnx_path + ".json").read())
    assert side["split"]["int8"] == entry and svc.manifest["split"]["int8"] == entry
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta[INT8_MANIFEST_KEY])["check"] == check


def test_graph_quantizes_inner_convolutions_only(int8_export):
    """Weights of the residual / upsampling Conv layers go through DequantizeLinear; conv_pre, conv_post, cond and
    noise_convs keep float32 weights; transposed convolutions are not quantised (no int8 kernel on the CPU)."""
    import onnx

    svc, entry = int8_export
    graph = onnx.load(str(int8_decoder_path(svc.onnx_path))).graph
    produced_by = {out: node.op_type for node in graph.node for out in node.output}
    initializers = {t.name for t in graph.initializer}
    quantized, kept = [], []
    for node in graph.node:
        modules = {part.split(".")[0] for part in node.name.split("/") if part}
        if node.op_type == "Conv":
            weight = node.input[1]
            if produced_by.get(weight) == "DequantizeLinear":
                quantized.append(node.name)
                assert not modules & FLOAT_LAYERS, node.name
            else:
                assert weight in initializers and modules & FLOAT_LAYERS, node.name
                kept.append(node.name)
        elif node.op_type == "ConvTranspose":
            assert produced_by.get(node.input[1]) != "DequantizeLinear", node.name
    assert len(quantized) == entry["quantized_layers"] > 10 and len(kept) == entry["float_layers"]
    assert any("conv_post" in name for name in kept) and any("conv_pre" in name for name in kept)


def test_int8_conversion_is_close_to_float(int8_export, clip):
    svc, _ = int8_export
    a = svc.slice_inference(*clip, "tenor", f0_predictor="pm")
    b = svc.slice_inference(*clip, "tenor", f0_predictor="pm", vocoder_precision="int8")
    assert a.shape == b.shape and np.abs(a).max() > 1e-2
    diff = a - b
    snr = 10 * np.log10(np.sum(a.astype(np.float64) ** 2) / np.sum(diff.astype(np.float64) ** 2))
    assert 0 < np.abs(diff).max() and snr > 15.0
    assert svc.last_times.seconds["vocoder"] > 0
    again = svc.slice_inference(*clip, "tenor", f0_predictor="pm", vocoder_precision="int8")
    assert np.array_equal(again, b)  # deterministic



def test_vocoder_sessions_open_on_first_use(int8_export, encoder256, clip):
    """A voice converting only in int8 never loads the float32 vocoder (and the other way round)."""
    svc, _ = int8_export
    int8_only = OnnxSvc(svc.onnx_path, encoder_path=str(encoder256))
    assert int8_only._decoder_session is None and int8_only._int8_session is None
    int8_only.slice_inference(*clip, "tenor", f0_predictor="pm", vocoder_precision="int8")
    assert int8_only._int8_session is not None and int8_only._decoder_session is None
    float_only = OnnxSvc(svc.onnx_path, encoder_path=str(encoder256))
    float_only.slice_inference(*clip, "tenor", f0_predictor="pm")
    assert float_only._decoder_session is not None and float_only._int8_session is None


def test_capture_and_compare(int8_export, encoder256, clips_dir):
    """capture_feeds records the vocoder's inputs without decoding (no vocoder file is even opened); a decoder
    compared with itself is exact."""
    from svc_core.onnx.vocoder_int8 import CALIBRATION_FRAMES, capture_feeds, session_feed_decoder

    svc = OnnxSvc(int8_export[0].onnx_path, encoder_path=str(encoder256))
    (feeds,) = capture_feeds(svc, [clips_dir / "clip0.wav"])
    assert svc._decoder_session is None and svc._int8_session is None and svc._decode_override is None
    context = int(svc.split["context_frames"])
    assert all(f["z"].shape[-1] <= CALIBRATION_FRAMES + 2 * context for f in feeds)
    assert [int(f["offset"][0]) for f in feeds] == sorted(int(f["offset"][0]) for f in feeds)
    decode = session_feed_decoder(svc.decoder_session)
    result = compare_decoders(decode, decode, feeds)
    assert result["snr_db"] == float("inf") and result["max_abs_diff"] == 0.0 and result["windows"] == len(feeds)


def test_int8_needs_its_file(exported, encoder256, clip, tmp_path):
    onnx_path = copy_export(exported["mix"].onnx, tmp_path)
    svc = OnnxSvc(onnx_path, encoder_path=str(encoder256))
    with pytest.raises(OptionError, match="no int8 vocoder.*--int8-vocoder"):
        svc.slice_inference(*clip, "alto", f0_predictor="pm", vocoder_precision="int8")
    with pytest.raises(OptionError, match="decoder_chunk_frames"):
        svc.slice_inference(*clip, "alto", f0_predictor="pm", vocoder_precision="int8", decoder_chunk_frames=0)


def test_int8_is_for_the_cpu_provider(int8_export, clip):
    import dataclasses

    svc, _ = int8_export
    cpu = svc.session_info
    svc.session_info = dataclasses.replace(cpu, provider="CUDAExecutionProvider")
    try:
        with pytest.raises(OptionError, match="int8 vocoder is for CPUs.*CUDAExecutionProvider"):
            svc.slice_inference(*clip, "alto", f0_predictor="pm", vocoder_precision="int8")
    finally:
        svc.session_info = cpu


def test_reexport_removes_a_stale_int8_file(int8_export, exported, tmp_path):
    from svc_core.onnx import export_synthesizer

    svc, _ = int8_export
    target = tmp_path / "model.onnx"
    int8_decoder_path(target).write_bytes(b"calibrated for another checkpoint")
    export_synthesizer(exported["mix"].model, exported["mix"].config, target, verify=False)
    assert not int8_decoder_path(target).exists()


def test_torch_backend_refuses_int8(exported, encoder256, clip):
    from svc_core.pipeline import Svc

    e = exported["mix"]
    with pytest.raises(OptionError, match="int8 runs on the ONNX backend"):
        Svc(e.model, e.config, encoder_path=str(encoder256)).slice_inference(*clip, "alto", f0_predictor="pm",
                                                                              vocoder_precision="int8")


def test_windows_are_spread_over_the_clips():
    assert _spread(list(range(5)), 16) == [0, 1, 2, 3, 4]
    assert _spread(list(range(40)), 4) == [0, 13, 26, 39]


def test_calibration_clips(tmp_path, clips_dir):
    assert [p.name for p in calibration_clips([clips_dir])] == ["clip0.wav", "clip1.wav", "clip2.wav"]
    assert [p.name for p in calibration_clips([clips_dir / "clip1.wav"])] == ["clip1.wav"]
    assert {p.suffix for p in calibration_clips()} == {".flac"}  # the repository's examples/
    with pytest.raises(OptionError, match="does not exist"):
        calibration_clips([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionError, match="No calibration audio found"):
        calibration_clips([tmp_path / "empty"])


def test_silent_calibration_clip_is_a_message(exported, encoder256, tmp_path):
    onnx_path = copy_export(exported["mix"].onnx, tmp_path / "export")
    hiss = np.random.default_rng(0).standard_normal(44100).astype(np.float32) * 1e-3  # -60 dBFS: all "silence"
    sf.write(tmp_path / "hiss.wav", hiss, 44100)
    with pytest.raises(OptionError, match="hiss.wav' has no voiced audio"):
        add_int8_vocoder(OnnxSvc(onnx_path, encoder_path=str(encoder256)), [tmp_path / "hiss.wav"])
    assert not int8_decoder_path(onnx_path).exists()


def test_cli_adds_the_int8_vocoder_and_infer_uses_it(exported, encoder256, clips_dir, tmp_path, capsys):
    """`export-onnx -o model.onnx --int8-vocoder` on an existing export, then `infer --vocoder-precision int8`."""
    from svc_core.cli import main

    onnx_path = copy_export(exported["vec256l9"].onnx, tmp_path / "export")
    assert main(["export-onnx", "-o", str(onnx_path), "--int8-vocoder", "--calibration", str(clips_dir),
                 "--encoder-path", str(encoder256)]) == 0
    text = capsys.readouterr().out
    assert "wrote model.dec.int8.onnx" in text and "held-out clip clip2.wav" in text and "dB" in text
    assert main(["infer", "-m", str(onnx_path), "--encoder", str(encoder256), "-i", str(clips_dir / "clip0.wav"),
                 "-o", str(tmp_path / "out.wav"), "-s", "0", "--f0", "pm", "--vocoder-precision", "int8"]) == 0
    text = capsys.readouterr().out
    assert "synthesizer: onnxruntime" in text and "vocoder int8" in text
    assert abs(sf.info(str(tmp_path / "out.wav")).duration - 2.5) < 0.05
    assert main(["export-onnx", "-o", str(tmp_path / "missing.onnx"), "--int8-vocoder"]) == 2
    assert "missing.onnx' does not exist" in capsys.readouterr().err
