"""StageTimes: stages, parts moved out of their stage, module calls timed through hooks."""
from __future__ import annotations

import time

import torch

from svc_core.timing import StageTimes, timed_calls


def test_a_part_is_moved_out_of_its_stage_and_the_total_stays():
    times = StageTimes(audio_seconds=1.0)
    with times.stage("synthesizer"):
        time.sleep(0.02)
        with times.part("vocoder", of="synthesizer"):
            time.sleep(0.05)
    assert list(times.seconds) == ["synthesizer", "vocoder"]
    assert 0.015 < times.seconds["synthesizer"] < 0.045
    assert times.seconds["vocoder"] >= 0.05
    assert times.total >= 0.07


def test_timed_calls_times_each_call_and_removes_its_hooks():
    slow = torch.nn.Sequential(torch.nn.Identity())
    slow.register_forward_hook(lambda m, a, o: time.sleep(0.03))  # a module whose call takes >= 30 ms
    times = StageTimes()
    with times.stage("synthesizer"), timed_calls(slow, times, "vocoder", of="synthesizer"):
        slow(torch.zeros(1))
        slow(torch.zeros(1))
    assert times.seconds["vocoder"] >= 0.06 and times.seconds["synthesizer"] < 0.03
    assert len(slow._forward_pre_hooks) == 0 and len(slow._forward_hooks) == 1  # only the module's own hook
    slow(torch.zeros(1))  # outside: not timed
    assert times.seconds["vocoder"] < 0.09


def test_timed_calls_without_module_or_times_does_nothing():
    with timed_calls(None, StageTimes(), "vocoder", of="synthesizer"):
        pass
    module = torch.nn.Identity()
    with timed_calls(module, None, "vocoder", of="synthesizer"):
        module(torch.zeros(1))
    assert len(module._forward_pre_hooks) == 0
