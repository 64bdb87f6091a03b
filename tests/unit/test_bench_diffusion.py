"""bench's shallow-diffusion rows: `upstream_diffusion` (upstream's way: plain denoiser forward per step, each slice
decoded whole) gives our samples while doing the extra work, and the README table reads the rows."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.diffusion_table import diffusion_table, stages_table  # noqa: E402
from bench.one import upstream_diffusion  # noqa: E402
from diffusion_factories import make_diffusion_model  # noqa: E402
from svc_core.noise import TorchNoise  # noqa: E402
from svc_core.diffusion.stage import DiffusionStage  # noqa: E402
from svc_core.options import ConvertOptions  # noqa: E402
from svc_core.timing import StageTimes  # noqa: E402
from vocoder_factories import make_vocoder  # noqa: E402

FRAMES = 160
SPAN = (40, 120)  # the frames kept (the rest: the slice padding)


def _render(stage: DiffusionStage) -> tuple[np.ndarray, int, int]:
    """(audio of the SPAN frames, conditioner projection calls, frames the vocoder's first convolution saw)."""
    gen = torch.Generator().manual_seed(1)
    units, vol = torch.randn(1, 768, FRAMES, generator=gen), torch.rand(1, FRAMES, generator=gen) * 0.2
    f0 = torch.linspace(150.0, 300.0, FRAMES)[None]
    source = (0.3 * torch.sin(torch.arange(FRAMES * 512) * 0.03)).numpy().astype(np.float32)
    opts = ConvertOptions(shallow_diffusion=True, k_step=40, diffusion_method="dpm-solver++", diffusion_speedup=10)
    calls, frames = [], []
    hooks = [stage.model.decoder.denoise_fn.residual_layers[0].conditioner_projection.register_forward_hook(
                 lambda *_: calls.append(1)),
             stage.vocoder.generator.conv_pre.register_forward_pre_hook(lambda _m, a: frames.append(a[0].shape[-1]))]
    try:
        audio = stage.render(units, f0, vol, None, opts, TorchNoise.seeded(3), StageTimes(), source, SPAN, 256)
    finally:
        for h in hooks:
            h.remove()
    return audio, len(calls), sum(frames)


def test_upstream_way_gives_our_samples_with_more_work(tmp_path):
    model, config = make_diffusion_model(tmp_path / "diffusion", n_spk=1, seed=2)
    stage = DiffusionStage(model, config, vocoder_path=str(make_vocoder(tmp_path / "voc", seed=3)))
    ours, our_calls, our_frames = _render(stage)
    undo = upstream_diffusion(stage)
    theirs, their_calls, their_frames = _render(stage)
    undo()
    again, again_calls, _ = _render(stage)
    assert ours.shape == theirs.shape == (80 * 512,) and np.abs(ours).max() > 1e-3
    assert np.abs(ours - theirs).max() < 1e-5
    assert our_calls == 1 and their_calls == 4  # k_step 40 / speedup 10: 4 denoiser calls, each re-projecting
    assert their_frames == FRAMES and our_frames < their_frames  # whole slice vs kept frames + context
    assert again_calls == 1 and np.array_equal(again, ours)  # undone


def test_tables_put_rows_against_upstreams_way():
    def row(backend, diffusion, vocoder, cpu):
        return {"backend": backend, "provider": backend, "f0": "pm", "threads": 2, "audio_seconds": 40.0,
                "io": "memory", "k_step": 100, "load": 1.0, "end_to_end": 50.0, "rtf": 1.2, "peak_rss_mb": 1800.0,
                "convert_cpu_seconds": 90.0, "stages": {"diffusion": diffusion, "mel vocoder": vocoder},
                "stage_cpu_seconds": {"diffusion": cpu, "mel vocoder": cpu}}

    lines = diffusion_table([row("torch-upstream", 30.0, 30.0, 20.0), row("torch", 10.0, 10.0, 5.0)])
    assert "| 60.00 (1.00x) | 1.00x |" in lines[-2] and "| 20.00 (0.33x) | 3.00x | 10.0 | 4.00x |" in lines[-1]
    stage_rows = [{"mode": "bf16", "threads": 2, "k_step": 20, "pieces": 1, "audio_s": 9.0, "load1": 15.0,
                   "cpu": {"diffusion": 1.0, "mel vocoder": 2.0}, "wall": {"diffusion": 3.0, "mel vocoder": 4.0},
                   "speedup_cpu": 2.0, "speedup_wall": 1.5, "mel_max_abs_dev": 0.008, "audio_max_abs_dev": 0.0026}]
    assert "| bf16 | 2 | 20 | 1 / 9.0 | 1.00 | 2.00 | 2.00x |" in stages_table(stage_rows)[-1]
