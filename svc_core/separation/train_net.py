"""Training the starter separation network from nothing on a pool of synthetic songs (mixtures/).

    python -m svc_core.separation.mixtures --split train --n 500 --seconds 8 --pcm16 --out POOL
    python -m svc_core.separation.mixtures --split test --n 48 --out TESTSET
    python -m svc_core.separation.train_net --pool POOL --out RUN --eval TESTSET --max-minutes 45 --threads 1

Each step draws `batch` crops: a vocal crop and an accompaniment crop (from the same clip, or half the time from
another clip, which remixes the pool), random vocal and overall gains, channel swaps, sometimes no vocals. The
loss is the L1 distance between the masked mixture STFT and the vocals' STFT, per example relative to the
mixture's mean magnitude (the accompaniment is mixture minus vocals, so its error is the same). The learning rate
follows a cosine over `budget_minutes` of training time (accumulated over resumed runs).

RUN/state.pt (model, optimizer, step, minutes trained; rewritten every `save_minutes`) makes a run resumable;
RUN/log.jsonl holds losses and, every `eval_minutes`, the vocals SDR on the eval set; RUN/starter.pt is the
shipped form (starter_net.save_weights), written at the end.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Optional

import numpy as np
import torch

from .starter_net import MaskNet, NetConfig, save_weights, separate_tensor, stft

SAMPLE_RATE = 44100
NO_VOCALS_P = 0.05  # share of crops with the vocals removed (instrumental passages)
SWAP_P = 0.5  # share of crops whose accompaniment comes from another clip
VOCAL_GAIN_DB = (-7.0, 5.0)  # extra vocal gain on top of the pool's mix
OVERALL_GAIN_DB = (-14.0, 3.0)
EQ_DB = 6.0  # on-the-fly spectral EQ: each stem's gain at EQ_POINTS log-spaced frequencies within +-EQ_DB
EQ_POINTS = 8
EQ_P = 0.7  # share of stems given such an EQ


@dataclass
class TrainSettings:
    """One training run (see the module docstring)."""

    pool: str
    out: str
    eval_dir: Optional[str] = None
    max_minutes: float = 45.0
    budget_minutes: float = 50.0
    threads: int = 1
    batch: int = 8
    crop_seconds: float = 2.0
    lr: float = 1e-3
    min_lr: float = 5e-5
    save_minutes: float = 3.0
    eval_minutes: float = 6.0
    eval_clips: int = 16
    seed: int = 0
    hidden: int = 256


class Pool:
    """Clips of a mixtures folder held in memory as int16 [2 stems, 2, N]; `refresh` picks up new clips."""

    def __init__(self, folder: str):
        self.folder = folder
        self.clips: list[np.ndarray] = []
        self.names: set[str] = set()
        self.refresh()

    def refresh(self) -> int:
        import soundfile as sf

        for meta in sorted(glob.glob(os.path.join(self.folder, "*", "meta.json"))):
            clip = os.path.dirname(meta)
            if clip in self.names:
                continue
            stems = [sf.read(os.path.join(clip, f"{s}.wav"), dtype="int16", always_2d=True)[0].T
                     for s in ("vocals", "accompaniment")]
            self.clips.append(np.stack(stems))
            self.names.add(clip)
        if not self.clips:
            raise SystemExit(f"no clips in {self.folder} (write some with python -m svc_core.separation.mixtures)")
        return len(self.clips)

    def batch(self, rng: np.random.Generator, size: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(mixture, vocals) float32 [size, 2, length]."""
        mix, voc = np.zeros((size, 2, length), np.float32), np.zeros((size, 2, length), np.float32)
        for b in range(size):
            i = int(rng.integers(len(self.clips)))
            j = int(rng.integers(len(self.clips))) if rng.random() < SWAP_P else i
            vi, aj = self.clips[i][0], self.clips[j][1]
            start_v = int(rng.integers(0, vi.shape[1] - length + 1))
            start_a = start_v if j == i else int(rng.integers(0, aj.shape[1] - length + 1))
            v = vi[:, start_v:start_v + length].astype(np.float32) / 32768.0
            a = aj[:, start_a:start_a + length].astype(np.float32) / 32768.0
            v *= 0.0 if rng.random() < NO_VOCALS_P else 10.0 ** (rng.uniform(*VOCAL_GAIN_DB) / 20.0)
            g = 10.0 ** (rng.uniform(*OVERALL_GAIN_DB) / 20.0)
            if rng.random() < 0.5:
                v, a = v[::-1], a[::-1]
            voc[b], mix[b] = v * g, (v + a) * g
        return torch.from_numpy(mix), torch.from_numpy(voc)


