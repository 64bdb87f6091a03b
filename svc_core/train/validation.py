"""Validation of a generator on held-out clips: mel L1 of the inferred audio and how well it follows the f0 it
was given (the prior path, as users hear it), optionally with the clips written as eval audio.

    result = validate(net_g, SvcDataset(data, config, "val", random_crop=False), max_clips=4)
    result.mel_l1, result.f0_within_50c, result.f0_median_cents

Pitch following is measured by running Praat's pitch tracker (the "pm" predictor) on the output and comparing it
with the input f0 on frames both call voiced. A model that ignores its NSF source (early training, or a model
fed the wrong f0) scores near 0 % within 50 cents however low its mel loss is.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checkpoints import write_eval_audio
from .dataset import SvcDataset
from .mel import MelParams, mel_spectrogram

CENTS_PER_OCTAVE = 1200.0
IN_TUNE_CENTS = 50.0  # a frame "follows" the input when within a quarter tone


@dataclass
class PitchFollowing:
    """Output f0 against input f0 on frames voiced in both."""

    frames: int  # frames voiced in the input and in the output
    within_50c: float  # fraction of those frames within IN_TUNE_CENTS
    median_cents: float  # median absolute error, cents (nan when no frame is voiced in both)


@dataclass
class ValidationResult:
    mel_l1: float  # mean L1 between the output's log-mel and the clip's, over clips
    pitch: PitchFollowing
    per_clip: list[tuple[str, float, PitchFollowing]] = field(default_factory=list)

    @property
    def f0_within_50c(self) -> float:
        return self.pitch.within_50c

    @property
    def f0_median_cents(self) -> float:
        return self.pitch.median_cents

    def describe(self) -> str:
        p = self.pitch
        return (f"validation mel L1 {self.mel_l1:.4f}, f0 within 50 c {100 * p.within_50c:.0f} % "
                f"(median {p.median_cents:.0f} c over {p.frames} voiced frames)")


def pitch_following(f0_in: np.ndarray, uv_in: np.ndarray, f0_out_raw: np.ndarray) -> PitchFollowing:
    """f0_in [T] Hz, uv_in [T] 1 = voiced, f0_out_raw [T'] Hz (0 = unvoiced) -> PitchFollowing."""
    n = min(len(f0_in), len(uv_in), len(f0_out_raw))
    f0_in, uv_in, out = (np.asarray(a[:n], dtype=np.float64) for a in (f0_in, uv_in, f0_out_raw))
    both = (uv_in > 0.5) & (f0_in > 0) & (out > 0)
    if not both.any():
        return PitchFollowing(0, 0.0, float("nan"))
    cents = CENTS_PER_OCTAVE * np.abs(np.log2(out[both] / f0_in[both]))
    return PitchFollowing(int(both.sum()), float(np.mean(cents < IN_TUNE_CENTS)), float(np.median(cents)))


def pool(results: list[PitchFollowing]) -> PitchFollowing:
    """Frame-weighted pool of per-clip results."""
    frames = sum(r.frames for r in results)
    if frames == 0:
        return PitchFollowing(0, 0.0, float("nan"))
    within = sum(r.within_50c * r.frames for r in results) / frames
    medians = [r.median_cents for r in results if r.frames and not math.isnan(r.median_cents)]
    return PitchFollowing(frames, within, float(np.median(medians)) if medians else float("nan"))


@torch.no_grad()
def validate(net_g, val_set: SvcDataset, max_clips: int = 4, max_frames: int = 800, device: str | torch.device = "cpu",
             out_dir: str | Path | None = None, step: int | None = None, seed: int = 0) -> ValidationResult:
    """Infer the first `max_clips` clips of `val_set` (cut to `max_frames`) with `net_g` (left in the mode it was
    in; the global RNG is untouched). Writes eval/{step}/*.wav under `out_dir` when both are given."""
    from ..f0.registry import get_predictor

    config = val_set.config
    params = MelParams.from_config(config)
    tracker = get_predictor("pm", hop_length=config.hop_length, sampling_rate=config.sampling_rate)
    was = net_g.training
    net_g.eval()
    losses, clips = [], []
    with torch.random.fork_rng(devices=[device] if torch.device(device).type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(min(len(val_set), max_clips)):
            item = val_set[i]
            n = min(item["c"].shape[-1], max_frames)
            vol = item["vol"][None, :n].to(device) if item["vol"] is not None else None
            audio, _ = net_g.infer(item["c"][None, :, :n].to(device), item["f0"][None, :n].to(device),
                                   item["uv"][None, :n].to(device), torch.tensor([[item["spk"]]], device=device),
                                   vol=vol)
            fake = mel_spectrogram(audio[:, 0].float(), params)
            real = mel_spectrogram(item["wav"][:, : n * config.hop_length].to(device), params)
            t = min(fake.shape[-1], real.shape[-1])
            mel = float(torch.mean(torch.abs(fake[..., :t] - real[..., :t])))
            wave = audio[0, 0].float().cpu().numpy()
            follow = pitch_following(item["f0"][:n].numpy(), item["uv"][:n].numpy(),
                                     tracker.compute_raw_f0(wave, n))
            losses.append(mel)
            clips.append((item["name"], mel, follow))
            if out_dir is not None and step is not None:
                write_eval_audio(out_dir, step, item["name"], wave, config.sampling_rate)
    net_g.train(was)
    return ValidationResult(float(np.mean(losses)) if losses else float("nan"), pool([c[2] for c in clips]),
                            clips)


def validate_checkpoint(data_dir: str | Path, checkpoint: str | Path, max_clips: int = 8,
                        max_frames: int = 800) -> ValidationResult:
    """Load G_*.pth (config.json beside it, else the dataset's) and validate it on the dataset's val split."""
    from ..checkpoint import load_synthesizer
    from ..config import load_config

    checkpoint = Path(checkpoint)
    config_path = checkpoint.with_name("config.json")
    if not config_path.is_file():
        config_path = Path(data_dir) / "config.json"
    net = load_synthesizer(checkpoint, config_path)
    val_set = SvcDataset(data_dir, load_config(config_path), "val", random_crop=False, min_frames=1)
    return validate(net, val_set, max_clips=max_clips, max_frames=max_frames)
