"""An exported RVC voice in the engine: `Svc` loads the .onnx through the family table and RVC's recipe converts
with it; the audio equals the torch voice's conversion of the same clip (same seeds, same features)."""
from __future__ import annotations

import numpy as np
import pytest

from rvc_pipe_factories import AdaptedContentVec
from svc_core.pipeline import Svc

TOLERANCE = 1e-4
SR_IN = 22050


def _tone(seconds: float = 1.5, sr: int = SR_IN) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * 220 * t) * np.minimum(1, t * 4)).astype(np.float32)


def test_svc_converts_with_the_onnx_voice_as_with_torch(parity_dir, shared_dir, tmp_path):
    from svc_core.onnx.rvc_export import export_rvc
    from svc_core.onnx.rvc_runtime import RvcOnnxVoice

    pth = parity_dir / "rvc" / "models" / "rvc_small_v2_40k_f0.pth"
    onnx_path = tmp_path / "rvc_small_v2_40k_f0.onnx"
    export_rvc(pth, onnx_path, verify=False)
    encoder = AdaptedContentVec(shared_dir, "v2")
    torch_svc, onnx_svc = Svc(pth, None, encoder=encoder), Svc(onnx_path, None, encoder=encoder)
    assert isinstance(onnx_svc.model, RvcOnnxVoice) and onnx_svc.family.name == "rvc"
    wav = _tone()
    for chunk in (0, 32):
        ref = torch_svc.slice_inference(wav, SR_IN, 0, transpose=2, f0_predictor="pm", decoder_chunk_frames=chunk)
        got = onnx_svc.slice_inference(wav, SR_IN, 0, transpose=2, f0_predictor="pm", decoder_chunk_frames=chunk)
        assert got.shape == ref.shape and np.abs(got - ref).max() < TOLERANCE, chunk
    assert "synthesizer" in onnx_svc.last_times.seconds
