"""Train a WORLD voice on a preprocessed dataset (svc_core.preprocess + svc_core.worldvoice.prepare).

    python -m svc_core train-world --data dataset --out logs/world [--steps 4000] [--resume]

Each step draws `batch_size` clips, a random window of `crop_frames` frames from each, and the content features
of either the clip itself or one of its WORLD-perturbed copies (formants and pitch moved); the loss is the L1
between predicted and true normalised coded frames plus half the L1 of their frame-to-frame differences.
Writes W_{step}.pth ({"model", "iteration", "optimizer", "learning_rate"}), config.json (the dataset's, plus a
"worldvoice" section) and train.log with the validation mel-cepstral distortion of every checkpoint.
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import SvcConfig, config_from_dict, load_config
from ..encoders import encoder_info

from ..features import stretch_units
from ..safe_load import load_torch
from ..train.dataset import DatasetError, read_filelist
from .features import SP_DIMS
from .model import FORMAT, save_checkpoint, world_config
from .net import NetParams, WorldVoiceNet
from .prepare import perturbed_path, units_path, world_path

MCD_SCALE = 10.0 / math.log(10.0) * math.sqrt(2.0)  # dB per unit of cepstral distance


@dataclass
class WorldTrainSettings:
    data: str
    out: str
    steps: int = 5000
    batch_size: int = 12
    crop_frames: int = 256
    learning_rate: float = 1e-3
    eval_interval: int = 500
    seed: int = 1234
    threads: int = 2
    perturbed_share: float = 0.75  # share of windows whose content features come from a perturbed copy
    resume: bool = False
    hidden: int = 192
    layers: int = 8
    encoder: Optional[str] = None  # content encoder (None: the dataset config's speech_encoder)


@dataclass
class Clip:
    name: str
    speaker: int
    units: list[torch.Tensor]  # [C, T_c] float16: the clip's own, then its perturbed copies
    f0: torch.Tensor  # [T] Hz, interpolated
    uv: torch.Tensor  # [T]
    target: torch.Tensor  # [D, T] float32, WORLD scale


def load_clips(data: Path, listfile: str, spk: dict[str, int], with_perturbed: bool,
               encoder: Optional[str] = None) -> list[Clip]:
    """Clips of one filelist; encoder: a foreign encoder's feature files (prepare.units_path), None the dataset's."""
    clips = []
    for wav in read_filelist(data / "filelists" / listfile, data):
        if not world_path(wav).is_file():
            raise DatasetError(f"{wav}: no {world_path(wav).name}; run `python -m svc_core prepare-world` first.")
        if wav.parent.name not in spk:
            raise DatasetError(f"{wav}: speaker folder '{wav.parent.name}' is not in config.json's spk map.")
        target = torch.from_numpy(np.load(world_path(wav), allow_pickle=False).astype(np.float32)).T
        f0_uv = np.load(f"{wav}.f0.npy", allow_pickle=False)
        n = min(target.shape[1], f0_uv.shape[1])
        if not units_path(wav, encoder).is_file():
            option = f" --encoder {encoder}" if encoder else ""
            raise DatasetError(f"{wav}: no {units_path(wav, encoder).name}; run `python -m svc_core prepare-world"
                               f"{option}` first.")
        units = [load_torch(units_path(wav, encoder), what="content features")[0].half()]
        if with_perturbed and perturbed_path(wav, encoder).is_file():
            units += [u.half() for u in load_torch(perturbed_path(wav, encoder), what="content features")]
        clips.append(Clip(wav.name, spk[wav.parent.name], units, torch.from_numpy(f0_uv[0, :n].copy()),
                          torch.from_numpy(f0_uv[1, :n].copy()), target[:, :n].contiguous()))
    return clips


def _window(clip: Clip, crop: int, rng: random.Random, share: float, mode: str):
    n = clip.target.shape[1]
    pick = 0 if len(clip.units) == 1 or rng.random() >= share else rng.randrange(1, len(clip.units))
    units = stretch_units(clip.units[pick].float(), n, mode)
    start = rng.randrange(0, max(1, n - crop + 1))
    end = min(n, start + crop)
    sl = slice(start, end)
    return units[:, sl], clip.f0[sl], clip.uv[sl], clip.target[:, sl]


def make_batch(clips: list[Clip], crop: int, rng: random.Random, share: float, mode: str) -> dict:
    """-> units [B, C, L], f0/uv/mask [B, L], target [B, D, L], speaker [B]"""
    parts = [_window(c, crop, rng, share, mode) for c in clips]
    length = max(p[0].shape[1] for p in parts)
    b = len(parts)
    units = torch.zeros(b, parts[0][0].shape[0], length)
    f0 = torch.full((b, length), 100.0)
    uv = torch.zeros(b, length)
    target = torch.zeros(b, parts[0][3].shape[0], length)
    mask = torch.zeros(b, length)
    for i, (u, f, v, t) in enumerate(parts):
        n = u.shape[1]
        units[i, :, :n], f0[i, :n], uv[i, :n], target[i, :, :n], mask[i, :n] = u, f, v, t, 1.0
    speaker = torch.LongTensor([c.speaker for c in clips])
    return {"units": units, "f0": f0, "uv": uv, "target": target, "mask": mask, "speaker": speaker}


def loss_fn(pred: torch.Tensor, target_norm: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked L1 of normalised frames + 0.5 x L1 of their frame differences."""
    m = mask[:, None, :]
    l1 = ((pred - target_norm).abs() * m).sum() / (m.sum() * pred.shape[1]).clamp(min=1)
    md = m[:, :, 1:] * m[:, :, :-1]
    dp, dt = pred.diff(dim=2), target_norm.diff(dim=2)
    dl1 = ((dp - dt).abs() * md).sum() / (md.sum() * pred.shape[1]).clamp(min=1)
    return l1 + 0.5 * dl1


