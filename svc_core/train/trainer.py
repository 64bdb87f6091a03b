"""The training loop: SynthesizerTrn + MultiPeriodDiscriminator, upstream's losses, schedule and checkpoints.

    settings = TrainSettings.from_config(load_config("dataset/config.json"), steps=2000, batch_size=4)
    summary = Trainer("dataset", "logs/mymodel", settings).fit()

Guards: a step whose losses or gradients are not finite is skipped (named batch clips are logged); after
`nan_patience` such steps in a row the last good in-memory snapshot is restored. Ctrl-C saves a checkpoint.
"""
from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..checkpoint import build_synthesizer
from ..config import load_config
from ..errors import ModelError, SvcError
from . import ddp
from .checkpoints import (CheckpointKeeper, latest_pair, load_discriminator_base, load_generator_base,
                          load_optimizer_state, read_checkpoint, save_pair)
from .dataset import Batch, SvcDataset, collate
from .discriminator import MultiPeriodDiscriminator
from .envelope import spectral_envelope
from .losses import discriminator_loss, generator_losses, harmonic_loss
from .mel import MelParams, mel_spectrogram, spec_to_mel
from .settings import TrainSettings
from .validation import ValidationResult, validate

log = logging.getLogger("svc_core.train")


class TrainingError(SvcError):
    """Training cannot go on (diverged repeatedly, nothing to train on, ...)."""


@dataclass
class StepResult:
    skipped: bool
    losses: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainSummary:
    step: int
    epoch: int
    interrupted: bool = False
    saved: list[Path] = field(default_factory=list)
    last_losses: dict[str, float] = field(default_factory=dict)
    val_mel: float | None = None


