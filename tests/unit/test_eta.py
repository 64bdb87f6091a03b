"""ui.eta: the bar follows the expected work of each stage, moves during the synthesis of one long piece, never
goes back, and its ETA uses the speed measured so far."""
from __future__ import annotations

import pytest

from svc_core.ui.eta import DEFAULT_RATES, JobProgress, StageRates


def test_fraction_is_monotonic_and_moves_during_the_synthesis_of_one_long_piece():
    progress = JobProgress(DEFAULT_RATES)
    progress.at_least(0.01)
    progress.at_least(0.04)
    progress.plan([(0.5, True), (60.0, False), (0.5, True)], now=0.0)
    seen = [progress.fraction]
    steps = [(1, "f0", 0.0), (1, "encoder", 0.0), (1, "synthesizer", 0.0), *[(1, "vocoder", k / 20)
                                                                             for k in range(21)]]
    for piece, stage, fraction in steps:
        progress.step(piece, stage, fraction)
        seen.append(progress.fraction)
    progress.step(1, "f0", 0.0)  # a late or repeated step never moves the bar back
    seen.append(progress.fraction)
    progress.converted()
    seen.append(progress.fraction)
    assert seen == sorted(seen)
    synthesis = seen[4:25]
    assert len(set(synthesis)) == len(synthesis)  # every vocoder chunk moves the bar
    assert synthesis[-1] - synthesis[0] > 0.5  # the vocoder is most of the work
    assert 0.04 <= seen[0] < 0.05 and seen[-1] < 1.0  # the plot and the write are still to come


def test_eta_uses_the_measured_speed():
    progress = JobProgress({"f0": 0.0, "encoder": 0.0, "synthesizer": 0.0, "vocoder": 1.0, "finish": 0.0})
    assert progress.eta() is None
    progress.plan([(10.0, False)], now=100.0)
    assert progress.eta(now=100.0) == pytest.approx(10.0)  # nominal until some work is done
    progress.step(0, "vocoder", 0.5)  # half the expected work done in 10 s: twice as slow as expected
    assert progress.eta(now=110.0) == pytest.approx(10.0)
    progress.step(0, "vocoder", 0.75)
    assert progress.eta(now=112.0) == pytest.approx(4.0)


def test_rates_learnt_per_voice_skip_cached_stages():
    rates = StageRates()
    rates.learn("v/torch", {"f0": 0.001, "encoder": 2.0, "synthesizer": 3.0, "vocoder": 5.0, "write": 0.5,
                            "f0 plot": 0.5}, voiced_seconds=10.0, audio_seconds=20.0)
    learnt = rates.for_voice("v/torch")
    assert learnt["f0"] == DEFAULT_RATES["f0"]  # 1 ms: the f0 came from the cache
    assert learnt["encoder"] == pytest.approx(0.2) and learnt["synthesizer"] == pytest.approx(0.3)
    assert learnt["vocoder"] == pytest.approx(0.5)
    assert learnt["finish"] == pytest.approx(0.05)
    assert rates.for_voice("other/torch") == DEFAULT_RATES
