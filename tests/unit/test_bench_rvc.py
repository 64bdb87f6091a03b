"""bench.rvc (issue #22's RVC bench) on small RVC-layout files: the baseline "torch eager, RVC's procedure" gives our
engine's output (same noise) while decoding each segment whole with its pads and keeping weight norm; RVC's long-input
split and RMVPE decoding as re-typed; the plan, the output comparison and the table. No timing is asserted."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import rvc  # noqa: E402
from bench.rvc_models import build_rvc  # noqa: E402
from bench.rvc_one import run_engine, run_reference  # noqa: E402
from bench.rvc_reference import SR16K, WINDOW, _cut_points, _local_average_cents  # noqa: E402
from svc_core.f0.rmvpe import cents_to_hz, salience_to_cents  # noqa: E402

CLIP_SECONDS = 2.5


@pytest.fixture(scope="module")
def small_files(tmp_path_factory):
    return build_rvc(tmp_path_factory.mktemp("rvcbench"), index_rows=1000, size="small", version="v1")


@pytest.fixture(scope="module")
def clip():
    from audio_factories import sung_phrase

    return sung_phrase(CLIP_SECONDS, gap_every=1.2, gap=0.3), 44100


def test_reference_is_our_output_with_rvcs_decoding_plan(small_files, clip):
    ref_out, ref_times, _, ref_frames = run_reference(small_files, "pm", clip)
    ours, times, _, frames = run_engine("torch", small_files, "pm", clip, None)
    assert ref_out.shape == ours.shape and ref_out.dtype == np.float32 and np.abs(ref_out).max() > 1e-2
    assert np.abs(ref_out - ours).max() <= rvc.SAME_OUTPUT
    padded = int(round(CLIP_SECONDS * SR16K)) + 2 * SR16K
    content_frames = (padded - 400) // 320 + 1  # HuBERT at 50 Hz, doubled to the f0's 100 Hz
    assert ref_frames == [min(padded // WINDOW, 2 * content_frames)]  # one call: the whole segment, 1 s pads too
    assert sum(frames) < ref_frames[0]  # ours skips the trimmed pads
    for stage in ("f0", "encoder", "retrieval", "synthesizer", "vocoder", "loudness"):
        assert ref_times.seconds[stage] > 0 and times.seconds[stage] > 0


def test_reference_keeps_weight_norm(small_files):
    from torch.nn.utils import parametrize

    from bench.rvc_reference import RvcReference

    ref = RvcReference(small_files["voice"], small_files["encoder"])
    assert parametrize.is_parametrized(ref.net.dec.ups[0], "weight")


def test_long_input_is_cut_at_the_quietest_frame_near_38_s():
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.5, 0.5, SR16K * 50)
    quiet = SR16K * 36 + 1234
    audio[quiet: quiet + WINDOW] = 0.0
    (cut,) = _cut_points(audio)
    assert quiet - WINDOW < cut <= quiet + WINDOW // 2
    assert _cut_points(audio[: SR16K * 40]) == []  # up to 41 s: one segment


def test_rvc_rmvpe_decoding_equals_the_vectorised_one():
    salience = np.random.default_rng(1).uniform(0, 0.2, (50, 360)).astype(np.float32)
    salience[::7] *= 0.1  # some frames below the threshold
    cents = _local_average_cents(salience.copy(), 0.03)
    ours = salience_to_cents(torch.from_numpy(salience), 0.03).numpy()
    assert np.allclose(cents, ours, rtol=1e-5, atol=1e-3) and (cents == 0).any() and (cents > 0).any()
    assert np.allclose(10 * 2 ** (cents / 1200) * (cents != 0), cents_to_hz(torch.from_numpy(ours)).numpy(), rtol=1e-5)


def test_plan_puts_the_baseline_first_and_the_file_rows_last():
    rows = rvc.plan(["pm"], [2, 1], ["torch", "rvc-reference"], 40.0, [160.0], ["torch"])
    assert [(r["backend"], r["threads"], r["file"]) for r in rows] == [
        ("rvc-reference", 2, False), ("torch", 2, False), ("rvc-reference", 1, False), ("torch", 1, False),
        ("torch", 2, True), ("torch", 2, True)]
    assert [r["seconds"] for r in rows[-2:]] == [40.0, 160.0]


def _row(backend, out, e2e, io="memory"):
    return {"backend": backend, "provider": backend, "f0": "pm", "threads": 2, "audio_seconds": 40.0, "io": io,
            "load": 1.0, "stages": {"f0": 1.0, "encoder": 0.5, "synthesizer": 0.5, "vocoder": e2e - 3.0},
            "convert": e2e - 1.0, "end_to_end": e2e, "cpu_seconds": e2e * 1.5,
            "rtf": e2e / 40, "peak_rss_mb": 900.0, "output": out, "decoded_frames": 4200, "decoder_calls": 1,
            "cpu_busy_before": 0.0, "gemm_peak": {"fp32": 100.0}, "rss_by_stage": {"encoder": 800.0, "vocoder": 900.0}}


def test_outputs_compared_and_tabled(tmp_path):
    base, ours = tmp_path / "a.npy", tmp_path / "b.npy"
    np.save(base, np.zeros(100, np.float32))
    np.save(ours, np.full(100, 2e-4, np.float32))
    rows = [_row("rvc-reference", str(base), 20.0), _row("torch", str(ours), 10.0),
            _row("torch", None, 12.0, io="file")]
    rvc.compare_outputs(rows)
    assert rows[1]["max_abs_diff"] == pytest.approx(2e-4) and "max_abs_diff" not in rows[2]
    counts = {rvc.count_key("rvc-reference", "pm", 40.0): {"encoder": 50.0, "synthesizer": 10.0, "vocoder": 170.0}}
    text = rvc.section({"stamp": "now", "machine": "box", "command": "python -m bench.rvc", "rows": rows,
                        "counts": counts})
    line = [ln for ln in text.splitlines() if ln.startswith("| torch | pm | 2 | 40 |")][0]
    assert "2.00x / 2.11x" in line and "2.0e-04" in line and "(0.50x)" in line and "900 (1.00x) (vocoder)" in line
    assert "| 15.0 (2.00x) |" in line
    assert "| 40 (file) |" in text
    arithmetic = [ln for ln in text.splitlines() if ln.startswith("| rvc-reference | pm | 2 | 50 / 10 / 170 |")]
    assert arithmetic == ["| rvc-reference | pm | 2 | 50 / 10 / 170 | 100 (100%) | 20 (20%) | 10 (10%) | 100 | 2.3 |"]
    json.dumps(rows)  # the raw figures are JSON


def test_one_row_in_a_fresh_process(tmp_path, small_files):
    workdir = Path(small_files["voice"]).parents[1]
    row = {"backend": "rvc-reference", "threads": 1, "f0": "pm", "seconds": 1.0, "file": False}
    result = rvc.run_row(row, str(workdir), size="small", peak=False)
    assert result["decoder_calls"] == 1 and result["peak_rss_mb"] > 0 and Path(result["output"]).is_file()
    assert max(result["rss_by_stage"].values()) <= result["peak_rss_mb"] + 1 and "encoder" in result["rss_by_stage"]
    assert set(rvc.STAGES) - {"load"} >= set(result["stages"])


def test_fast_paths_compute_the_same_attention(monkeypatch):
    import copy

    from bench import rvc_fast
    from svc_core.encoders.hubert_fairseq import SelfAttention
    from svc_core.models.attentions import MultiHeadAttention

    torch.manual_seed(0)
    monkeypatch.setattr(rvc_fast, "QUERY_BLOCK", 64)  # several blocks, the last one short
    attention = MultiHeadAttention(32, 32, 2, window_size=10)
    x = torch.randn(1, 32, 150)
    mask = torch.ones(1, 1, 150, 150)
    mask[..., 140:] = 0
    mask[..., 140:, :] = 0
    banded = copy.deepcopy(attention)
    assert rvc_fast.banded_relative_attention(banded) == 1
    with torch.no_grad():
        expected, got = attention(x, x, mask), banded(x, x, mask)
        assert torch.allclose(expected, got, atol=1e-5) and expected.abs().max() > 0.1
        banded.emb_rel_v.mul_(1.1)  # the relative values are used
        assert not torch.allclose(expected, banded(x, x, mask), atol=1e-4)
    hubert_attention = SelfAttention(64, 4)
    fused = copy.deepcopy(hubert_attention)
    assert rvc_fast.sdpa_attention(fused) == 1
    h = torch.randn(1, 40, 64)
    padding = torch.zeros(1, 40, dtype=torch.bool)
    padding[:, 35:] = True
    with torch.no_grad():
        assert torch.allclose(hubert_attention(h, padding), fused(h, padding), atol=1e-5)


def test_extra_backends_only_with_the_first_f0_and_thread_count():
    rows = rvc.plan(["pm", "rmvpe"], [2, 1], ["rvc-reference", "torch"], 40.0, [], [], ["torch-fast"])
    assert [(r["backend"], r["f0"], r["threads"]) for r in rows if r["backend"] == "torch-fast"] == [
        ("torch-fast", "pm", 2)]
    assert len(rows) == 9


def test_onnx_row_gives_the_reference_output(small_files, clip):
    from bench.rvc_one import onnx_voice

    onnx_voice(Path(small_files["voice"]), export=True)
    ref_out, _, _, _ = run_reference(small_files, "pm", clip)
    ours, times, _, _ = run_engine("onnx", small_files, "pm", clip, None, threads=1)
    assert ours.shape == ref_out.shape and np.abs(ours - ref_out).max() <= rvc.SAME_OUTPUT
    assert times.seconds["synthesizer"] > 0
