"""The RVC training loop (RVC's infer/modules/train/train.py, numbers only): per batch one discriminator update
(least squares) and one generator update (mel L1 x c_mel + KL x c_kl + feature matching x 2 + adversarial), AdamW
(lr 1e-4, betas 0.8/0.99, eps 1e-9), lr x 0.999875 per epoch, random segments of hp.segment_size frames.

    trainer = RvcTrainer(settings)      # RvcTrainSettings; the experiment folder must be prepared
    summary = trainer.fit()             # G_/D_ pairs every save_every steps, then <name>.pth

A step with a non-finite loss is skipped (clips named); Ctrl-C saves the current step.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...errors import SvcError
from ...train.checkpoints import CheckpointKeeper, latest_pair
from ...train.losses import discriminator_loss, generator_losses
from ...train.mel import MelParams, mel_spectrogram, spec_to_mel
from ..synthesizer import RvcSynthesizer
from .checkpoints import (load_discriminator, load_generator, restore_optimizers, save_small_model,
                          save_training_pair)
from .dataset import RvcBatch, RvcDataset, collate
from .discriminator import rvc_discriminator
from .layout import ExperimentLayout
from .settings import DEFAULT_ENCODERS, MEL_CHANNELS, RvcTrainSettings

log = logging.getLogger("svc_core.train")


class RvcTrainingError(SvcError):
    """RVC training cannot start or go on."""


@dataclass
class RvcTrainSummary:
    step: int
    epoch: int
    seconds: float
    interrupted: bool = False
    saved: list[Path] = field(default_factory=list)
    small_model: Path | None = None
    last_losses: dict[str, float] = field(default_factory=dict)


def slice_segments(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    """x [B, C, T] -> [B, C, size] from per-item start indices (RVC's commons.slice_segments)."""
    return torch.stack([x[i, :, int(s):int(s) + size] for i, s in enumerate(starts)])


class RvcTrainer:
    def __init__(self, settings: RvcTrainSettings) -> None:
        s = self.settings = settings
        self.layout = ExperimentLayout(s.out_dir, s.version)
        self.hp = s.hparams()
        self.device = torch.device(s.device)
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)
        filter_length = (self.hp.spec_channels - 1) * 2
        self.hop = self.hp.hop_length
        self.mel = MelParams(sampling_rate=self.hp.sr, n_fft=filter_length, hop_length=self.hop,
                             win_length=filter_length, n_mels=MEL_CHANNELS[s.sample_rate], fmin=0.0, fmax=None)
        self.train_set = RvcDataset(self.layout, self.hp.sr, filter_length, self.hop, self.hp.content_dim, s.f0,
                                    min_frames=self.hp.segment_size, max_frames=s.max_frames)
        for name, why in self.train_set.skipped:
            self._log(f"skipping {name}: {why} (shorter than the training segment)")
        self.loader = DataLoader(self.train_set, batch_size=s.batch_size, shuffle=True, collate_fn=collate,
                                 num_workers=0, generator=torch.Generator().manual_seed(s.seed))
        self.net_g = RvcSynthesizer(self.hp, posterior=True).to(self.device).train()
        self.net_d = rvc_discriminator(s.version, s.d_width_divisor).to(self.device).train()
        self.optim_g = torch.optim.AdamW(self.net_g.parameters(), s.learning_rate, betas=s.betas, eps=s.eps)
        self.optim_d = torch.optim.AdamW(self.net_d.parameters(), s.learning_rate, betas=s.betas, eps=s.eps)
        self.step, self.epoch = 0, 1
        self._t0 = time.perf_counter()
        self._restore()
        self.keeper = CheckpointKeeper(self.layout.root, s.keep)
        self.saved: list[Path] = []
        self.last_saved_step = self.step

    # ------------------------------------------------------------------------------------------ setup
    def _log(self, msg: str) -> None:
        log.info(msg)
        with open(self.layout.root / "train.log", "a", encoding="utf-8") as fh:
            fh.write(time.strftime("%Y-%m-%d %H:%M:%S ") + msg + "\n")

    def _restore(self) -> None:
        s = self.settings
        pair = latest_pair(self.layout.root)
        if pair and pair[0] > 0 and not s.resume:
            raise RvcTrainingError(f"{self.layout.root} already holds checkpoints up to G_{pair[0]}.pth; pass "
                                   "--resume to continue that run or choose another --out folder.")
        if s.resume and pair and pair[0] > 0:
            step, g_path, d_path = pair
            ck_g, ck_d = load_generator(self.net_g, g_path), load_discriminator(self.net_d, d_path)
            restore_optimizers([(self.optim_g, ck_g.optimizer, g_path.name),
                                (self.optim_d, ck_d.optimizer, d_path.name)], self._log)
            self.step, self.epoch = step, max(1, ck_g.iteration)
            self._log(f"resumed from {g_path.name} / {d_path.name}: step {step}, epoch {self.epoch}")
            return
        if s.resume:
            self._log(f"nothing to resume in {self.layout.root}; starting "
                      + ("from the base models" if s.base else "from random weights"))
        if s.base:
            load_generator(self.net_g, Path(s.base[0]), "pretrained generator")
            load_discriminator(self.net_d, Path(s.base[1]), "pretrained discriminator")
            self._log(f"loaded pretrained base {Path(s.base[0]).name} / {Path(s.base[1]).name}")

    def _set_lr(self) -> None:
        """lr0 * lr_decay^(epoch - 1): RVC's ExponentialLR stepped once per epoch, exact after a resume."""
        lr = self.settings.learning_rate * self.settings.lr_decay ** (self.epoch - 1)
        for optim in (self.optim_g, self.optim_d):
            for group in optim.param_groups:
                group["lr"] = lr

    # ------------------------------------------------------------------------------------------ step
    def _forward_g(self, b: RvcBatch):
        """The synthesizer's training pass -> (y_hat [B,1,seg*hop], y [B,1,seg*hop], mel_real, mel_fake, kl terms)."""
        seg = self.hp.segment_size
        y_hat, ids, _, z_mask, (_, z_p, m_p, logs_p, _, logs_q) = self.net_g(
            b.phone, b.phone_lengths, b.pitch, b.pitchf, b.spec, b.spec_lengths, b.sid)
        mel_real = spec_to_mel(slice_segments(b.spec, ids, seg), self.mel)
        mel_fake = mel_spectrogram(y_hat.squeeze(1).float(), self.mel)
        y = slice_segments(b.wav, ids * self.hop, seg * self.hop)
        return y_hat, y, mel_real, mel_fake, (z_p, logs_q, m_p, logs_p, z_mask)

    def train_step(self, batch: RvcBatch) -> dict[str, float] | None:
        """One D and one G update; returns the losses, or None when the step was skipped (non-finite)."""
        s, b = self.settings, batch.to(self.device)
        y_hat, y, mel_real, mel_fake, kl_terms = self._forward_g(b)
        fake = fmap_r = fmap_g = None
        loss_d = None
        if self.step >= s.gan_start_step:
            real, fake_d, _, _ = self.net_d(y, y_hat.detach())
            loss_d = discriminator_loss(real, fake_d)
            if not torch.isfinite(loss_d):
                return self._skip(b.names, "discriminator loss")
            self.optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.optim_d.step()
            _, fake, fmap_r, fmap_g = self.net_d(y, y_hat)
        losses = generator_losses(fake, fmap_r, fmap_g, mel_real, mel_fake, kl_terms, 0, 0, s.c_mel, s.c_kl)
        if not torch.isfinite(losses.total):
            return self._skip(b.names, "generator loss")
        self.optim_g.zero_grad(set_to_none=True)
        losses.total.backward()
        self.optim_g.step()
        self.step += 1
        out = {k: v for k, v in losses.scalars().items() if k != "lf0"}
        return {**({"d": float(loss_d.detach())} if loss_d is not None else {}), **out}

    def _skip(self, names: list[str], what: str) -> None:
        self.optim_g.zero_grad(set_to_none=True)
        self.optim_d.zero_grad(set_to_none=True)
        self._log(f"step {self.step + 1}: non-finite {what}; step skipped (batch: {', '.join(names[:4])})")
        return None

    # ------------------------------------------------------------------------------------------ save
    def checkpoint(self) -> None:
        s = self.settings
        paths = save_training_pair(self.layout.root, self.step, self.epoch, self.net_g, self.net_d, self.optim_g,
                                   self.optim_d, s.learning_rate)
        self.saved.extend(paths)
        deleted = self.keeper.add(self.step, None)
        if s.save_every_weights:
            save_small_model(self.net_g, self.hp, self.layout.root / f"{s.model_name}_e{self.epoch}_s{self.step}.pth",
                             self.epoch, self._note())
        self.last_saved_step = self.step
        self._log(f"saved {paths[0].name} / {paths[1].name} (epoch {self.epoch})"
                  + (f"; removed step(s) {deleted}" if deleted else ""))

    def _note(self) -> str:
        s = self.settings
        return "" if s.encoder_name == DEFAULT_ENCODERS[s.version] else f"content features {s.encoder_name}"

    def save_small(self) -> Path:
        path = self.layout.root / f"{self.settings.model_name}.pth"
        save_small_model(self.net_g, self.hp, path, self.epoch, self._note())
        self._log(f"wrote the small model {path.name} ({self.settings.version} {self.settings.sample_rate}, "
                  f"{'pitch' if self.settings.f0 else 'no pitch'})")
        return path

    # ------------------------------------------------------------------------------------------ loop
    def _done(self) -> bool:
        s = self.settings
        out_of_time = s.max_minutes is not None and time.perf_counter() - self._t0 >= 60.0 * s.max_minutes
        return (s.steps is not None and self.step >= s.steps) or self.epoch > s.epochs or out_of_time

    def fit(self) -> RvcTrainSummary:
        """Train until `steps` (or `epochs`); saves every save_every steps and at the end, then the small model."""
        s = self.settings
        t0 = self._t0 = time.perf_counter()
        summary = RvcTrainSummary(self.step, self.epoch, 0.0)
        t_last, step_last = t0, self.step
        self._log(f"training {len(self.train_set)} pieces ({len(self.loader)} batches of {s.batch_size} per epoch), "
                  f"RVC {s.version} {s.sample_rate} size {s.size}, segment {self.hp.segment_size} frames, "
                  f"{torch.get_num_threads()} thread(s), from step {self.step}, epoch {self.epoch}")
        try:
            while not self._done():
                self._set_lr()
                for batch in self.loader:
                    losses = self.train_step(batch)
                    if losses is None:
                        continue
                    summary.last_losses = losses
                    if self.step % s.log_interval == 0 or self.step == 1:
                        now = time.perf_counter()
                        rate = (self.step - step_last) / max(now - t_last, 1e-9)
                        t_last, step_last = now, self.step
                        left = f" | ETA {(s.steps - self.step) / max(rate, 1e-9) / 60:.1f} min" if s.steps else ""
                        self._log(f"step {self.step}{f'/{s.steps}' if s.steps else ''} epoch {self.epoch} | "
                                  + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                                  + f" | {rate:.2f} step/s{left}")
                    if self.step % s.save_every == 0:
                        self.checkpoint()
                    if self._done():
                        break
                else:
                    self.epoch += 1
                    continue
                break
            if self.step != self.last_saved_step:
                self.checkpoint()
            summary.small_model = self.save_small()
        except KeyboardInterrupt:
            summary.interrupted = True
            if self.step != self.last_saved_step:
                self._log(f"interrupted: saving step {self.step} (continue with --resume)")
                self.checkpoint()
        summary.step, summary.epoch, summary.saved = self.step, self.epoch, self.saved
        summary.seconds = time.perf_counter() - t0
        self._log(f"stopped at step {self.step}, epoch {self.epoch} after {summary.seconds / 60:.1f} min")
        return summary
