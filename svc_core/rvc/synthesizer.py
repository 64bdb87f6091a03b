"""RVC v1/v2 synthesizer (SynthesizerTrnMs{256|768}NSFsid and the *_nono classes) with RVC's state-dict layout.

Inference: enc_p(content, coarse pitch) -> prior (m_p, logs_p); z_p = m_p + exp(logs_p)*eps*0.66666; z = reverse
flow(z_p, g); dec(z, f0 Hz, g) -> audio at hp.sr. Random draws go through a NoiseSource in RVC's order: randn
[1, Z, T] (prior), then for pitch models rand [1, 1, 1] and randn [1, T*hop, 1] (the NSF source).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import ModelError
from ..models.flows import ResidualCouplingBlock
from ..models.posterior import PosteriorEncoder
from ..models.weight_norm import fold_weight_norm, to_internal, upstream_items
from ..noise import NoiseSource
from .generator import RvcGenerator, RvcGeneratorNSF
from .hparams import RvcHParams
from .text_encoder import RvcTextEncoder

PRIOR_SCALE = 0.66666  # RVC's fixed prior noise scale
FLOW_KERNEL, FLOW_DILATION, FLOW_WN_LAYERS = 5, 1, 3  # flow coupling WN
POSTERIOR_KERNEL, POSTERIOR_DILATION, POSTERIOR_LAYERS = 5, 1, 16  # enc_q WN
SKIP_CONTEXT = 24  # frames the realtime path keeps before skip_head for the flow (RVC's flow_head)
POSTERIOR_PREFIX = "enc_q."
_SHOW = 5  # keys listed per category in error messages


@dataclass
class RvcOutput:
    """What `infer` returns: audio o [1, 1, T'*hop] and RVC's (x_mask, z, z_p, m_p, logs_p)."""

    o: torch.Tensor
    x_mask: torch.Tensor
    z: torch.Tensor
    z_p: torch.Tensor
    m_p: torch.Tensor
    logs_p: torch.Tensor


def _frames(value: int | torch.Tensor | None) -> int | None:
    return None if value is None else int(value.item() if isinstance(value, torch.Tensor) else value)


def _listing(keys: list[str]) -> str:
    return ", ".join(keys[:_SHOW]) + (f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


class RvcSynthesizer(nn.Module):
    """RVC's generator network; `posterior=True` adds enc_q (training only)."""

    family = "rvc"

    def __init__(self, hp: RvcHParams, posterior: bool = False) -> None:
        super().__init__()
        self.hp = hp
        self.segment_size = hp.segment_size
        self.enc_p = RvcTextEncoder(hp)
        self.dec = RvcGeneratorNSF(hp) if hp.f0 else RvcGenerator(hp)
        if posterior:
            self.enc_q = PosteriorEncoder(hp.spec_channels, hp.inter_channels, hp.hidden_channels, POSTERIOR_KERNEL,
                                          POSTERIOR_DILATION, POSTERIOR_LAYERS, gin_channels=hp.gin_channels)
        self.flow = ResidualCouplingBlock(hp.inter_channels, hp.hidden_channels, FLOW_KERNEL, FLOW_DILATION,
                                          FLOW_WN_LAYERS, gin_channels=hp.gin_channels)
        self.emb_g = nn.Embedding(hp.spk_embed_dim, hp.gin_channels)

    @property
    def has_posterior(self) -> bool:
        return hasattr(self, "enc_q")

    # ---- speakers -------------------------------------------------------------------------------------------
    def speaker_embedding(self, speaker: torch.Tensor | int) -> torch.Tensor:
        """speaker id (LongTensor [1] or int) or mix weights (FloatTensor [n_spk], normalised to sum 1)
        -> g [1, G, 1]."""
        table = self.emb_g.weight
        if isinstance(speaker, int) or not speaker.is_floating_point():
            sid = torch.as_tensor(speaker, dtype=torch.long, device=table.device).reshape(-1)[:1]
            if not 0 <= int(sid) < table.shape[0]:
                raise ModelError(f"Speaker id {int(sid)} is out of range: this RVC model has {table.shape[0]} "
                                 f"speaker row(s), ids 0..{table.shape[0] - 1}.")
            return self.emb_g(sid).unsqueeze(-1)
        weights = speaker.to(device=table.device, dtype=table.dtype).reshape(-1)
        if weights.numel() != table.shape[0]:
            raise ModelError(f"A speaker mix needs {table.shape[0]} weights (one per speaker row), got "
                             f"{weights.numel()}.")
        total = float(weights.sum())
        if bool((weights < 0).any()) or total <= 0:
            raise ModelError("Speaker mix weights must be >= 0 and not all zero.")
        return (weights / total @ table).reshape(1, -1, 1)

    def _g(self, g: torch.Tensor) -> torch.Tensor:
        """g [B, G, 1] as given, or speaker ids [B] (long) -> their embeddings [B, G, 1]."""
        return g if g.is_floating_point() else self.emb_g(g.reshape(-1)).unsqueeze(-1)

    # ---- inference ------------------------------------------------------------------------------------------
    def infer(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
              nsff0: torch.Tensor | None, g: torch.Tensor, noise: NoiseSource,
              skip_head: int | torch.Tensor | None = None, return_length: int | torch.Tensor | None = None,
              chunk_frames: int = 0, span: tuple[int, int] | None = None,
              vocoder_dtype: torch.dtype | None = None) -> RvcOutput:
        """phone [1, T, C], phone_lengths [1] long, pitch [1, T] long | None, nsff0 [1, T] Hz | None, g [1, G, 1].

        skip_head + return_length (RVC's realtime form): the flow sees frames from max(skip_head-24, 0), the
        decoder only [skip_head, skip_head+return_length). chunk_frames / span: see RvcGenerator.forward."""
        if self.hp.f0 and (pitch is None or nsff0 is None):
            raise ValueError("this RVC model is a pitch model: give pitch (coarse) and nsff0 (Hz)")
        if not self.hp.f0:
            pitch = nsff0 = None
        g = self._g(g)
        head, length = _frames(skip_head), _frames(return_length)
        flow_head = max(head - SKIP_CONTEXT, 0) if head is not None and length is not None else 0
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths, flow_head)
        eps = noise.randn(tuple(m_p.shape), device=m_p.device)
        z_p = (m_p + torch.exp(logs_p) * eps * PRIOR_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        if head is not None and length is not None:
            dec_head = head - flow_head
            z = z[:, :, dec_head:dec_head + length]
            x_mask = x_mask[:, :, dec_head:dec_head + length]
            if nsff0 is not None:
                nsff0 = nsff0[:, head:head + length]
        o = self.dec(z * x_mask, nsff0, g=g, noise=noise, chunk_frames=chunk_frames, span=span,
                     dtype=vocoder_dtype)
        return RvcOutput(o=o, x_mask=x_mask, z=z, z_p=z_p, m_p=m_p, logs_p=logs_p)

    # ---- training -------------------------------------------------------------------------------------------
    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, pitch: torch.Tensor | None,
                pitchf: torch.Tensor | None, spec: torch.Tensor, spec_lengths: torch.Tensor, g: torch.Tensor,
                noise: NoiseSource | None = None):
        """RVC's training step: phone [B, T, C], pitch [B, T] long, pitchf [B, T] Hz (None for no-pitch models),
        spec [B, F, T] linear spectrogram, g [B, G, 1] or speaker ids [B] ->
        (o [B, 1, segment*hop], ids_slice [B] start frames, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q)).
        A random crop of `segment_size` frames is decoded (torch's global RNG, as RVC; the NSF source draws from
        `noise`, default the global RNG)."""
        from ..noise import TorchNoise
        from .slicing import rand_slice_segments, slice_segments

        if not self.has_posterior:
            raise ValueError("training needs the posterior encoder: build RvcSynthesizer(hp, posterior=True)")
        g = self._g(g)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch if self.hp.f0 else None, phone_lengths)
        z, m_q, logs_q, y_mask = self.enc_q(spec, spec_lengths, g=g)
        z_p = self.flow(z, y_mask, g=g)
        z_slice, ids_slice = rand_slice_segments(z, spec_lengths, self.segment_size)
        f0_slice = slice_segments(pitchf, ids_slice, self.segment_size) if self.hp.f0 else None
        o = self.dec(z_slice, f0_slice, g=g, noise=noise or TorchNoise())
        return o, ids_slice, x_mask, y_mask, (z, z_p, m_p, logs_p, m_q, logs_q)

    # ---- weights --------------------------------------------------------------------------------------------
    def rvc_state(self, include_posterior: bool = False) -> dict[str, torch.Tensor]:
        """Weights under RVC's names (weight_g / weight_v for weight-normed layers); enc_q.* only when asked."""
        return {k: v.detach() for k, v in upstream_items(self).items()
                if include_posterior or not k.startswith(POSTERIOR_PREFIX)}

    def load_rvc_state(self, state: dict[str, torch.Tensor], source: str = "the RVC model") -> None:
        """Copy RVC-named weights in (fp16 upcast to this model's dtype). enc_q.* may be absent (release files) or
        present when this model has no posterior (then ignored, as RVC's non-strict load does)."""
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ModelError(f"{source}: the weights are not a dict of tensors; the file is damaged or not RVC's.")
        expected = upstream_items(self)
        given = {k: v for k, v in state.items() if self.has_posterior or not k.startswith(POSTERIOR_PREFIX)}
        missing = [k for k in expected if k not in given and not k.startswith(POSTERIOR_PREFIX)]
        unexpected = [k for k in given if k not in expected]
        wrong = [f"{k} {list(given[k].shape)} (expected {list(expected[k].shape)})"
                 for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
        problems = [f"{what}: {_listing(keys)}" for what, keys in
                    (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)) if keys]
        if problems:
            raise ModelError(f"{source} does not match an RVC {self.hp.version} {'pitch' if self.hp.f0 else 'no-pitch'}"
                             f" {self.hp.sr_name} synthesizer: " + "; ".join(problems) + ". The file's stored "
                             "hyper-parameters do not describe its weights: it is damaged, edited, or from a fork "
                             "with another layout.")
        given = {k: v.to(dtype=expected[k].dtype) if v.is_floating_point() else v for k, v in given.items()}
        result = self.load_state_dict(to_internal(self, given), strict=False)
        leftover = [k for k in result.missing_keys if not k.startswith(POSTERIOR_PREFIX)]
        if leftover or result.unexpected_keys:
            raise ModelError(f"Internal key mapping failed (missing {leftover[:_SHOW]}, unexpected "
                             f"{result.unexpected_keys[:_SHOW]}); this is a bug in svc_core.rvc.")

    def fold_weight_norm(self) -> int:
        """Fold every weight-norm parametrisation into plain weights (inference); returns the count."""
        return fold_weight_norm(self)
