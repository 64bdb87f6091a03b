"""An exported so-vits voice on ONNX Runtime streams through the live engine like its torch graph (GraphSvc: the
same model with the export's noise inputs, the reference the offline ONNX tests use too)."""
from __future__ import annotations

import numpy as np

from svc_core.audio import resample
from svc_core.live import LiveSession, LiveSettings


def _stream(svc, wav: np.ndarray) -> np.ndarray:
    session = LiveSession(svc, LiveSettings(f0_predictor="pm", silence_db=None))
    n = session.block_samples
    return np.concatenate([session.process(wav[i:i + n]).audio for i in range(0, len(wav) - n + 1, n)])


def test_onnx_voice_streams_like_torch(exported, encoder256, clip):
    from svc_core.onnx import GraphSvc, OnnxSvc

    e = exported["vec256l9"]
    wav = resample(clip[0][: int(1.5 * clip[1])], clip[1], 48000).astype(np.float32)
    onnx_out = _stream(OnnxSvc(e.onnx, encoder_path=str(encoder256)), wav)
    torch_out = _stream(GraphSvc(e.model, e.config, encoder_path=str(encoder256)), wav)
    assert np.all(np.isfinite(onnx_out)) and len(onnx_out) == len(torch_out)
    assert np.abs(onnx_out).max() > 1e-3
    # same model, same blocks: only ONNX Runtime's float arithmetic differs
    assert np.abs(onnx_out - torch_out).max() < 1e-3
