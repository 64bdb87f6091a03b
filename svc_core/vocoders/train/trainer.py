"""The vocoder training loop: openvpi-layout NSF-HiFiGAN generator against so-vits' MultiPeriodDiscriminator, with
HiFi-GAN's losses (LSGAN + 2 x feature matching + c_mel x mel L1 on the vocoder's own mel), AdamW (0.8, 0.99) and
an exponential learning-rate decay.

    VocoderTrainer("dataset", "logs/nsf_hifigan", VocoderTrainSettings(steps=2000)).fit()

A run folder with checkpoints resumes from its newest model_{step} + state_{step}.pt; `settings.base` fine-tunes a
trained vocoder (its config.json sets the size). A step whose losses are not finite is skipped and logged.
"""
from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ...noise import NoiseSource, TorchNoise
from ...errors import ModelError, OptionError, SvcError
from ...train.checkpoints import CheckpointKeeper, load_optimizer_state
from ...train.discriminator import MultiPeriodDiscriminator
from ...train.losses import (discriminator_loss, feature_matching_loss, generator_adversarial_loss, harmonic_loss,
                             mel_l1_loss)
from ..mel import MelExtractor
from ..nsf_hifigan import MelGenerator, VocoderConfig
from ..source import HarmonicSource
from . import files
from .data import VocoderClips, collate
from .settings import VocoderTrainSettings, vocoder_config_for
from .smooth_init import smooth_upsampling
from .validation import VocoderValidation, validate

log = logging.getLogger("svc_core.train")
MAX_SKIPPED_IN_A_ROW = 20  # non-finite steps in a row before training stops


@dataclass
class VocoderTrainSummary:
    step: int
    interrupted: bool = False
    last_losses: dict[str, float] = field(default_factory=dict)
    val_mel: float | None = None
    resumed_from: int | None = None


def training_excitation(source: HarmonicSource, f0: torch.Tensor, noise: NoiseSource) -> torch.Tensor:
    """f0 [B, S] Hz -> excitation [B, 1, S * upp] with gradients into source.l_linear (HarmonicSource.forward is
    inference-only: it runs under no_grad). Same draws and numbers as its one-block path."""
    batch, frames = f0.shape
    with torch.no_grad():
        rad, start = source._frame_phases(f0.float(), noise)
        draw = noise.randn((batch, frames * source.upp, source.dim), f0.device)
    return source._block(rad, start, f0 > 0, draw).transpose(1, 2)


