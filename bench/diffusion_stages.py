"""The diffusion + mel vocoder stages alone, every mode timed in turn in one process (for a busy machine), and how
far each mode's mel and audio move from upstream's way.

`python -m bench.diffusion_stages --threads 2 --seconds 8 --k-steps 100,20 --rounds 2 [--workdir /tmp/svc-bench]`

One so-vits conversion of a `seconds` clip (full-size models of bench.models, pm f0) records what the diffusion
stage receives per piece (units, f0, volume, the so-vits audio, the kept span); then, `rounds` times, every mode
renders every recorded piece for every k_step with the same seeded draws (dpm-solver++, speedup 10). Printed as
JSON lines: per mode and k_step the best wall and CPU-seconds (this process, all threads) of the "diffusion" and
"mel vocoder" stages over the rounds, the speedup of their sum against upstream's way (CPU-seconds, which move
least with the other processes' load; and wall), and the max abs deviation of the mel (log units) and the audio
from upstream's way in float32. Modes: upstream (bench.one.upstream_diffusion: the plain denoiser forward per step,
each slice decoded whole), torch (ours: cached conditioner, 256-frame vocoder chunks), bf16-vocoder
(vocoder_precision bf16), bf16 (that plus diffusion_precision bf16).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from typing import Callable, Optional

SEED = 7  # the draws of every render
MODES: dict[str, dict] = {  # mode -> ConvertOptions changes (upstream: plus bench.one.upstream_diffusion)
    "upstream": {}, "torch": {}, "bf16-vocoder": {"vocoder_precision": "bf16"},
    "bf16": {"vocoder_precision": "bf16", "diffusion_precision": "bf16"},
}


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def record_pieces(svc, seconds: float) -> list[dict]:
    """Convert the bench clip once with shallow diffusion; return each piece's diffusion-stage inputs."""
    import numpy as np

    from .models import clip

    pieces: list[dict] = []
    hop = svc.hop_length

    def recorder(units, f0, vol, speaker, opts, noise, times, source=None, span=None, chunk_frames=0):
        pieces.append({"units": units, "f0": f0, "vol": vol, "speaker": speaker, "source": source, "span": span})
        n = (span[1] - span[0]) if span else f0.shape[1]
        return np.zeros(n * hop, dtype=np.float32)

    svc.diffusion.render = recorder
    wav, sr = clip(seconds)
    svc.slice_inference(wav, sr, 0, f0_predictor="pm", shallow_diffusion=True, k_step=20)
    del svc.diffusion.render
    return pieces


def render_all(svc, pieces: list[dict], opts) -> tuple[dict, dict, list, list]:
    """Render every piece -> ({stage: wall s}, {stage: CPU s}, mels, audios)."""
    from svc_core.noise import TorchNoise
    from svc_core.timing import StageTimes

    stage = svc.diffusion
    wall: dict[str, float] = {}
    cpu: dict[str, float] = {}
    mels, audios = [], []
    mel_fn = stage.mel

    def recording_mel(*args, **kw):
        mels.append(mel_fn(*args, **kw))
        return mels[-1]

    stage.mel = recording_mel
    try:
        for p in pieces:
            times = StageTimes()
            before = _cpu()
            # the two stages in sequence, each timed in wall and CPU seconds
            start = time.perf_counter()
            noise = TorchNoise.seeded(SEED)
            with times.stage("diffusion"):
                gt = stage.extract_mel(p["source"])
                mel = stage.mel(p["units"], p["f0"], p["vol"], p["speaker"], opts, noise, gt)
            mid, mid_cpu = time.perf_counter(), _cpu()
            audio = stage.vocode(mel, p["f0"], noise, svc.chunk_frames(opts), p["span"], stage.dtypes(opts)[1])
            end, end_cpu = time.perf_counter(), _cpu()
            audios.append(audio)
            wall["diffusion"] = wall.get("diffusion", 0.0) + mid - start
            wall["mel vocoder"] = wall.get("mel vocoder", 0.0) + end - mid
            cpu["diffusion"] = cpu.get("diffusion", 0.0) + mid_cpu - before
            cpu["mel vocoder"] = cpu.get("mel vocoder", 0.0) + end_cpu - mid_cpu
    finally:
        del stage.mel
    return wall, cpu, mels, audios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--k-steps", default="100,20")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--workdir", default="/tmp/svc-bench")
    args = ap.parse_args()

    import svc_core  # noqa: F401 - the engine's thread policy before torch
    import torch

    from svc_core import Svc
    from svc_core.options import ConvertOptions

    from .models import build, build_diffusion
    from .one import DIFFUSION_METHOD, DIFFUSION_SPEEDUP, upstream_diffusion

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    paths, dpaths = build(args.workdir, onnx=False), build_diffusion(args.workdir)
    svc = Svc(paths["model"], paths["config"], encoder_path=str(paths["encoder"]),
              diffusion_model_path=dpaths["diffusion_model"], diffusion_config_path=dpaths["diffusion_config"],
              vocoder_path=dpaths["mel_vocoder"])
    pieces = record_pieces(svc, args.seconds)
    frames = sum(p["f0"].shape[1] for p in pieces)
    modes = args.modes.split(",")
    best: dict[tuple, dict] = {}
    outputs: dict[tuple, tuple] = {}
    for _ in range(args.rounds):
        for k in (int(k) for k in args.k_steps.split(",")):
            for mode in modes:
                opts = ConvertOptions(shallow_diffusion=True, k_step=k, diffusion_method=DIFFUSION_METHOD,
                                      diffusion_speedup=DIFFUSION_SPEEDUP, **MODES[mode])
                undo: Optional[Callable[[], None]] = upstream_diffusion(svc.diffusion) if mode == "upstream" else None
                try:
                    wall, cpu, mels, audios = render_all(svc, pieces, opts)
                finally:
                    if undo is not None:
                        undo()
                entry = best.setdefault((mode, k), {"wall": {}, "cpu": {}})
                for name in wall:
                    entry["wall"][name] = min(entry["wall"].get(name, float("inf")), wall[name])
                    entry["cpu"][name] = min(entry["cpu"].get(name, float("inf")), cpu[name])
                outputs[(mode, k)] = (mels, audios)
                print(json.dumps({"progress": mode, "k_step": k, "wall": wall, "cpu": cpu,
                                  "load1": round(os.getloadavg()[0], 2)}), flush=True)
    for (mode, k), entry in best.items():
        ref = best.get(("upstream", k))
        row = {"mode": mode, "k_step": k, "threads": args.threads, "pieces": len(pieces), "frames": frames,
               "audio_s": round(frames * svc.hop_length / svc.sample_rate, 2),
               "wall": {s: round(v, 2) for s, v in entry["wall"].items()},
               "cpu": {s: round(v, 2) for s, v in entry["cpu"].items()}, "load1": round(os.getloadavg()[0], 2)}
        if ref is not None:
            row["speedup_cpu"] = round(sum(ref["cpu"].values()) / sum(entry["cpu"].values()), 2)
            row["speedup_wall"] = round(sum(ref["wall"].values()) / sum(entry["wall"].values()), 2)
            ref_mels, ref_audio = outputs[("upstream", k)]
            mels, audio = outputs[(mode, k)]
            row["mel_max_abs_dev"] = float(max((a - b).abs().max() for a, b in zip(mels, ref_mels)))
            row["audio_max_abs_dev"] = float(max(abs(a - b).max() for a, b in zip(audio, ref_audio)))
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
