"""Training losses of so-vits-svc 4.x (VITS): least-squares GAN, feature matching, mel L1, KL, f0 MSE; plus an
optional harmonic loss of our own (off by default, as upstream).

All losses are computed in float32 (outside autocast), as upstream does.

Why the harmonic loss: at 44.1 kHz upstream's 80 mel filters span ~90-170 Hz each below 1 kHz, so the mel L1 hardly
tells a 100 Hz voice from the 86 Hz (sampling rate / hop) buzz an untrained HiFi-GAN makes; only the adversarial
terms teach the decoder to use its NSF source, which takes many more steps than a CPU affords. An L1 between
log-magnitude spectra with 10-20 Hz bins on 0-4 kHz (where a voice's harmonics are) penalises every harmonic at
the wrong frequency directly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

FEATURE_MATCHING_WEIGHT = 2.0
HARMONIC_FFT_SIZES = (2048, 4096)  # samples: 21.5 / 10.8 Hz bins at 44.1 kHz resolve harmonics of f0 >= ~60 Hz
HARMONIC_HOP = 256  # samples between STFT frames
HARMONIC_MAX_HZ = 4000.0  # band the harmonic loss looks at
LOG_FLOOR = 1e-5  # magnitude floor before the log


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """sum over sub-discriminators of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    total = real[0].new_zeros((), dtype=torch.float32)
    for dr, dg in zip(real, fake):
        total = total + torch.mean((1 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return total


def generator_adversarial_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    """sum over sub-discriminators of mean((1 - D(fake))^2)."""
    total = fake[0].new_zeros((), dtype=torch.float32)
    for dg in fake:
        total = total + torch.mean((1 - dg.float()) ** 2)
    return total


def feature_matching_loss(fmap_real: list[list[torch.Tensor]], fmap_fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """2 * sum over every feature map of mean |real - fake| (real maps detached)."""
    total = fmap_real[0][0].new_zeros((), dtype=torch.float32)
    for maps_r, maps_g in zip(fmap_real, fmap_fake):
        for r, g in zip(maps_r, maps_g):
            total = total + torch.mean(torch.abs(r.detach().float() - g.float()))
    return total * FEATURE_MATCHING_WEIGHT


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor,
            z_mask: torch.Tensor) -> torch.Tensor:
    """VITS KL between the posterior sample mapped by the flow (z_p, logs_q) and the prior (m_p, logs_p),
    averaged over unmasked frames: sum(logs_p - logs_q - 0.5 + 0.5 (z_p - m_p)^2 exp(-2 logs_p)) / sum(mask)."""
    z_p, logs_q, m_p, logs_p, z_mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, z_mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * ((z_p - m_p) ** 2) * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)


def mel_l1_loss(mel_real: torch.Tensor, mel_fake: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of two log-mel slices (unweighted)."""
    return F.l1_loss(mel_real.float(), mel_fake.float())


def harmonic_loss(y: torch.Tensor, y_hat: torch.Tensor, sampling_rate: int) -> torch.Tensor:
    """Mean over HARMONIC_FFT_SIZES of L1 between log-magnitude STFTs of y and y_hat ([B, T] audio) on the
    0..HARMONIC_MAX_HZ band (unweighted)."""
    y, y_hat = y.float(), y_hat.float()
    total = y.new_zeros(())
    for n_fft in HARMONIC_FFT_SIZES:
        bins = int(HARMONIC_MAX_HZ * n_fft / sampling_rate) + 1
        window = torch.hann_window(n_fft, device=y.device)
        mags = [torch.stft(a, n_fft, HARMONIC_HOP, window=window, return_complex=True)[:, :bins].abs()
                for a in (y, y_hat)]
        total = total + F.l1_loss(torch.log(mags[1].clamp_min(LOG_FLOOR)), torch.log(mags[0].clamp_min(LOG_FLOOR)))
    return total / len(HARMONIC_FFT_SIZES)


@dataclass
class GeneratorLosses:
    """The generator's loss terms (already weighted) and their sum."""

    total: torch.Tensor
    adversarial: torch.Tensor
    feature_matching: torch.Tensor
    mel: torch.Tensor  # c_mel * L1
    kl: torch.Tensor  # c_kl * KL
    lf0: torch.Tensor
    harmonic: torch.Tensor | None = None  # c_harm * harmonic_loss, when enabled

    def scalars(self) -> dict[str, float]:
        terms = {"g_total": self.total, "g_adv": self.adversarial, "fm": self.feature_matching, "mel": self.mel,
                 "kl": self.kl, "lf0": self.lf0}
        if self.harmonic is not None:
            terms["harm"] = self.harmonic
        return {k: float(v.detach()) for k, v in terms.items()}


def generator_losses(fake: list[torch.Tensor], fmap_real: list, fmap_fake: list, mel_real: torch.Tensor,
                     mel_fake: torch.Tensor, kl_terms: tuple, pred_lf0, lf0, c_mel: float,
                     c_kl: float, harmonic: torch.Tensor | None = None) -> GeneratorLosses:
    """adversarial + feature matching + c_mel * mel L1 + c_kl * KL + MSE(pred_lf0, lf0) (when an f0 decoder ran)
    [+ `harmonic`, an already weighted harmonic_loss]. fake/fmaps None: no adversarial terms (0).

    kl_terms = (z_p, logs_q, m_p, logs_p, z_mask); pred_lf0 / lf0 are 0 for models without f0 decoder.
    """
    if fake is None:  # discriminator not started yet (TrainSettings.gan_start_step)
        adv = fm = mel_real.new_zeros((), dtype=torch.float32)
    else:
        adv = generator_adversarial_loss(fake)
        fm = feature_matching_loss(fmap_real, fmap_fake)
    mel = mel_l1_loss(mel_real, mel_fake) * c_mel
    kl = kl_loss(*kl_terms) * c_kl
    if isinstance(pred_lf0, torch.Tensor):
        lf0_loss = F.mse_loss(pred_lf0.float(), lf0.float())
    else:
        lf0_loss = torch.zeros((), device=mel.device)
    total = adv + fm + mel + kl + lf0_loss
    if harmonic is not None:
        total = total + harmonic
    return GeneratorLosses(total, adv, fm, mel, kl, lf0_loss, harmonic)
