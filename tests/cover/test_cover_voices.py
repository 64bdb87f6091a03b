"""A cover with another voice family: an RVC v2 voice (random weights in RVC's file layout, the parity fixtures'
small HuBERT as its encoder), with RVC's own options (output rate, protect), through the same run_cover."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cover.songs import SR
from rvc_factories import make_rvc_model
from rvc_pipe_factories import AdaptedContentVec
from svc_core.cover import CoverRequest, run_cover
from svc_core.errors import OptionError
from svc_core.pipeline import Svc


def test_cover_with_an_rvc_voice(song, known_separator, tmp_path, shared_dir):
    path, stems = song
    model = make_rvc_model(tmp_path / "voice.pth", "v2", "40k", seed=4)
    voice = Svc(model, None, encoder=AdaptedContentVec(shared_dir, "v2"))
    request = CoverRequest(path, model, separator=known_separator, transpose=-3, shift_accompaniment=True,
                           options={"f0_predictor": "pm", "resample_sr": 32000, "protect": 0.4},
                           formats=("flac",))
    result = run_cover(request, tmp_path / "out", voice=voice)
    n = stems["mixture"].shape[1]
    for stem, files in result.stems.items():
        data, sr = sf.read(str(files["flac"]), dtype="float32", always_2d=True)
        assert sr == SR and data.shape == (n, 2) and np.isfinite(data).all(), stem
    converted, _ = sf.read(str(result.stems["converted_vocals"]["flac"]), dtype="float32")
    assert np.abs(converted).max() > 1e-3  # random weights: not a voice, but sound
    assert result.accompaniment_shift == -3 and "MIDI" in result.suggestion.explanation
    # a so-vits-only option is named for an RVC voice, before any separation
    with pytest.raises(OptionError, match="noise_scale does not apply to RVC"):
        run_cover(CoverRequest(path, model, separator=known_separator, options={"noise_scale": 0.1}),
                  tmp_path / "o2", voice=voice)
