"""svc_core.live.stats: NTP clock offset, end-to-end latency with the engine's delay, summaries, the block-size
suggestion, the bounded session log."""
from __future__ import annotations

import json

import pytest

from svc_core.live.stats import (MAX_SUGGEST_SECONDS, ClockOffset, CostModel, SessionLog, SessionStats,
                                 clock_sample, percentile, speed_advice)


def test_clock_offset_is_ntp_and_keeps_the_smallest_round_trip():
    # server clock = client + 1000 ms; symmetric 5 ms each way, server holds 1 ms
    sample = clock_sample(t0=0.0, t1=1005.0, t2=1006.0, t3=11.0)
    assert sample.offset_ms == pytest.approx(1000.0) and sample.delay_ms == pytest.approx(10.0)
    clock = ClockOffset(keep=3)
    clock.add(0.0, 1005.0, 1006.0, 11.0)  # exact
    clock.add(100.0, 1140.0, 1141.0, 142.0)  # 40 ms up, 1 ms down: offset error 19.5 ms, delay 41
    assert clock.offset_ms == pytest.approx(1000.0)
    for t in (200.0, 300.0, 400.0):  # the exact sample leaves the window of 3
        clock.add(t, t + 1040.0, t + 1041.0, t + 42.0)
    assert clock.offset_ms == pytest.approx(1019.5)
    assert clock.to_server(5.0) == pytest.approx(1024.5)


def test_block_latency_adds_the_engine_delay_and_splits_with_the_offset():
    stats = SessionStats(block_seconds=0.1, extra_seconds=0.5, delay_seconds=0.05, io_rate=48000)
    stats.clock.add(0.0, 1005.0, 1006.0, 11.0)  # offset 1000
    stamps = stats.received(seq=0, samples=4800, capture_ms=100.0, recv_ms=1210.0)
    stats.converted(stamps, start_ms=1212.0, end_ms=1242.0, gated=False, out_samples=4800)
    stamps.send_ms = 1243.0
    stats.played(0, play_ms=300.0)
    assert stamps.e2e_ms(stats.delay_ms) == pytest.approx(250.0)  # 300 - 100 + 50
    assert stamps.inference_ms == 30.0 and stamps.queue_ms == 2.0
    assert stamps.uplink_ms(1000.0) == pytest.approx(110.0)  # 1210 - (100 + 1000)
    assert stamps.downlink_ms(1000.0) == pytest.approx(57.0)  # 300 - (1243 - 1000)
    summary = stats.summary()
    assert summary["e2e_median_ms"] == 250.0 and summary["inference_median_ms"] == 30.0
    assert summary["rtf_median"] == 0.3 and summary["advice"] is None


def test_dropped_and_unplayed_blocks_are_counted():
    stats = SessionStats(0.1, 0.5, 0.05, 48000)
    first = stats.received(0, 4800, 0.0, 10.0)
    stats.forget(first)
    assert stats.dropped == 1 and stats.played(0, 100.0) is None  # a dropped block is never finished
    stats.client_report({"underruns": 3, "underrun_ms": 42.5, "played_samples": 9600})
    summary = stats.summary()
    assert summary["dropped"] == 1 and summary["underruns"] == 3 and summary["underrun_ms"] == 42.5


def test_percentile_interpolates():
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(range(101), 95) == 95


def test_suggestion_follows_the_cost_model():
    # 0.1 s blocks cost 100 ms; each second of block adds 0.3 s: 70 ms whatever the block (extra context, overheads)
    model = CostModel.calibrated(0.1, 0.1, slope=0.3)
    assert model.intercept == pytest.approx(0.07) and model.seconds(0.3) == pytest.approx(0.16)
    block = model.smallest_block(target_rtf=0.6)  # 0.07 / (0.6 - 0.3) = 0.233 -> 0.24 s
    assert block == pytest.approx(0.24)
    assert model.seconds(block) <= 0.6 * block + 1e-9
    assert model.seconds(block - 0.02) > 0.6 * (block - 0.02)  # one step smaller would not hold
    advice = speed_advice(1.0, model, 0.1, 0.5)
    assert advice["level"] == "slow" and advice["suggested_block_seconds"] == pytest.approx(0.24)
    assert "Try a block of 0.24 s" in advice["message"]
    assert speed_advice(0.5, model, 0.1, 0.5) is None
    hopeless = CostModel(intercept=0.05, slope=0.9)  # a second of audio alone costs 0.9 s: nothing holds
    assert hopeless.smallest_block() is None
    assert f"up to {MAX_SUGGEST_SECONDS:g} s" in speed_advice(2.0, hopeless, 0.1, 0.5)["message"]
    # without a calibration: f0/encoder/retrieval over extra + block, the rest over the block
    staged = CostModel.from_stages(0.12, {"f0": 0.04, "encoder": 0.03, "retrieval": 0.02, "synthesizer": 0.03},
                                   0.1, 0.5)
    assert staged.intercept == pytest.approx(0.075) and staged.slope == pytest.approx(0.45)


def test_summary_advice_comes_from_measured_blocks():
    stats = SessionStats(0.1, 0.5, 0.05, 48000, slope=0.3)
    for seq in range(5):
        stamps = stats.received(seq, 4800, seq * 100.0, 0.0)
        stats.converted(stamps, 0.0, 120.0, False, 4800, {"encoder": 0.09, "synthesizer": 0.03})
    summary = stats.summary()
    assert summary["rtf_median"] == 1.2 and summary["advice"]["level"] == "slow"
    assert summary["cost_model"] == {"intercept_ms": 90.0, "slope": 0.3, "calibrated": True}
    assert summary["advice"]["suggested_block_seconds"] == pytest.approx(0.3)  # 0.09 / (0.6 - 0.3)


def test_session_log_is_bounded(tmp_path):
    log = SessionLog(tmp_path / "s.jsonl", max_bytes=400)
    for i in range(50):
        log.write({"type": "block", "seq": i})
    log.close()
    lines = [json.loads(line) for line in (tmp_path / "s.jsonl").read_text().splitlines()]
    assert (tmp_path / "s.jsonl").stat().st_size <= 400 + 100
    assert lines[0]["seq"] == 0 and lines[-1]["type"] == "truncated"


def test_holdback_counts_the_input_the_engine_keeps():
    """Output block k starts at output position sum(out before k); the input held back then is added to e2e."""
    stats = SessionStats(0.1, 0.5, delay_seconds=0.05, io_rate=1000)
    lengths = [(100, 0), (100, 100), (100, 200), (100, 100)]  # (in, out) per call: nothing, one, two, one block
    for seq, (n_in, n_out) in enumerate(lengths):
        stamps = stats.received(seq, n_in, capture_ms=seq * 100.0, recv_ms=0.0)
        stats.converted(stamps, 0.0, 1.0, False, n_out)
        stats.played(seq, play_ms=seq * 100.0 + 150.0)
    done = list(stats._done)  # the first call returned nothing: there is no playback of it to wait for
    assert [s.seq for s in done] == [1, 2, 3] and [s.holdback_ms for s in done] == [100.0, 100.0, 0.0]
    assert [s.e2e_ms(stats.delay_ms) for s in done] == [300.0, 300.0, 200.0]
    assert stats.summary()["unreported"] == 0
