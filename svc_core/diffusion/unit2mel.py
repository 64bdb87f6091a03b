"""Unit2Mel: so-vits-svc 4.1's shallow-diffusion model (content units + f0 + volume [+ speaker] -> log-mel).

State-dict names are upstream's: `unit_embed`, `f0_embed`, `volume_embed`, `aug_shift_embed` (no bias, only with
use_pitch_aug), `spk_embed` (only when n_spk > 1) and `decoder` (GaussianDiffusion: schedule buffers, spec_min /
spec_max, `denoise_fn` WaveNet).

Shapes: units [B, T, C] (C = input_channel), f0 [B, T, 1] Hz (0 = unvoiced), vol [B, T, 1] linear RMS,
spk_id [B, 1] int64 (0-based embedding row), aug_shift [B, 1, 1] semitones, mels [B, T, M].
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Optional

import torch
from torch import nn

from ..errors import OptionError, SpeakerError
from .gaussian import GaussianDiffusion
from ..noise import NoiseSource
from .wavenet import WaveNet

if TYPE_CHECKING:
    from .config import DiffusionConfig

F0_MEL_BREAK = 700.0  # Hz: f0 is embedded as ln(1 + f0 / 700)
AUG_SHIFT_SCALE = 5.0  # semitones: aug_shift is embedded as aug_shift / 5
DEFAULT_K_STEP = 100  # shallow-diffusion depth (upstream CLI -ks)
DEFAULT_METHOD = "dpm-solver++"  # upstream template infer.method
DEFAULT_SPEEDUP = 10  # upstream template infer.speedup
N_MELS = 128  # the NSF-HiFiGAN mel vocoder's bins (upstream takes vocoder.dimension)


class Unit2Mel(nn.Module):
    """Condition embedding + GaussianDiffusion(WaveNet). `config` is set by the loader (DiffusionConfig)."""

    def __init__(self, input_channel: int, n_spk: int, use_pitch_aug: bool = False, out_dims: int = N_MELS,
                 n_layers: int = 20, n_chans: int = 384, n_hidden: int = 256, timesteps: int = 1000,
                 k_step_max: int = 0) -> None:
        super().__init__()
        self.unit_embed = nn.Linear(input_channel, n_hidden)
        self.f0_embed = nn.Linear(1, n_hidden)
        self.volume_embed = nn.Linear(1, n_hidden)
        self.aug_shift_embed = nn.Linear(1, n_hidden, bias=False) if use_pitch_aug else None
        self.n_spk = int(n_spk)
        if self.n_spk > 1:
            self.spk_embed = nn.Embedding(self.n_spk, n_hidden)
        self.input_channel = input_channel
        self.n_hidden = n_hidden
        self.decoder = GaussianDiffusion(WaveNet(out_dims, n_layers, n_chans, n_hidden), out_dims=out_dims,
                                         timesteps=timesteps, k_step_max=k_step_max)
        self.config: Optional["DiffusionConfig"] = None
        self.global_step: Optional[int] = None  # the checkpoint's training step (set by the loader)

    @classmethod
    def from_config(cls, config: "DiffusionConfig", out_dims: int = N_MELS) -> "Unit2Mel":
        """A fresh model (random weights) with the architecture a DiffusionConfig describes."""
        model = cls(config.encoder_out_channels, config.n_spk, config.use_pitch_aug, out_dims, config.n_layers,
                    config.n_chans, config.n_hidden, config.timesteps, config.k_step_max)
        model.config = config
        return model

    @property
    def out_dims(self) -> int:
        return self.decoder.out_dims

    def _speaker(self, spk_id: Optional[torch.Tensor], spk_mix: Optional[Mapping[int, float]],
                 device: torch.device) -> list[torch.Tensor]:
        """The speaker terms to add, in upstream's order ([B|1, 1, H] each)."""
        if self.n_spk <= 1:
            return []
        if spk_mix is not None:
            terms = []
            for sid, weight in spk_mix.items():
                self._check_id(int(sid))
                row = self.spk_embed(torch.tensor([[int(sid)]], dtype=torch.long, device=device))
                terms.append(float(weight) * row)
            return terms
        if spk_id is None:
            raise OptionError(f"This diffusion model has {self.n_spk} speakers: give spk_id (0..{self.n_spk - 1}) "
                              "or a speaker mix.")
        spk_id = torch.as_tensor(spk_id, dtype=torch.long, device=device)
        if spk_id.dim() != 2 or spk_id.shape[1] != 1:
            raise OptionError(f"spk_id must be [batch, 1] speaker ids, got shape {list(spk_id.shape)}; mix "
                              "speakers with spk_mix={id: weight} (per-frame speaker maps are not supported).")
        if spk_id.numel():
            self._check_id(int(spk_id.min()))
            self._check_id(int(spk_id.max()))
        return [self.spk_embed(spk_id)]

    def _check_id(self, sid: int) -> None:
        if not 0 <= sid < self.n_spk:
            raise SpeakerError(f"Speaker id {sid} is not in this diffusion model, which has {self.n_spk} speakers "
                               f"(ids 0..{self.n_spk - 1}).")

    def condition(self, units: torch.Tensor, f0: torch.Tensor, vol: torch.Tensor,
                  spk_id: Optional[torch.Tensor] = None, spk_mix: Optional[Mapping[int, float]] = None,
                  aug_shift: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The denoiser's condition [B, T, H] = unit_embed(units) + f0_embed(ln(1 + f0/700)) + volume_embed(vol)
        [+ spk_embed(spk_id), or sum_k w_k spk_embed(k) for spk_mix {id: weight}] [+ aug_shift_embed(shift/5)]."""
        x = self.unit_embed(units) + self.f0_embed((1 + f0 / F0_MEL_BREAK).log()) + self.volume_embed(vol)
        for term in self._speaker(spk_id, spk_mix, units.device):
            x = x + term
        if self.aug_shift_embed is not None and aug_shift is not None:
            x = x + self.aug_shift_embed(aug_shift / AUG_SHIFT_SCALE)
        return x

    def forward(self, units: torch.Tensor, f0: torch.Tensor, vol: torch.Tensor,
                spk_id: Optional[torch.Tensor] = None, spk_mix: Optional[Mapping[int, float]] = None,
                aug_shift: Optional[torch.Tensor] = None, gt_spec: Optional[torch.Tensor] = None,
                k_step: int = DEFAULT_K_STEP, method: Optional[str] = DEFAULT_METHOD, speedup: int = DEFAULT_SPEEDUP,
                noise: Optional[NoiseSource] = None, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """log-mel [B, T, M]: shallow diffusion of gt_spec [B, T, M] from k_step, or only-diffusion when gt_spec is
        None (needs a model trained on the whole chain). dtype bfloat16 / float16: the denoiser in that precision
        (opt-in, svc_core.precision; the condition and the sampler stay float32)."""
        cond = self.condition(units, f0, vol, spk_id, spk_mix, aug_shift)
        return self.decoder.infer(cond, gt_spec, k_step, method, speedup, noise, dtype)

    def loss(self, units: torch.Tensor, f0: torch.Tensor, vol: torch.Tensor, gt_spec: torch.Tensor,
             spk_id: Optional[torch.Tensor] = None, aug_shift: Optional[torch.Tensor] = None,
             t: Optional[torch.Tensor] = None, noise: torch.Tensor | NoiseSource | None = None,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Training loss (scalar) of upstream's train_diff: noise-prediction MSE at random steps t < k_step_max."""
        cond = self.condition(units, f0, vol, spk_id, None, aug_shift)
        return self.decoder.loss(cond, gt_spec, t, noise, generator)
