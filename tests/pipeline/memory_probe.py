"""Run in a fresh process: convert a synthetic song of N minutes and print peak RSS (MiB) as JSON.

Usage: python memory_probe.py MODEL CONFIG ENCODER MINUTES
The input is generated in 30 s blocks into one preallocated array, so the probe itself holds only the
input and the output buffer beyond the pipeline's working set.
"""
from __future__ import annotations

import json
import sys

import numpy as np
import torch

sys.path[:0] = [__file__.rsplit("/tests/", 1)[0], __file__.rsplit("/pipeline/", 1)[0]]

from audio_factories import sung_phrase  # noqa: E402
from svc_core import Svc  # noqa: E402
from svc_core.timing import peak_rss_mb  # noqa: E402

SR = 44100
BLOCK_SECONDS = 30


def main() -> None:
    model, config, encoder, minutes = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    torch.set_num_threads(1)
    svc = Svc(model, config, encoder_path=encoder)
    warm = svc.slice_inference(sung_phrase(8.0), SR, 0, f0_predictor="pm")  # load lazy parts first
    del warm
    n = int(minutes * 60 * SR)
    wav = np.empty(n, dtype=np.float32)
    block = sung_phrase(BLOCK_SECONDS, gap_every=7.0, gap=0.5)
    for start in range(0, n, len(block)):
        wav[start:start + len(block)] = block[: n - start]
    baseline = peak_rss_mb()
    out = svc.slice_inference(wav, SR, 0, f0_predictor="pm")
    print(json.dumps({"minutes": minutes, "peak_rss_mb": peak_rss_mb(), "before_mb": baseline,
                      "input_mb": wav.nbytes / 2**20, "output_mb": out.nbytes / 2**20,
                      "seconds": svc.last_times.total, "pieces_rtf": svc.last_times.rtf}))


if __name__ == "__main__":
    main()
