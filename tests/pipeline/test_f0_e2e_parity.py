"""End to end for dio and harvest: converting with our f0 gives what converting with upstream's f0 gives.

What upstream recorded: `compute_f0_uv` of pm, dio and harvest on 4 s of speech (parity f0/README.md), and one
whole `Svc.slice_inference` with pm (e2e_pm.npz, checked stage by stage in test_e2e_parity.py). Upstream's
pipeline uses the predictor only through `compute_f0_uv(wav)`; after it, f0 becomes a float32 tensor, is
transposed and goes into `net_g.infer` the same way for every predictor.

So each test here runs our whole `Svc.slice_inference` on the fixture's speech twice on the same small voice:
once with our predictor, once with a stand-in that returns upstream's recorded f0/uv for that predictor (after
checking that the pipeline hands it the very samples upstream's predictor got). The two outputs agreeing within
the end-to-end tolerance proves our predictor, as the pipeline calls it, puts upstream's f0 into the synthesizer.
With test_e2e_parity.py (the rest of the pipeline equals upstream's run), that makes a dio or harvest conversion
equal to upstream's, without an upstream end-to-end recording for those two. pm has one: test_e2e_parity.py
compares our whole pm conversion with upstream's own output.

Not shown here: dio and harvest on other inputs than the recorded one (here the clip is one slice, given
unpadded, so the predictor sees exactly the recorded samples), and crepe, fcpe and rmvpe, which have no upstream
recording at all.
"""
from __future__ import annotations

import numpy as np
import pytest

from svc_core.pipeline import Svc

E2E_MAX_ABS = 1e-4  # the end-to-end tolerance of test_e2e_parity.py
TRANSPOSE = 3  # semitones, as in upstream's recorded end-to-end run
SPEAKER = "alto"
# one slice, no padding: the predictor then sees exactly the fixture's samples (they are 16-bit exact, so the
# pipeline's PCM_16 round trip keeps them)
OPTIONS = dict(transpose=TRANSPOSE, noise_scale=0.0, slice_db=-40, pad_seconds=0.0, cluster_ratio=0,
               auto_predict_f0=False, loudness_mix=1, cache=False)


class RecordedF0:
    """Stands in for a predictor: returns upstream's recorded (f0, uv) for the recorded input only."""

    def __init__(self, wav: np.ndarray, f0: np.ndarray, uv: np.ndarray) -> None:
        self.wav, self.f0, self.uv = wav, f0, uv
        self.calls = 0

    def compute_f0_uv(self, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert np.array_equal(np.asarray(wav, dtype=np.float32), self.wav), "not the input upstream's f0 is for"
        self.calls += 1
        return self.f0.copy(), self.uv.copy()


@pytest.fixture(scope="module")
def speech(parity_dir) -> dict[str, np.ndarray]:
    with np.load(parity_dir / "f0" / "f0_speech4s.npz") as data:
        return {key: data[key] for key in data.files}


def _convert(svc: Svc, wav: np.ndarray, name: str) -> np.ndarray:
    return svc.slice_inference(wav, 44100, SPEAKER, f0_predictor=name, **OPTIONS)


@pytest.mark.parametrize("name", ["dio", "harvest"])
def test_conversion_with_our_f0_equals_conversion_with_upstreams(svc: Svc, speech, monkeypatch, name: str):
    """Our predictor inside slice_inference vs upstream's recorded f0 inside the same slice_inference: within
    1e-4 everywhere. Rounding harvest to 0.1 Hz (upstream rounds only dio) failed this with 0.146 max abs."""
    wav = speech["wav44k"]
    ours = _convert(svc, wav, name)
    recorded = RecordedF0(wav, speech[f"{name}_f0"], speech[f"{name}_uv"])
    monkeypatch.setattr(svc, "_predictor", lambda *_args: recorded)
    upstream_f0 = _convert(svc, wav, name)
    assert recorded.calls == 1, "the clip should be converted as one slice"
    assert ours.shape == upstream_f0.shape == wav.shape
    assert np.abs(upstream_f0).max() > 1e-2, "the conversion should not be silent"
    off = float(np.abs(ours - upstream_f0).max())
    assert off <= E2E_MAX_ABS, f"{name}: output differs from the one with upstream's f0 by {off:.4g} max abs"
