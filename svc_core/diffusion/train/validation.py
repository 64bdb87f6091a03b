"""Validation of a diffusion model on held-out clips, as upstream's solver.test: the training loss on each whole
clip, and the sampler run on the first clips (mel, and audio through a mel vocoder when one is given).

The loss draws its steps t and noise from a fixed seed, so two checkpoints are scored on the same draws and the
keep-best ranking compares models, not luck (upstream redraws them at random every time).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...train.checkpoints import EVAL_DIR, write_eval_audio
from ...noise import TorchNoise
from .dataset import DiffDataset

VAL_SEED = 0  # seed of the validation draws (t, noise, sampler noise)


@dataclass
class DiffValidation:
    loss: float  # mean noise-prediction MSE over clips and draws
    mel_l1: float | None = None  # mean |sampled mel - clip mel| over the sampled clips (natural-log units)
    written: list[Path] = field(default_factory=list)

    def describe(self) -> str:
        text = f"validation loss {self.loss:.4f}"
        return text + (f", sampled mel L1 {self.mel_l1:.3f}" if self.mel_l1 is not None else "")


def _batch(item: dict[str, Any], device: torch.device) -> dict[str, torch.Tensor]:
    """One dataset item as a batch of 1 on `device`."""
    return {k: v[None].to(device) for k, v in item.items() if isinstance(v, torch.Tensor)}


@torch.no_grad()
def validation_loss(model, val_set: DiffDataset, repeats: int, device: torch.device, seed: int = VAL_SEED) -> float:
    """Mean training loss over every validation clip, `repeats` seeded (t, noise) draws each."""
    was = model.training
    model.eval()
    losses = []
    generator = torch.Generator().manual_seed(seed)  # CPU draws, moved to the device: the same on CPU and CUDA
    noise = TorchNoise(generator)
    for i in range(len(val_set)):
        b = _batch(val_set[i], device)
        for _ in range(repeats):
            t = torch.randint(0, model.decoder.k_step_max, (1,), generator=generator).to(device)
            loss = model.loss(b["units"], b["f0"], b["volume"], b["mel"], spk_id=b["spk_id"],
                              aug_shift=b["aug_shift"], t=t, noise=noise)
            losses.append(float(loss))
    model.train(was)
    return float(np.mean(losses))


@torch.no_grad()
def sample_clips(model, val_set: DiffDataset, max_clips: int, method: str, speedup: int, device: torch.device,
                 vocoder=None, out_dir: Path | None = None, step: int | None = None,
                 seed: int = VAL_SEED) -> tuple[float, list[Path]]:
    """Run the sampler as upstream's test does (shallow from the clip's mel at k_step_max, or from noise on a
    full-chain model) on the first clips. Returns (mean mel L1, files written: eval/{step}/<name>.mel.npy and,
    with a vocoder, <name>.wav)."""
    was = model.training
    model.eval()
    decoder = model.decoder
    l1, written = [], []
    for i in range(min(max_clips, len(val_set))):
        item = val_set[i]
        b = _batch(item, device)
        gt = None if decoder.full_chain else b["mel"]
        mel = model(b["units"], b["f0"], b["volume"], spk_id=b["spk_id"], gt_spec=gt, k_step=decoder.k_step_max,
                    method=method, speedup=speedup, noise=TorchNoise.seeded(seed + i))
        l1.append(float((mel - b["mel"]).abs().mean()))
        if out_dir is None or step is None:
            continue
        folder = Path(out_dir) / EVAL_DIR / str(step)
        folder.mkdir(parents=True, exist_ok=True)
        stem = item["name"].replace("/", "_").removesuffix(".wav")
        np.save(folder / f"{stem}.mel.npy", mel[0].float().cpu().numpy())
        written.append(folder / f"{stem}.mel.npy")
        if vocoder is not None:
            audio = vocoder.decode(mel.float(), b["f0"][:, : mel.shape[1], 0].float())
            written.append(write_eval_audio(out_dir, step, item["name"], audio[0].float().cpu().numpy(),
                                            int(vocoder.sample_rate)))
    model.train(was)
    return (float(np.mean(l1)) if l1 else float("nan")), written