def random_eq_curves(rng: np.random.Generator, count: int, bins: int) -> torch.Tensor:
    """[count, 1, bins, 1] smooth random gains (EQ_POINTS log-spaced anchors within +-EQ_DB; EQ_P of them)."""
    log_f = np.log(np.maximum(np.arange(bins), 1.0))
    anchors = np.linspace(log_f[1], log_f[-1], EQ_POINTS)
    curves = np.ones((count, bins), np.float32)
    for i in range(count):
        if rng.random() < EQ_P:
            db = rng.uniform(-EQ_DB, EQ_DB, EQ_POINTS)
            curves[i] = 10.0 ** (np.interp(log_f, anchors, db) / 20.0)
    return torch.from_numpy(curves)[:, None, :, None]


def loss_fn(net: MaskNet, mix: torch.Tensor, vocals: torch.Tensor,
            rng: Optional[np.random.Generator] = None) -> torch.Tensor:
    """Complex-STFT L1 of the masked mixture against the vocals, relative to the mixture's mean magnitude.
    With `rng`, each stem first gets a random smooth EQ in the STFT domain (timbre augmentation)."""
    spec_v = stft(vocals, net.config)
    spec_x = stft(mix, net.config)
    if rng is not None:
        spec_a = spec_x - spec_v
        spec_v = spec_v * random_eq_curves(rng, len(mix), net.config.bins)
        spec_x = spec_v + spec_a * random_eq_curves(rng, len(mix), net.config.bins)
    mask = net(torch.log(spec_x.abs() + 1e-5))
    err = (spec_x * mask - spec_v).abs().mean(dim=(1, 2, 3))
    scale = spec_x.abs().mean(dim=(1, 2, 3)) + 1e-4
    return (err / scale).mean()


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Plain SDR (dB) over all channels: 10 log10(|s|^2 / |s - s_hat|^2)."""
    num = float(np.sum(reference.astype(np.float64) ** 2)) + 1e-9
    den = float(np.sum((reference.astype(np.float64) - estimate) ** 2)) + 1e-9
    return 10.0 * math.log10(num / den)


def evaluate(net: MaskNet, folder: str, clips: int) -> dict[str, float]:
    """Median vocals SDR over the first `clips` clips of a test folder: mixture as is and the network."""
    from .mixtures.writer import read_clip

    names = sorted(d for d in glob.glob(os.path.join(folder, "*")) if os.path.isfile(os.path.join(d, "meta.json")))
    base, ours = [], []
    net.eval()
    with torch.inference_mode():
        for d in names[:clips]:
            stems = read_clip(d)
            v, _ = separate_tensor(net, torch.from_numpy(stems["mixture"])[None])
            base.append(sdr_db(stems["vocals"], stems["mixture"]))
            ours.append(sdr_db(stems["vocals"], v[0].numpy()))
    net.train()
    return {"clips": len(base), "sdr_mixture": float(np.median(base)), "sdr_net": float(np.median(ours)),
            "sdr_net_mean": float(np.mean(ours)), "sdr_gain": float(np.median(np.array(ours) - np.array(base)))}


def _lr(settings: TrainSettings, minutes: float) -> float:
    frac = min(1.0, minutes / settings.budget_minutes)
    warm = min(1.0, minutes / 1.0)  # one minute of warm-up
    return warm * (settings.min_lr + 0.5 * (settings.lr - settings.min_lr) * (1 + math.cos(math.pi * frac)))


def _log(path: str, doc: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(doc) + "\n")
    print(json.dumps(doc), flush=True)


def train(settings: TrainSettings) -> str:
    """Run (or resume) training; returns the path of the shipped-form weights written at the end."""
    from ..safe_load import load_torch

    torch.set_num_threads(settings.threads)
    os.makedirs(settings.out, exist_ok=True)
    state_path, log_path = os.path.join(settings.out, "state.pt"), os.path.join(settings.out, "log.jsonl")
    net = MaskNet(NetConfig(hidden=settings.hidden))
    opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
    step, minutes = 0, 0.0
    if os.path.isfile(state_path):
        state = load_torch(state_path, what="separation training state")
        net = MaskNet(NetConfig.from_dict(state["hparams"]))
        net.load_state_dict(state["model"])
        opt = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=1e-4)
        opt.load_state_dict(state["optimizer"])
        step, minutes = int(state["step"]), float(state["minutes"])
        print(f"resumed at step {step}, {minutes:.1f} min trained", flush=True)
    rng = np.random.default_rng([settings.seed, step])
    pool = Pool(settings.pool)
    length = int(settings.crop_seconds * SAMPLE_RATE)
    t_run = time.time()
    last_save = last_eval = last_refresh = t_run
    losses: list[float] = []

    def save() -> None:
        torch.save({"hparams": net.config.to_dict(), "model": net.state_dict(), "optimizer": opt.state_dict(),
                    "step": step, "minutes": minutes, "settings": asdict(settings)}, state_path + ".part")
        os.replace(state_path + ".part", state_path)

    net.train()
    while True:
        now = time.time()
        if (now - t_run) / 60.0 >= settings.max_minutes:
            break
        if now - last_refresh > 120:
            pool.refresh()
            last_refresh = now
        t0 = time.time()
        for group in opt.param_groups:
            group["lr"] = _lr(settings, minutes)
        mix, voc = pool.batch(rng, settings.batch, length)
        loss = loss_fn(net, mix, voc, rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        step += 1
        minutes += (time.time() - t0) / 60.0
        losses.append(float(loss.detach()))
        if step % 50 == 0:
            _log(log_path, {"step": step, "minutes": round(minutes, 2), "loss": round(float(np.mean(losses)), 5),
                            "lr": _lr(settings, minutes), "clips": len(pool.clips)})
            losses = []
        if time.time() - last_save > settings.save_minutes * 60:
            save()
            last_save = time.time()
        if settings.eval_dir and time.time() - last_eval > settings.eval_minutes * 60:
            _log(log_path, {"step": step, "minutes": round(minutes, 2),
                            **evaluate(net, settings.eval_dir, settings.eval_clips)})
            last_eval = time.time()
    save()
    info = {"steps": step, "minutes": round(minutes, 1), "threads": settings.threads, "batch": settings.batch,
            "crop_seconds": settings.crop_seconds, "pool_clips": len(pool.clips)}
    if settings.eval_dir:
        result = evaluate(net, settings.eval_dir, 10_000)
        info["eval"] = result
        _log(log_path, {"step": step, "final": True, **result})
    out = os.path.join(settings.out, "starter.pt")
    save_weights(net, out, info)
    return out


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m svc_core.separation.train_net",
                                description="Train the starter separation network on synthetic songs.")
    p.add_argument("--pool", required=True, help="training clips (python -m svc_core.separation.mixtures "
                   "--split train ...)")
    p.add_argument("--out", required=True, help="run folder (state.pt, log.jsonl, starter.pt); reruns resume")
    p.add_argument("--eval", dest="eval_dir", help="test-set folder for SDR checks while training")
    p.add_argument("--max-minutes", type=float, default=45.0, help="stop this run after this many minutes")
    p.add_argument("--budget-minutes", type=float, default=50.0, help="length of the learning-rate schedule "
                   "(training minutes over all resumed runs)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop-seconds", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=256, help="network width (new runs only)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    settings = TrainSettings(args.pool, args.out, args.eval_dir, args.max_minutes, args.budget_minutes, args.threads,
                             args.batch, args.crop_seconds, args.lr, seed=args.seed, hidden=args.hidden)
    path = train(settings)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
