"""Memory stays flat in input length: a 10-minute song needs no more RAM than a 1-minute one beyond the
input and output buffers in memory, and nothing beyond them file to file (Svc.convert_file). Measured as peak RSS
of fresh processes (no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from encoder_factories import make_contentvec_checkpoint
from factories import make_upstream_checkpoint

PROBE = Path(__file__).with_name("memory_probe.py")
SLACK_MB = 60  # allocator noise between two runs of the same code


def _probe(voice, minutes: float, mode: str = "array") -> dict:
    proc = subprocess.run([sys.executable, str(PROBE), str(voice[0]), str(voice[1]), str(voice[2]), str(minutes),
                           mode],
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory):
    root = tmp_path_factory.mktemp("memvoice")
    g, cfg = make_upstream_checkpoint(root, speech_encoder="vec256l9", seed=5, inter_channels=16,
                                      hidden_channels=16, filter_channels=32, upsample_initial_channel=32,
                                      gin_channels=16)
    return g, cfg, make_contentvec_checkpoint(root / "cv.pt", seed=6)


def test_ten_minutes_cost_only_their_buffers(tiny_voice):
    one = _probe(tiny_voice, 1.0)
    ten = _probe(tiny_voice, 10.0)
    buffers = (ten["input_mb"] - one["input_mb"]) + (ten["output_mb"] - one["output_mb"])
    growth = ten["peak_rss_mb"] - one["peak_rss_mb"]
    print(f"\npeak RSS 1 min {one['peak_rss_mb']:.0f} MiB, 10 min {ten['peak_rss_mb']:.0f} MiB; "
          f"growth {growth:.0f} MiB vs buffers {buffers:.0f} MiB")
    assert growth <= buffers + SLACK_MB


def test_file_to_file_holds_nothing_input_sized(tiny_voice):
    one = _probe(tiny_voice, 1.0, "file")
    ten = _probe(tiny_voice, 10.0, "file")
    assert ten["streamed"] and abs(ten["output_seconds"] - 600.0) < 0.1
    growth = ten["peak_rss_mb"] - one["peak_rss_mb"]
    buffers = 2 * 9 * 60 * 44100 * 4 / 2**20  # the extra 9 minutes of input + output as float32 (182 MiB)
    print(f"\npeak RSS file to file: 1 min {one['peak_rss_mb']:.0f} MiB, 10 min {ten['peak_rss_mb']:.0f} MiB; "
          f"growth {growth:.0f} MiB (in memory the buffers alone would add {buffers:.0f} MiB)")
    # measured growth: 17-64 MiB between runs (allocator noise, and the feature cache, which holds up to 256 MB
    # and here takes ~25 MB); holding the input or the output would add at least 91 MiB each
    assert growth < buffers / 2
