"""Piece planning and stitching: sizes, centre padding and upstream's crossfade arithmetic."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from svc_core.assemble import OutputBuffer, centre_fit, plan_pieces, split_slice


@dataclass
class Chunk:
    start: int
    end: int
    silent: bool


def _reference_crossfade(pieces_audio: list[np.ndarray], lg: int, ratio: float) -> np.ndarray:
    """Upstream's list-based stitching, written out from the spec (g.4) for 44.1 kHz input."""
    r = int(lg * ratio)
    c_l = (lg - r) // 2
    c_r = lg - r - c_l
    ramp = np.linspace(0, 1, r)
    out: list[float] = []
    for k, a in enumerate(pieces_audio):
        if k and lg:
            if ratio != 1:
                old, new = np.array(out[-(r + c_r):-c_r] if c_r else out[-(r + c_r):]), a[c_l:c_l + r]
                del out[-(r + c_r):]
                out.extend(old * (1 - ramp) + new * ramp)
                a = a[c_l + r:]
            else:
                old, new = np.array(out[-lg:]), a[:lg]
                del out[-lg:]
                out.extend(old * (1 - ramp) + new * ramp)
                a = a[lg:]
        out.extend(a.tolist())
    return np.array(out, dtype=np.float64)


def test_split_slice_overlaps_backwards():
    assert split_slice(0, 100, 40, 10) == [(0, 40), (30, 80), (70, 100)]
    assert split_slice(5, 20, 40, 10) == [(5, 20)]


@pytest.mark.parametrize("ratio", [0.75, 1.0, 0.5])
def test_crossfade_matches_upstream_arithmetic(ratio):
    sr = 44100
    chunks = [Chunk(0, 3 * sr + 123, False)]
    pieces = plan_pieces(chunks, sr, sr, clip_seconds=1.0, crossfade_seconds=0.25, max_seconds=60, max_crossfade=1)
    rng = np.random.default_rng(0)
    outs = [rng.standard_normal(p.out_length).astype(np.float32) for p in pieces]
    buf = OutputBuffer(pieces, ratio)
    for p, a in zip(pieces, outs):
        buf.append(p, a)
    ref = _reference_crossfade(outs, int(0.25 * sr), ratio)
    assert buf.sink.cursor == len(buf.audio) == len(ref)
    np.testing.assert_allclose(buf.audio, ref, atol=1e-6)


class _ListSink:
    def __init__(self):
        self.blocks = []

    def write(self, block):
        self.blocks.append(np.array(block))


def test_a_streaming_sink_gets_the_same_samples_holding_at_most_one_piece():
    sr = 44100
    chunks = [Chunk(0, 2 * sr, False), Chunk(2 * sr, 3 * sr, True), Chunk(3 * sr, 7 * sr + 77, False)]
    pieces = plan_pieces(chunks, sr, sr, clip_seconds=1.5, crossfade_seconds=0.3, max_seconds=60, max_crossfade=1)
    rng = np.random.default_rng(1)
    outs = [rng.standard_normal(p.out_length).astype(np.float32) for p in pieces]
    whole, sink = OutputBuffer(pieces, 0.75), _ListSink()
    streamed = OutputBuffer(pieces, 0.75, sink=sink)
    for k, (p, a) in enumerate(zip(pieces, outs)):
        whole.append(p, a)
        streamed.append(p, a)
        held = sum(p.out_length - p.crossfade for p in pieces[:k + 1]) - sum(len(b) for b in sink.blocks)
        assert held == (pieces[k + 1].crossfade if k + 1 < len(pieces) else 0)
    np.testing.assert_array_equal(np.concatenate(sink.blocks), whole.audio)


def test_silence_and_rate_change_lengths():
    chunks = [Chunk(0, 16000, False), Chunk(16000, 24000, True), Chunk(24000, 40000, False)]
    pieces = plan_pieces(chunks, 16000, 44100, 0, 0, 60, 1)
    assert [p.out_length for p in pieces] == [44100, 22050, 44100]
    assert sum(p.out_length for p in pieces) == len(OutputBuffer(pieces, 0.75).audio)


def test_long_slices_are_split_automatically():
    sr = 1000
    pieces = plan_pieces([Chunk(0, 150 * sr, False)], sr, sr, 0, 0, max_seconds=60, max_crossfade=1)
    assert len(pieces) == 3 and pieces[1].crossfade == sr and pieces[0].crossfade == 0


def test_centre_fit_pads_symmetrically_and_cuts():
    assert centre_fit(np.ones(3, np.float32), 6).tolist() == [0, 1, 1, 1, 0, 0]
    assert len(centre_fit(np.ones(10, np.float32), 6)) == 6
