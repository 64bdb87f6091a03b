"""Validation of the vocoder on held-out clips: decode the clip's own mel with its f0 and compare the output's mel
(mel L1, the number checkpoints are ranked by) and pitch (Praat, as svc_core.train.validation) with the clip's.
The global RNG is untouched: the excitation's draws come from a seeded NoiseSource."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...noise import TorchNoise
from ...train.checkpoints import write_eval_audio
from ...train.validation import PitchFollowing, pitch_following, pool
from ..mel import MelExtractor
from .data import VocoderClips

VALIDATION_SEED = 0  # seed of the excitation noise during validation


@dataclass
class VocoderValidation:
    mel_l1: float  # mean over clips of the L1 between the output's log-mel and the clip's
    pitch: PitchFollowing
    per_clip: list[tuple[str, float, PitchFollowing]] = field(default_factory=list)

    def describe(self) -> str:
        p = self.pitch
        return (f"validation mel L1 {self.mel_l1:.4f}, f0 within 50 c {100 * p.within_50c:.0f} % "
                f"(median {p.median_cents:.0f} c over {p.frames} voiced frames)")


@torch.no_grad()
def validate(generator, clips: VocoderClips, mel: MelExtractor, max_clips: int = 4, max_frames: int = 400,
             device: str | torch.device = "cpu", out_dir: str | Path | None = None,
             step: int | None = None) -> VocoderValidation:
    """Decode the first `max_clips` clips (cut to `max_frames`) with `generator` (a MelGenerator; left in the mode
    it was in). Writes eval/{step}/*.wav under `out_dir` when both are given."""
    from ...f0.registry import get_predictor

    s = mel.settings
    tracker = get_predictor("pm", hop_length=s.hop_size, sampling_rate=s.sample_rate)
    was = generator.training
    generator.eval()
    noise = TorchNoise.seeded(VALIDATION_SEED)
    results = []
    for i in range(min(len(clips), max_clips)):
        clip_mel, f0, uv, audio = clips.clip(i)
        n = min(clip_mel.shape[1], max_frames)
        f0_n = f0[None, :n].to(device)
        har = generator.m_source(f0_n, noise)
        out = generator(clip_mel[None, :, :n].to(device), har)[0, 0].float().cpu()
        real = mel(audio[None, : n * s.hop_size])
        fake = mel(out[None])
        t = min(real.shape[-1], fake.shape[-1])
        mel_l1 = float(torch.mean(torch.abs(real[..., :t] - fake[..., :t])))
        wave = out.numpy()
        follow = pitch_following(f0[:n].numpy(), uv[:n].numpy(), tracker.compute_raw_f0(wave, n))
        results.append((clips.name(i), mel_l1, follow))
        if out_dir is not None and step is not None:
            write_eval_audio(out_dir, step, clips.name(i), wave, s.sample_rate)
    generator.train(was)
    return VocoderValidation(float(np.mean([r[1] for r in results])) if results else float("nan"),
                             pool([r[2] for r in results]), results)