@torch.inference_mode()
def validate(net: WorldVoiceNet, clips: list[Clip], mode: str) -> dict:
    """Mel-cepstral distortion (dB, coded envelope dims 1..SP_DIMS-1) and aperiodicity L1 on whole clips."""
    net.eval()
    mcd, ap, frames = 0.0, 0.0, 0
    for c in clips:
        n = c.target.shape[1]
        units = stretch_units(c.units[0].float(), n, mode)[None]
        pred = net.denormalise(net(units, c.f0[None], c.uv[None], torch.LongTensor([c.speaker])))[0]
        diff = pred[1:SP_DIMS] - c.target[1:SP_DIMS]
        mcd += float((MCD_SCALE * diff.pow(2).sum(0).sqrt()).sum())
        ap += float((pred[SP_DIMS:] - c.target[SP_DIMS:]).abs().mean(0).sum())
        frames += n
    net.train()
    return {"mcd_db": mcd / max(frames, 1), "ap_l1": ap / max(frames, 1)}


def _stats(clips: list[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
    allf = torch.cat([c.target for c in clips], dim=1)
    return allf.mean(1), allf.std(1).clamp(min=1e-3)


def with_encoder(config: SvcConfig, encoder: str) -> SvcConfig:
    """A copy of `config` whose model reads `encoder` features (speech_encoder, ssl_dim)."""
    doc = config.to_dict()
    doc["model"]["speech_encoder"] = encoder
    doc["model"]["ssl_dim"] = encoder_info(encoder).dim
    return config_from_dict(doc, source=config.path or "config.json")


def _latest(out: Path) -> Optional[Path]:
    found = sorted(out.glob("W_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    return found[-1] if found else None


def train_world(s: WorldTrainSettings, log: Callable[[str], None] = print,
                on_step: Optional[Callable[[int], None]] = None) -> Path:
    """Run training; returns the last checkpoint written. `on_step(step)` after every optimizer step (a job's
    progress and cancel check: it may raise to stop the run). threads <= 0: torch's setting is left as it is."""
    if s.threads > 0:
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    data, out = Path(s.data), Path(s.out)
    out.mkdir(parents=True, exist_ok=True)
    config = load_config(data / "config.json")
    foreign = s.encoder if s.encoder and s.encoder != config.speech_encoder else None
    if foreign:
        config = with_encoder(config, foreign)
    train_clips = load_clips(data, "train.txt", config.spk, with_perturbed=True, encoder=foreign)
    val_clips = load_clips(data, "val.txt", config.spk, with_perturbed=False, encoder=foreign)
    dim = int(train_clips[0].units[0].shape[0])
    if dim != int(config.model.ssl_dim):
        raise DatasetError(f"The content features in {data} have {dim} channels; {config.speech_encoder} gives "
                           f"{config.model.ssl_dim}. Run prepare-world again with the same --encoder.")
    params = NetParams(content_dim=int(config.model.ssl_dim), n_speakers=config.n_speakers, hidden=s.hidden,
                       layers=s.layers, dilations=tuple((1, 2, 4)[i % 3] for i in range(s.layers)),
                       out_dim=train_clips[0].target.shape[0])
    net = WorldVoiceNet(params)
    opt = torch.optim.AdamW(net.parameters(), lr=s.learning_rate, betas=(0.9, 0.99), weight_decay=1e-4)
    step = 0
    last = _latest(out)
    if last is not None and not s.resume:
        raise DatasetError(f"{out} already holds {last.name}; pass --resume to continue or choose another folder.")
    if last is not None:
        ckpt = load_torch(last, what="WORLD voice checkpoint")
        net.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        step = int(ckpt["iteration"])
        log(f"resumed from {last.name} (step {step})")
    else:
        mean, std = _stats(train_clips)
        net.mean.copy_(mean)
        net.std.copy_(std)
    full = world_config(config, params)
    (out / "config.json").write_text(json.dumps(full, indent=2), encoding="utf-8")
    log(f"{FORMAT}: {net.n_parameters() / 1e6:.2f} M parameters, {len(train_clips)} training clips, "
        f"{len(val_clips)} validation clips, {s.steps} steps")
    rng = random.Random(s.seed + step)
    mode = config.unit_interpolate_mode
    sched = lambda k: s.learning_rate * 0.5 * (1 + math.cos(math.pi * min(k, s.steps) / s.steps))  # noqa: E731
    net.train()
    t0, losses = time.perf_counter(), []
    path = last
    while step < s.steps:
        for group in opt.param_groups:
            group["lr"] = sched(step)
        batch = make_batch(rng.sample(train_clips, min(s.batch_size, len(train_clips))), s.crop_frames, rng,
                           s.perturbed_share, mode)
        target_norm = (batch["target"] - net.mean[None, :, None]) / net.std[None, :, None]
        pred = net(batch["units"], batch["f0"], batch["uv"], batch["speaker"])
        loss = loss_fn(pred, target_norm, batch["mask"])
        if not torch.isfinite(loss):
            log(f"step {step}: non-finite loss, skipped")
            opt.zero_grad(set_to_none=True)
            continue
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            rate = len(losses) / (time.perf_counter() - t0)
            log(f"step {step}/{s.steps} loss {np.mean(losses[-50:]):.4f} lr {sched(step):.2e} "
                f"{rate:.2f} steps/s, ETA {(s.steps - step) / max(rate, 1e-9) / 60:.1f} min")
        if step % s.eval_interval == 0 or step == s.steps:
            v = validate(net, val_clips, mode)
            path = out / f"W_{step}.pth"
            save_checkpoint(net, path, step, opt)
            log(f"step {step}: validation MCD {v['mcd_db']:.2f} dB, aperiodicity L1 {v['ap_l1']:.3f}; "
                f"saved {path.name}")
        if on_step is not None:
            on_step(step)
    return path
