"""svc_core.cancel inside the real engine: a watch stops a conversion in the middle of a piece, reports steps per
vocoder chunk, changes no sample, and refuses plans with too many pieces."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from audio_factories import sung_phrase
from svc_core import cancel
from svc_core.cancel import ConversionCancelled, Watch
from svc_core.errors import OptionError

SR = 44100


class Recorder(Watch):
    """Records the plan and the steps; cancels at the n-th synthesizer step when asked to."""

    def __init__(self, cancel_at_step: int | None = None) -> None:
        super().__init__()
        self.plans: list = []
        self.steps: list[tuple[int, str, float]] = []
        self.cancel_at_step = cancel_at_step

    def on_plan(self, pieces):
        self.plans.append(pieces)

    def on_step(self, piece, stage, fraction):
        self.steps.append((piece, stage, fraction))
        synth = [s for s in self.steps if s[1] == "vocoder"]
        if self.cancel_at_step is not None and len(synth) == self.cancel_at_step:
            self.cancel("stopped by the test")


def test_a_watch_changes_no_sample_and_reports_vocoder_chunks(svc, clip):
    wav, sr = clip
    options = dict(f0_predictor="pm", decoder_chunk_frames=32, slice_db=-120, cache=False)  # 1 piece, 5+ chunks
    plain = svc.slice_inference(wav, sr, "alto", **options)
    watch = Recorder()
    with cancel.watching(watch):
        watched = svc.slice_inference(wav, sr, "alto", **options)
    np.testing.assert_array_equal(watched, plain)
    assert len(watch.plans) == 1 and sum(not silent for _, silent in watch.plans[0]) == 1
    stages = [stage for _, stage, _ in watch.steps]
    assert stages.index("f0") < stages.index("encoder") < stages.index("synthesizer") < stages.index("vocoder")
    synth = [fraction for _, stage, fraction in watch.steps if stage == "vocoder"]
    assert len(synth) >= 5  # 4 s at 86 frames/s in chunks of 32 frames: a step per chunk
    assert synth == sorted(synth) and synth[-1] == 1.0 and 0 < synth[len(synth) // 2] < 1


def test_cancel_stops_inside_the_synthesis_of_a_piece(svc, clip):
    wav, sr = clip
    pieces_done: list[str] = []
    watch = Recorder(cancel_at_step=3)  # after the second vocoder chunk of the only piece
    with cancel.watching(watch), pytest.raises(ConversionCancelled, match="stopped by the test"):
        svc.slice_inference(wav, sr, "alto", f0_predictor="pm", decoder_chunk_frames=32, slice_db=-120,
                            progress=lambda fraction, message: pieces_done.append(message))
    assert pieces_done == []  # it never reached the end of the piece
    synth = [s for s in watch.steps if s[1] == "vocoder"]
    assert len(synth) == 3  # nothing ran after the cancel's checkpoint


def test_a_cancel_while_the_model_runs_stops_it_at_the_next_layer(svc):
    """A cancel flag set while the vocoder runs (as another thread would) stops it at the next submodule call, not
    at the end of the piece."""
    wav = sung_phrase(8.0)
    watch = Watch()
    entered = threading.Event()
    calls = []

    def cancel_on_first_vocoder_layer(_module, _args):
        calls.append(1)
        if len(calls) == 1:
            watch.cancel("stopped while the vocoder ran")
            entered.set()

    handle = svc.model.dec.ups[0].register_forward_pre_hook(cancel_on_first_vocoder_layer)
    try:
        with cancel.watching(watch), pytest.raises(ConversionCancelled, match="while the vocoder ran"):
            svc.slice_inference(wav, SR, "alto", f0_predictor="pm", decoder_chunk_frames=0, slice_db=-120)
    finally:
        handle.remove()
    assert entered.is_set() and len(calls) == 1  # the vocoder's first upsampling ran once, then it stopped


def test_hooks_are_removed_and_other_threads_are_not_affected(svc, clip):
    wav, sr = clip
    watch = Recorder()
    watch.cancel("this thread only")
    with cancel.watching(watch):
        with pytest.raises(ConversionCancelled):
            svc.slice_inference(wav, sr, "alto", f0_predictor="pm")
    result: list = []
    thread = threading.Thread(target=lambda: result.append(svc.slice_inference(wav, sr, "alto", f0_predictor="pm")))
    thread.start()
    thread.join()
    assert len(result) == 1 and result[0].shape == (len(wav),)
    assert not svc.model.dec.conv_pre._forward_pre_hooks  # no hook left behind


def test_deadline_stops_with_its_reason(svc, clip):
    wav, sr = clip
    watch = Watch(deadline=0.0, deadline_reason="out of time (test)")
    with cancel.watching(watch), pytest.raises(ConversionCancelled, match="out of time"):
        svc.slice_inference(wav, sr, "alto", f0_predictor="pm")


def test_too_many_pieces_are_refused_before_any_work(svc):
    wav = sung_phrase(12.0)
    with pytest.raises(OptionError, match=r"into \d+ pieces; the limit is 3 \(max_pieces\)"):
        svc.slice_inference(wav, SR, "alto", f0_predictor="pm", clip_seconds=2, max_pieces=3, slice_db=-120)
