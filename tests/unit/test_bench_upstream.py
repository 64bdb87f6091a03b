"""bench.one's `torch-upstream` row: our engine following upstream 4.1's procedure (each slice decoded whole, its
padding included) gives the same samples as our own plan and decodes more frames."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from audio_factories import sung_phrase  # noqa: E402
from bench.one import upstream_style  # noqa: E402
from encoder_factories import make_contentvec_checkpoint  # noqa: E402
from factories import make_upstream_checkpoint  # noqa: E402
from svc_core import Svc  # noqa: E402


def _decoded_frames(svc: Svc, clip: np.ndarray, **options) -> tuple[np.ndarray, int]:
    frames: list[int] = []
    hook = svc.model.dec.conv_pre.register_forward_pre_hook(  # once per decoded chunk
        lambda _m, args: frames.append(int(args[0].shape[-1])))
    try:
        out = svc.slice_inference(clip, 44100, 0, f0_predictor="pm", **options)
    finally:
        hook.remove()
    return out, sum(frames)


def test_upstream_procedure_same_samples_more_frames(tmp_path):
    g_path, config = make_upstream_checkpoint(tmp_path / "voice", speech_encoder="vec256l9", n_speakers=1, seed=5)
    encoder = make_contentvec_checkpoint(tmp_path / "enc.pt", final_dim=256, seed=6)
    clip = sung_phrase(3.0, gap_every=1.5, gap=0.5)
    ours, ours_frames = _decoded_frames(Svc(g_path, config, encoder_path=str(encoder)), clip,
                                        decoder_chunk_frames=0)
    upstream = upstream_style(Svc)(g_path, config, encoder_path=str(encoder))
    theirs, theirs_frames = _decoded_frames(upstream, clip, decoder_chunk_frames=0)
    assert ours.shape == theirs.shape and np.abs(ours).max() > 1e-2
    assert np.abs(ours - theirs).max() < 1e-4
    assert theirs_frames > ours_frames  # the slice padding decoded too (ours: kept frames + receptive field only)
