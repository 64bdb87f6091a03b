"""bench.flops: arithmetic per pipeline stage and the matrix-multiply peak (the benchmark's yardstick)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.flops import count_stage_flops, gemm_peak  # noqa: E402
from svc_core.timing import StageTimes  # noqa: E402


def test_counts_each_stage_separately_and_exactly():
    a, b = torch.randn(64, 32), torch.randn(32, 16)
    x, w = torch.randn(1, 8, 100), torch.randn(4, 8, 3)

    def convert():
        times = StageTimes()
        with times.stage("mm"):
            torch.mm(a, b)
        with times.stage("conv"):
            F.conv1d(x, w, padding=1)
            F.conv1d(x, w, padding=1)
        with times.stage("idle"):
            torch.sin(x)

    gflop = count_stage_flops(convert)
    assert gflop["mm"] == pytest.approx(2 * 64 * 32 * 16 / 1e9)
    assert gflop["conv"] == pytest.approx(2 * 2 * 100 * 4 * 8 * 3 / 1e9)  # two convs, 2 FLOP per multiply-add
    assert "idle" not in gflop  # elementwise work is not counted


def test_stage_timer_is_restored_even_when_the_conversion_fails():
    original = StageTimes.stage

    def broken():
        with StageTimes().stage("x"):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        count_stage_flops(broken)
    assert StageTimes.stage is original


def test_gemm_peak_is_positive_and_restores_threads():
    threads = torch.get_num_threads()
    assert gemm_peak(1, size=128) > 0
    assert torch.get_num_threads() == threads


def _row(backend: str, threads: int, encoder_s: float, vocoder_s: float, peak: float) -> dict:
    return {"backend": backend, "provider": backend, "f0": "pm", "threads": threads, "audio_seconds": 40.0,
            "io": "memory", "load": 1.0, "stages": {"encoder": encoder_s, "synthesizer": 1.0, "vocoder": vocoder_s},
            "end_to_end": 2.0 + encoder_s + vocoder_s, "rtf": 0.5, "peak_rss_mb": 1000.0,
            "gemm_peak": {"fp32": peak, "bf16": 2 * peak}}


def test_arithmetic_table_rates_against_the_best_peak_of_the_run():
    from bench.__main__ import arithmetic_table, count_family

    counts = {("torch", "pm", 40.0): {"encoder": 600.0, "synthesizer": 10.0, "vocoder": 2400.0},
              ("onnx", "pm", 40.0): {"encoder": 600.0, "synthesizer": 10.0, "vocoder": 2000.0}}
    rows = [_row("torch", 2, 6.0, 24.0, 150.0), _row("onnx-int8", 2, 3.0, 20.0, 200.0)]
    lines = arithmetic_table(rows, counts)
    torch_line, onnx_line = lines[2], lines[3]
    # torch: 600 / 6 = 100 GFLOP/s = 50 % of the best 2-thread peak (200, measured by the other row); floor 3010 / 200
    assert "| 100 (50%) | 10 (5%) | 100 (50%) | 200 (150) | 400 | 15.1 |" in torch_line
    assert "| 200 (100%) | 10 (5%) | 100 (50%) | 200 (200) | 400 | 13.1 |" in onnx_line
    assert count_family("onnx-enc") == "onnx" and count_family("torch-bf16-int8") == "torch"
    assert count_family("torch-upstream") == "torch-upstream"


def test_a_parts_arithmetic_is_moved_out_of_its_stage():
    a = torch.randn(32, 32)

    def convert():
        times = StageTimes()
        with times.stage("synthesizer"):
            torch.mm(a, a)
            with times.part("vocoder", of="synthesizer"):
                torch.mm(a, a)
                torch.mm(a, a)

    gflop = count_stage_flops(convert)
    one = 2 * 32**3 / 1e9
    assert gflop["synthesizer"] == pytest.approx(one) and gflop["vocoder"] == pytest.approx(2 * one)
