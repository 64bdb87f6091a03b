"""Run in a fresh process: convert a synthetic song of N minutes and print peak RSS (MiB) as JSON.

Usage: python memory_probe.py MODEL CONFIG ENCODER MINUTES [array|file|file-nocache]
array: the input is generated in 30 s blocks into one preallocated array, so the probe itself holds only the
input and the output buffer beyond the pipeline's working set. file: the input is written to a WAV file in 30 s
blocks and converted with Svc.convert_file into another, so nothing input-sized need be held at all.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
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
    block = sung_phrase(BLOCK_SECONDS, gap_every=7.0, gap=0.5)
    if len(sys.argv) > 5 and sys.argv[5].startswith("file"):
        if sys.argv[5] == "file-nocache":
            svc.cache.max_bytes = 0
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "song.wav", Path(tmp) / "out.wav"
            with sf.SoundFile(src, "w", SR, 1, subtype="PCM_16") as f:
                for start in range(0, n, len(block)):
                    f.write(block[: n - start])
            del block
            baseline = peak_rss_mb()
            result = svc.convert_file(src, dst, 0, f0_predictor="pm")
            print(json.dumps({"minutes": minutes, "peak_rss_mb": peak_rss_mb(), "before_mb": baseline,
                              "output_seconds": result.seconds, "streamed": result.streamed,
                              "seconds": svc.last_times.total}))
        return
    wav = np.empty(n, dtype=np.float32)
    for start in range(0, n, len(block)):
        wav[start:start + len(block)] = block[: n - start]
    baseline = peak_rss_mb()
    out = svc.slice_inference(wav, SR, 0, f0_predictor="pm")
    print(json.dumps({"minutes": minutes, "peak_rss_mb": peak_rss_mb(), "before_mb": baseline,
                      "input_mb": wav.nbytes / 2**20, "output_mb": out.nbytes / 2**20,
                      "seconds": svc.last_times.total, "pieces_rtf": svc.last_times.rtf}))


if __name__ == "__main__":
    main()