def _slice(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """x [B, C, T] -> [B, C, size] from per-item start indices."""
    return torch.stack([x[i, :, int(s):int(s) + size] for i, s in enumerate(starts)])


def _cpu_copy(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _cpu_copy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu_copy(v) for v in obj)
    return obj


def _fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    def __init__(self, data_dir, out_dir, settings: TrainSettings | None = None,
                 dist: ddp.DistInfo | None = None) -> None:
        self.data_dir, self.out_dir = Path(data_dir), Path(out_dir)
        self.config = load_config(self.data_dir / "config.json")
        s = self.settings = settings or TrainSettings.from_config(self.config)
        self.dist = dist or ddp.env_info()
        self.device = ddp.device_for(self.dist, s.device)
        ddp.init_group(self.dist, self.device)
        self.hop = self.config.hop_length
        self.mel_params = MelParams.from_config(self.config)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.data_dir / "config.json", self.out_dir / "config.json")
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)

        self.train_set = SvcDataset(self.data_dir, self.config, "train", random_crop=True,
                                    min_frames=s.segment_frames, vol_aug=s.vol_aug,
                                    crop_frames=max(s.crop_frames, s.segment_frames))
        self.val_set = SvcDataset(self.data_dir, self.config, "val", random_crop=False, min_frames=1)
        for path, why in self.train_set.skipped:
            self._log(f"skipping {path}: {why} (shorter than the training segment)")
        workers = s.num_workers if s.num_workers is not None else (4 if self.device.type == "cuda" else 0)
        sampler = (DistributedSampler(self.train_set, self.dist.world_size, self.dist.rank, shuffle=True,
                                      seed=s.seed) if self.dist.distributed else None)
        self.train_loader = DataLoader(
            self.train_set, batch_size=s.batch_size, shuffle=sampler is None, sampler=sampler, collate_fn=collate,
            num_workers=workers, generator=torch.Generator().manual_seed(s.seed),
            pin_memory=self.device.type == "cuda", persistent_workers=workers > 0)

        g = build_synthesizer(self.config)
        g.segment_size = s.segment_frames
        use_sn = bool(self.config.raw.get("model", {}).get("use_spectral_norm", False))
        d = MultiPeriodDiscriminator(use_spectral_norm=use_sn, width_divisor=s.d_width_divisor)
        self.net_g, self.net_d = g.to(self.device).train(), d.to(self.device).train()
        self.optim_g = torch.optim.AdamW(self.net_g.parameters(), s.learning_rate, betas=s.betas, eps=s.eps)
        self.optim_d = torch.optim.AdamW(self.net_d.parameters(), s.learning_rate, betas=s.betas, eps=s.eps)
        self.step, self.epoch = 0, 1
        self._restore()
        self.last_saved_step = self.step
        self.schedulers = [self._scheduler(o) for o in (self.optim_g, self.optim_d)]
        cuda = self.device.type == "cuda"
        if s.precision != "fp32" and not cuda:
            self._log(f"precision {s.precision} needs a CUDA device; training in fp32 on {self.device}")
        self.amp_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(s.precision) if cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=cuda and s.precision == "fp16")
        self.net_g = ddp.wrap(self.net_g, self.dist, self.device)
        self.net_d = ddp.wrap(self.net_d, self.dist, self.device)
        self.keeper = CheckpointKeeper(self.out_dir, s.keep_best) if self.dist.is_main else None
        self.bad_streak = self.restores_in_a_row = 0
        self.saved: list[Path] = []
        self.val_mel: float | None = None
        self._snapshot()

    # ------------------------------------------------------------------------------------------ setup
    def _log(self, msg: str, level: int = logging.INFO) -> None:
        if not self.dist.is_main and level < logging.WARNING:
            return
        prefix = f"[rank {self.dist.rank}] " if self.dist.distributed else ""
        log.log(level, prefix + msg)
        if self.dist.is_main and self.out_dir.is_dir():
            with open(self.out_dir / "train.log", "a", encoding="utf-8") as fh:
                fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + prefix + msg + "\n")

    def _restore(self) -> None:
        s = self.settings
        pair = latest_pair(self.out_dir)
        if pair and pair[0] > 0 and not s.resume:
            raise TrainingError(f"{self.out_dir} already holds checkpoints up to G_{pair[0]}.pth; pass --resume to "
                                "continue that run or choose another --out folder.")
        if s.resume and pair and pair[0] > 0:
            step, g_path, d_path = pair
            ck_g, ck_d = read_checkpoint(g_path, "generator checkpoint"), read_checkpoint(d_path,
                                                                                         "discriminator checkpoint")
            try:
                self.net_g.load_upstream_state_dict(ck_g.model)
            except ModelError as err:
                raise ModelError(f"Cannot resume from {g_path.name}: {err}") from None
            self.net_d.load_upstream_state_dict(ck_d.model)
            for opt, ck, name in ((self.optim_g, ck_g, g_path.name), (self.optim_d, ck_d, d_path.name)):
                why = load_optimizer_state(opt, ck.optimizer)
                if why:
                    self._log(f"optimizer state of {name} not loaded ({why}); starting a fresh AdamW",
                              logging.WARNING)
            self.step, self.epoch = step, max(1, ck_g.iteration)
            self._log(f"resumed from {g_path.name} / {d_path.name}: step {self.step}, epoch {self.epoch}"
                      + ("; --base ignored (the run already has checkpoints)" if s.base else ""))
            return
        if s.resume and not pair and not s.base:
            self._log(f"nothing to resume in {self.out_dir}; starting from random weights")
        if s.base:
            g_src, d_src = (Path(p) for p in s.base)
        elif pair:  # only G_0 / D_0: a base placed in the run folder
            g_src, d_src = pair[1], pair[2]
        else:
            return
        load_generator_base(self.net_g, g_src, self._log)
        load_discriminator_base(self.net_d, d_src)
        if self.dist.is_main:
            for src, name in ((g_src, "G_0.pth"), (d_src, "D_0.pth")):
                dst = self.out_dir / name
                if not (dst.exists() and dst.resolve() == src.resolve()):
                    shutil.copyfile(src, dst)
        self._log(f"loaded pretrained base {g_src.name} / {d_src.name} (kept as G_0.pth / D_0.pth)")

    def _lr_factor(self, epoch_index: int) -> float:
        epoch = epoch_index + 1
        w = self.settings.warmup_epochs
        if w and epoch <= w:
            return epoch / w
        return self.settings.lr_decay ** epoch_index

    def _scheduler(self, optim: torch.optim.Optimizer):
        """ExponentialLR(gamma) per epoch (with upstream's optional warm-up) in closed form, so resuming at epoch E
        gives lr = lr0 * gamma^(E-1) exactly (LambdaLR with last_epoch = E - 2, as upstream's scheduler setup)."""
        for group in optim.param_groups:
            group["initial_lr"] = self.settings.learning_rate
        return torch.optim.lr_scheduler.LambdaLR(optim, self._lr_factor, last_epoch=self.epoch - 2)

    # ------------------------------------------------------------------------------------------ guard
    def _snapshot(self) -> None:
        g, d = ddp.unwrap(self.net_g), ddp.unwrap(self.net_d)
        self._good = {"step": self.step, "g": _cpu_copy(g.state_dict()), "d": _cpu_copy(d.state_dict()),
                      "og": _cpu_copy(self.optim_g.state_dict()), "od": _cpu_copy(self.optim_d.state_dict()),
                      "scaler": self.scaler.state_dict()}

    def _bad_step(self, names: list[str], what: str) -> StepResult:
        self.optim_g.zero_grad(set_to_none=True)
        self.optim_d.zero_grad(set_to_none=True)
        self.bad_streak += 1
        self._log(f"step {self.step + 1}: non-finite {what}; step skipped (batch: {', '.join(names[:4])}"
                  f"{' ...' if len(names) > 4 else ''})", logging.WARNING)
        if self.bad_streak >= self.settings.nan_patience:
            self.restores_in_a_row += 1
            if self.restores_in_a_row > self.settings.max_restores:
                raise TrainingError(f"training keeps producing non-finite values after {self.settings.max_restores} "
                                    "restores; lower the learning rate or check the dataset clips named above.")
            good = self._good
            ddp.unwrap(self.net_g).load_state_dict(good["g"])
            ddp.unwrap(self.net_d).load_state_dict(good["d"])
            self.optim_g.load_state_dict(good["og"])
            self.optim_d.load_state_dict(good["od"])
            self.scaler.load_state_dict(good["scaler"])
            self._log(f"{self.bad_streak} non-finite steps in a row: restored the last good state (step "
                      f"{good['step']}; {self.step - good['step']} step(s) discarded)", logging.WARNING)
            self.step = good["step"]
            self.bad_streak = 0
        return StepResult(True)

    def _finite(self, loss: torch.Tensor, params) -> bool:
        ok = bool(torch.isfinite(loss))
        if ok and not self.scaler.is_enabled():  # with fp16 the scaler skips overflowing steps by itself
            grads = [p.grad for p in params if p.grad is not None]
            ok = bool(torch.isfinite(torch.nn.utils.get_total_norm(grads))) if grads else True
        return not ddp.any_rank(not ok, self.dist, self.device)

    # ------------------------------------------------------------------------------------------ step
    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _posterior_input(self, b: Batch) -> torch.Tensor:
        """What enc_q reads: the spectrogram (upstream) or its pitch-free envelope (settings.posterior_input)."""
        if self.settings.posterior_input == "envelope":
            return spectral_envelope(b.spec, b.f0, self.config.sampling_rate)
        return b.spec

    def _forward_g(self, b: Batch):
        seg = self.settings.segment_frames
        with self._autocast():
            y_hat, ids, z_mask, (_, z_p, m_p, logs_p, _, logs_q), pred_lf0, _, lf0 = self.net_g(
                b.c, b.f0, b.uv, self._posterior_input(b), g=b.spk, c_lengths=b.lengths, spec_lengths=b.lengths,
                vol=b.vol)
        mel_real = spec_to_mel(_slice(b.spec.float(), ids, seg), self.mel_params)
        mel_fake = mel_spectrogram(y_hat.squeeze(1).float(), self.mel_params)
        y = _slice(b.wav, ids * self.hop, seg * self.hop)
        return y_hat, y, mel_real, mel_fake, (z_p, logs_q, m_p, logs_p, z_mask), pred_lf0, lf0

    def train_step(self, batch: Batch) -> StepResult:
        """One D update and one G update on `batch`; returns the losses or skipped=True (non-finite). Before
        settings.gan_start_step the discriminator is neither run nor updated (reconstruction losses only)."""
        s, b = self.settings, batch.to(self.device)
        y_hat, y, mel_real, mel_fake, kl_terms, pred_lf0, lf0 = self._forward_g(b)
        fake = fmap_r = fmap_g = loss_d = None
        if self.step >= s.gan_start_step:
            with self._autocast():
                real, fake, _, _ = self.net_d(y, y_hat.detach())
            loss_d = discriminator_loss(real, fake)
            self.optim_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.unscale_(self.optim_d)
            if not self._finite(loss_d, self.net_d.parameters()):
                self.scaler.update()
                return self._bad_step(b.names, "discriminator loss or gradients")
            self.scaler.step(self.optim_d)
            with self._autocast():
                _, fake, fmap_r, fmap_g = self.net_d(y, y_hat)
        harm = (harmonic_loss(y.squeeze(1), y_hat.squeeze(1), self.config.sampling_rate) * s.c_harm
                if s.c_harm > 0 else None)
        losses = generator_losses(fake, fmap_r, fmap_g, mel_real, mel_fake, kl_terms, pred_lf0, lf0, s.c_mel, s.c_kl,
                                  harm)
        self.optim_g.zero_grad(set_to_none=True)
        self.scaler.scale(losses.total).backward()
        self.scaler.unscale_(self.optim_g)
        if not self._finite(losses.total, self.net_g.parameters()):
            self.scaler.update()
            return self._bad_step(b.names, "generator loss or gradients")
        self.scaler.step(self.optim_g)
        self.scaler.update()
        self.step += 1
        self.bad_streak = self.restores_in_a_row = 0
        if self.step % s.snapshot_interval == 0:
            self._snapshot()
        d = {} if loss_d is None else {"d": float(loss_d.detach())}
        return StepResult(False, {**d, **losses.scalars()})

    @torch.no_grad()
    def losses_on(self, batch: Batch, seed: int = 0) -> dict[str, float]:
        """Generator reconstruction losses (mel = c_mel * L1, kl, lf0) on `batch` with dropout off and a fixed
        random slice / noise (seeded, global RNG untouched): for comparing states of the model."""
        g = ddp.unwrap(self.net_g)
        was = g.training
        g.eval()
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed(seed)
            b = batch.to(self.device)
            y_hat, ids, z_mask, (_, z_p, m_p, logs_p, _, logs_q), pred_lf0, _, lf0 = g(
                b.c, b.f0, b.uv, self._posterior_input(b), g=b.spk, c_lengths=b.lengths, spec_lengths=b.lengths,
                vol=b.vol)
            mel_real = spec_to_mel(_slice(b.spec.float(), ids, self.settings.segment_frames), self.mel_params)
            mel_fake = mel_spectrogram(y_hat.squeeze(1).float(), self.mel_params)
            out = generator_losses([torch.zeros(1)], [[torch.zeros(1)]], [[torch.zeros(1)]], mel_real, mel_fake,
                                   (z_p, logs_q, m_p, logs_p, z_mask), pred_lf0, lf0, self.settings.c_mel,
                                   self.settings.c_kl)
        g.train(was)
        return {"mel": float(out.mel), "kl": float(out.kl), "lf0": float(out.lf0)}

    # ------------------------------------------------------------------------------------------ eval / save
    def evaluate(self, step: int | None = None) -> ValidationResult:
        """Infer the first validation clips (svc_core.train.validation): mel L1 and f0 following; the clips are
        written as eval/{step}/*.wav when `step` is given."""
        return validate(ddp.unwrap(self.net_g), self.val_set, self.settings.max_eval_clips,
                        self.settings.max_eval_frames, self.device, self.out_dir if step is not None else None, step)

    def checkpoint(self, evaluate: bool = True) -> None:
        """Rank 0: validate, write G_/D_{step}.pth and prune by validation loss; other ranks wait."""
        if self.dist.is_main:
            result = self.evaluate(self.step) if evaluate else None
            val = result.mel_l1 if result is not None else None
            paths = save_pair(self.out_dir, self.step, self.epoch, ddp.unwrap(self.net_g), ddp.unwrap(self.net_d),
                              self.optim_g, self.optim_d, self.settings.learning_rate)
            self.saved.extend(paths)
            deleted = self.keeper.add(self.step, val)
            self.val_mel = val
            self._log(f"saved {paths[0].name} / {paths[1].name} (epoch {self.epoch}"
                      + (f", {result.describe()}" if result is not None else ", not validated") + ")"
                      + (f"; removed step(s) {deleted}" if deleted else ""))
        ddp.barrier(self.dist)
        self.last_saved_step = self.step

    # ------------------------------------------------------------------------------------------ loop
    def _done(self) -> bool:
        s = self.settings
        return (s.steps is not None and self.step >= s.steps) or self.epoch > s.epochs

    def fit(self) -> TrainSummary:
        """Train until `steps` (or `epochs`); saves every eval_interval steps and at the end. Ctrl-C saves too."""
        s = self.settings
        summary = TrainSummary(self.step, self.epoch)
        per_epoch = max(1, len(self.train_loader))
        t_last, step_last = time.perf_counter(), self.step
        self._log(f"training {len(self.train_set)} clips ({per_epoch} batches of {s.batch_size} per epoch"
                  + (f", {self.dist.world_size} processes" if self.dist.distributed else "")
                  + f") on {self.device}, from step {self.step}, epoch {self.epoch}")
        try:
            while not self._done():
                if isinstance(self.train_loader.sampler, DistributedSampler):
                    self.train_loader.sampler.set_epoch(self.epoch)
                for batch in self.train_loader:
                    result = self.train_step(batch)
                    if result.skipped:
                        continue
                    summary.last_losses = result.losses
                    if self.step % s.log_interval == 0 or self.step == 1:
                        now = time.perf_counter()
                        rate = (self.step - step_last) / max(now - t_last, 1e-9)
                        t_last, step_last = now, self.step
                        left = (s.steps - self.step if s.steps is not None
                                else (s.epochs - self.epoch + 1) * per_epoch)
                        lr = self.optim_g.param_groups[0]["lr"]
                        self._log(f"step {self.step}{f'/{s.steps}' if s.steps else ''} epoch {self.epoch} | "
                                  + " ".join(f"{k} {v:.3f}" for k, v in result.losses.items())
                                  + f" | lr {lr:.3e} | {rate:.2f} step/s | ETA {_fmt_time(left / max(rate, 1e-9))}")
                    if self.step % s.eval_interval == 0:
                        self.checkpoint()
                    if self._done():
                        break
                else:
                    for sched in self.schedulers:
                        sched.step()
                    self.epoch += 1
                    continue
                break
            if self.step != self.last_saved_step:
                self.checkpoint()
        except KeyboardInterrupt:
            summary.interrupted = True
            if self.dist.is_main and self.step != self.last_saved_step:
                self._log(f"interrupted: saving step {self.step} (resume with --resume)")
                self._save_without_barrier()
        summary.step, summary.epoch, summary.saved, summary.val_mel = self.step, self.epoch, self.saved, self.val_mel
        return summary

    def _save_without_barrier(self) -> None:
        """Rank 0 after Ctrl-C: write the pair without validation (other ranks may already be gone)."""
        paths = save_pair(self.out_dir, self.step, self.epoch, ddp.unwrap(self.net_g), ddp.unwrap(self.net_d),
                          self.optim_g, self.optim_d, self.settings.learning_rate)
        self.saved.extend(paths)
        self.keeper.add(self.step, None)