class VocoderTrainer:
    def __init__(self, data_dir, out_dir, settings: VocoderTrainSettings | None = None) -> None:
        self.data_dir, self.out_dir = Path(data_dir), Path(out_dir)
        s = self.settings = settings or VocoderTrainSettings()
        self.device = torch.device(s.device)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(s.seed)
        np.random.seed(s.seed)
        self.resumed_from = files.latest_step(self.out_dir)
        base_model = None
        if self.resumed_from is not None:
            cfg = files.read_config(self.out_dir / files.CONFIG_FILE)
        elif s.base:
            base_model, cfg = files.base_files(s.base)
        else:
            cfg = vocoder_config_for(s)
        self.config: VocoderConfig = cfg
        self.mel = MelExtractor(cfg.mel_settings)
        self.train_set = VocoderClips(self.data_dir, "train", self.mel, s.segment_frames, random_crop=True)
        self.val_set = VocoderClips(self.data_dir, "val", self.mel, 0, random_crop=False)
        for path, why in self.train_set.skipped:
            self._log(f"skipping {path}: {why} (shorter than the training segment)")
        self.loader = DataLoader(self.train_set, batch_size=s.batch_size, shuffle=True, collate_fn=collate,
                                 drop_last=len(self.train_set) >= s.batch_size,
                                 generator=torch.Generator().manual_seed(s.seed))
        self.generator = MelGenerator(cfg).to(self.device).train()
        self.discriminator = MultiPeriodDiscriminator(width_divisor=s.d_width_divisor).to(self.device).train()
        betas = (s.adam_b1, s.adam_b2)
        self.optim_g = torch.optim.AdamW(self.generator.parameters(), s.learning_rate, betas=betas)
        self.optim_d = torch.optim.AdamW(self.discriminator.parameters(), s.learning_rate, betas=betas)
        self.noise = TorchNoise()
        self.step = 0
        if self.resumed_from is not None:
            self._resume(self.resumed_from)
        elif base_model is not None:
            files.load_generator_file(self.generator, cfg, base_model)
            self._log(f"fine-tuning {base_model} (upsample_initial_channel {cfg.upsample_initial_channel})")
        elif s.smooth_init:
            smooth_upsampling(self.generator, seed=s.seed)
        files.write_config(self.out_dir, cfg, s.openvpi_fields(cfg.hop_size))
        self.keeper = CheckpointKeeper(self.out_dir, s.keep_best, files.VOCODER_LAYOUT)
        self.val_mel: float | None = None

    def _log(self, msg: str) -> None:
        log.info(msg)
        with open(self.out_dir / "train.log", "a", encoding="utf-8") as fh:
            fh.write(msg + "\n")

    def _resume(self, step: int) -> None:
        files.load_generator_file(self.generator, self.config, self.out_dir / files.STEP_MODEL.format(step))
        state = files.read_state(self.out_dir / files.STEP_STATE.format(step))
        divisor = int(state.get("d_width_divisor", self.settings.d_width_divisor))
        if divisor != self.settings.d_width_divisor:
            raise OptionError(f"The run in {self.out_dir} trained its discriminator with width divisor {divisor}; "
                              f"resume with --d-width-divisor {divisor} (or start a new --out).")
        try:
            self.discriminator.load_upstream_state_dict(state["discriminator"])
        except ModelError as err:
            raise ModelError(f"{files.STEP_STATE.format(step)}: {err}") from None
        for name, optim in (("optim_g", self.optim_g), ("optim_d", self.optim_d)):
            why = load_optimizer_state(optim, state.get(name))
            if why:
                self._log(f"resume: {name} starts fresh ({why})")
        self.step = int(state.get("step", step))
        self._log(f"resumed from step {self.step} in {self.out_dir}")

    # ------------------------------------------------------------------------------------------ one step
    def train_step(self, batch: dict) -> dict[str, float] | None:
        """One discriminator + generator update; returns the loss terms, or None when the step was skipped."""
        s = self.settings
        lr = s.lr_at(self.step + 1)
        for optim in (self.optim_g, self.optim_d):
            for group in optim.param_groups:
                group["lr"] = lr
        mel = batch["mel"].to(self.device)
        f0 = batch["f0"].to(self.device)
        y = batch["audio"].to(self.device)
        har = training_excitation(self.generator.m_source, f0, self.noise)
        y_hat = self.generator(mel, har)
        gan = self.step + 1 > s.gan_start_step
        zero = y.new_zeros(())
        loss_d = adv = fm = zero
        if gan:
            real, fake, _, _ = self.discriminator(y, y_hat.detach())
            loss_d = discriminator_loss(real, fake)
            if not torch.isfinite(loss_d):
                return self._skip(batch, "discriminator loss")
            self.optim_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.optim_d.step()
            _, fake, fmap_real, fmap_fake = self.discriminator(y, y_hat)
            adv = generator_adversarial_loss(fake)
            fm = feature_matching_loss(fmap_real, fmap_fake)
        mel_loss = mel_l1_loss(self.mel(y[:, 0]), self.mel(y_hat[:, 0])) * s.c_mel
        harm = harmonic_loss(y[:, 0], y_hat[:, 0], self.config.sampling_rate) * s.c_harm if s.c_harm else zero
        total = adv + fm + mel_loss + harm
        if not torch.isfinite(total):
            return self._skip(batch, "generator loss")
        self.optim_g.zero_grad(set_to_none=True)
        total.backward()
        self.optim_g.step()
        self.step += 1
        terms = {"g_total": total, "d": loss_d, "adv": adv, "fm": fm, "mel": mel_loss}
        if s.c_harm:
            terms["harm"] = harm
        return {k: float(v.detach()) for k, v in terms.items()}

    def _skip(self, batch: dict, what: str) -> None:
        self.optim_g.zero_grad(set_to_none=True)
        self.optim_d.zero_grad(set_to_none=True)
        self._log(f"step {self.step + 1}: {what} not finite, step skipped (clips {', '.join(batch['names'])})")
        return None

    # ------------------------------------------------------------------------------------------ saving
    def evaluate(self) -> VocoderValidation:
        return validate(self.generator, self.val_set, self.mel, max_clips=self.settings.val_clips,
                        max_frames=self.settings.max_val_frames, device=self.device, out_dir=self.out_dir,
                        step=self.step)

    def checkpoint(self, evaluate: bool = True) -> None:
        """model_{step} + state_{step}.pt, validation, keep-best pruning; `model` = the best so far."""
        files.save_step(self.out_dir, self.step, self.generator, self.discriminator, self.optim_g, self.optim_d,
                        self.settings.d_width_divisor)
        score = None
        if evaluate:
            result = self.evaluate()
            score = self.val_mel = result.mel_l1
            self._log(f"step {self.step}: {result.describe()}")
        self.keeper.add(self.step, score)
        scored = {k: v for k, v in self.keeper.record.items() if v is not None}
        best = min(scored, key=scored.get) if scored else self.step
        files.publish(self.out_dir, best if (self.out_dir / files.STEP_MODEL.format(best)).is_file() else self.step)

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> VocoderTrainSummary:
        s = self.settings
        summary = VocoderTrainSummary(self.step, resumed_from=self.resumed_from)
        n_params = sum(p.numel() for p in self.generator.parameters())
        self._log(f"train-vocoder: {len(self.train_set)} clips, generator {n_params / 1e6:.2f} M parameters "
                  f"(upsample_initial_channel {self.config.upsample_initial_channel}), batch {s.batch_size} x "
                  f"{s.segment_frames} frames, discriminator width / {s.d_width_divisor}, "
                  f"{torch.get_num_threads()} thread(s), steps {self.step} -> {s.steps}")
        if self.step >= s.steps:
            return summary
        start, start_step, skipped = time.perf_counter(), self.step, 0
        try:
            while self.step < s.steps:
                for batch in self.loader:
                    losses = self.train_step(batch)
                    if losses is None:
                        skipped += 1
                        if skipped > MAX_SKIPPED_IN_A_ROW:
                            raise SvcError(f"Vocoder training diverged: {skipped} steps in a row had non-finite "
                                           f"losses at step {self.step}; lower --lr or resume from an earlier "
                                           "checkpoint (delete the newest model_/state_ files).")
                        continue
                    skipped = 0
                    summary.last_losses = losses
                    if self.step % s.interval_log == 0 or self.step == s.steps:
                        rate = (self.step - start_step) / max(time.perf_counter() - start, 1e-9)
                        eta = (s.steps - self.step) / rate if rate > 0 else math.inf
                        self._log(f"step {self.step}/{s.steps} " + " ".join(f"{k} {v:.3f}" for k, v in losses.items())
                                  + f" lr {s.lr_at(self.step):.2e} | {rate:.2f} steps/s, eta {eta / 60:.0f} min")
                    if self.step % s.interval_val == 0 or self.step == s.steps:
                        self.checkpoint()
                    if self.step >= s.steps:
                        break
        except KeyboardInterrupt:
            if self.step > start_step:
                self.checkpoint(evaluate=False)
            summary.interrupted = True
        summary.step, summary.val_mel = self.step, self.val_mel
        return summary


