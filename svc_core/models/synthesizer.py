"""SynthesizerTrn: the so-vits-svc 4.x generator (4.1-Stable numerics), loadable from upstream G_*.pth.

Module tree and state-dict prefixes match upstream: emb_g, [emb_vol], pre, enc_p, [f0_decoder], enc_q,
flow, dec, emb_uv.

Weight norm: layers upstream weight-normalised use `torch.nn.utils.parametrizations.weight_norm`, so the
model is trainable as is. Upstream files use the old `weight_g` / `weight_v` key names;
`load_upstream_state_dict` and `upstream_state_dict` translate (original0 <-> weight_g,
original1 <-> weight_v). For inference call `fold_weight_norm()` once after loading: every
w = g * v / ||v|| is computed once and stored as a plain weight (same kernel upstream uses, so results
are bit-identical). A folded model still reads and writes the upstream layout (g = ||w||, v = w).
Call `.eval()` before `infer` (dropout).
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from ..constants import DEFAULT_SEED, MODEL_SAMPLE_RATE
from ..errors import ModelError
from . import commons
from .f0_decoder import F0Decoder
from .flows import FLOW_KERNEL, ResidualCouplingBlock, TransformerCouplingBlock
from .nsf_hifigan import Generator
from .posterior import PosteriorEncoder
from .state_io import load_upstream, upstream_state
from .text_encoder import TextEncoder
from .weight_norm import fold_weight_norm
from .voice_model import VoiceModel

log = logging.getLogger(__name__)

PRE_KERNEL = 5  # kernel of the content projection `pre`
SUPPORTED_VOCODERS = ("nsf-hifigan",)


class SynthesizerTrn(VoiceModel, nn.Module):
    """Content units + f0 + speaker -> 44.1 kHz waveform. Constructor keywords are upstream's config["model"]."""

    def __init__(self, spec_channels: int, segment_size: int, inter_channels: int, hidden_channels: int,
                 filter_channels: int, n_heads: int, n_layers: int, kernel_size: int, p_dropout: float,
                 resblock: str, resblock_kernel_sizes: list[int], resblock_dilation_sizes: list[list[int]],
                 upsample_rates: list[int], upsample_initial_channel: int, upsample_kernel_sizes: list[int],
                 gin_channels: int, ssl_dim: int, n_speakers: int, sampling_rate: int = MODEL_SAMPLE_RATE,
                 vol_embedding: bool = False, vocoder_name: str = "nsf-hifigan", use_depthwise_conv: bool = False,
                 flow_share_parameter: bool = False, n_flow_layer: int = 4, n_layers_trans_flow: int = 3,
                 use_transformer_flow: bool = False, use_automatic_f0_prediction: bool = True, **ignored) -> None:
        super().__init__()
        if vocoder_name == "nsf-snake-hifigan":
            raise ModelError("The 'nsf-snake-hifigan' vocoder (config model.vocoder_name) is not supported yet; "
                             "only 'nsf-hifigan' models can be loaded.")
        if vocoder_name not in SUPPORTED_VOCODERS:
            log.warning("Unknown vocoder_name %r in the model config; using nsf-hifigan as upstream does.",
                        vocoder_name)
        self.spec_channels = spec_channels
        self.segment_size = segment_size
        self.inter_channels = inter_channels
        self.hidden_channels = hidden_channels
        self.gin_channels = gin_channels
        self.ssl_dim = ssl_dim
        self.n_speakers = n_speakers
        self.vol_embedding = vol_embedding
        self.use_automatic_f0_prediction = use_automatic_f0_prediction

        self.emb_g = nn.Embedding(n_speakers, gin_channels)
        if vol_embedding:
            self.emb_vol = nn.Linear(1, hidden_channels)
        self.pre = nn.Conv1d(ssl_dim, hidden_channels, kernel_size=PRE_KERNEL, padding=PRE_KERNEL // 2)
        self.enc_p = TextEncoder(inter_channels, hidden_channels, kernel_size, n_layers,
                                 filter_channels=filter_channels, n_heads=n_heads, p_dropout=p_dropout)
        self.dec = Generator(inter_channels, resblock, resblock_kernel_sizes, resblock_dilation_sizes,
                             upsample_rates, upsample_initial_channel, upsample_kernel_sizes, gin_channels,
                             sampling_rate=sampling_rate)
        self.enc_q = PosteriorEncoder(spec_channels, inter_channels, hidden_channels, gin_channels=gin_channels,
                                      depthwise=use_depthwise_conv)
        if use_transformer_flow:
            self.flow: nn.Module = TransformerCouplingBlock(
                inter_channels, hidden_channels, filter_channels, n_heads, n_layers_trans_flow, FLOW_KERNEL,
                p_dropout, n_flows=n_flow_layer, gin_channels=gin_channels, share_parameter=flow_share_parameter)
        else:
            self.flow = ResidualCouplingBlock(inter_channels, hidden_channels, FLOW_KERNEL, 1, n_flow_layer,
                                              gin_channels=gin_channels, share_parameter=flow_share_parameter,
                                              depthwise=use_depthwise_conv)
        if use_automatic_f0_prediction:
            self.f0_decoder = F0Decoder(1, hidden_channels, filter_channels, n_heads, n_layers, kernel_size,
                                        p_dropout, spk_channels=gin_channels)
        self.emb_uv = nn.Embedding(2, hidden_channels)

    # ----------------------------------------------------------------------------------------- weights
    def load_upstream_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load an upstream G_*.pth "model" dict (weight_g/weight_v keys; enc_q.* optional; fp16 cast up).

        Raises ModelError naming missing / unexpected / wrongly shaped keys.
        """
        load_upstream(self, state)

    def upstream_state_dict(self) -> dict[str, torch.Tensor]:
        """State dict with upstream key names and shapes (weight_g / weight_v), as upstream's G_*.pth 'model'."""
        return upstream_state(self)

    def fold_weight_norm(self) -> "SynthesizerTrn":
        """Compute every weight-normed weight once (for inference); returns self."""
        fold_weight_norm(self)
        return self

    # ----------------------------------------------------------------------------------------- training
    def forward(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, spec: torch.Tensor, g: torch.Tensor,
                c_lengths: torch.Tensor, spec_lengths: torch.Tensor, vol: torch.Tensor | None = None) -> tuple:
        """Training pass as upstream: c [B, S, T], f0/uv [B, T], spec [B, F, T], g [B, 1] ids, lengths [B].

        Returns (audio slice [B, 1, segment_size*hop], slice starts [B], spec_mask [B, 1, T],
        (z, z_p, m_p, logs_p, m_q, logs_q), pred_lf0, norm_lf0, lf0); the last three are 0 without f0_decoder.
        """
        g = self.emb_g(g).transpose(1, 2)
        x_mask = commons.sequence_mask(c_lengths, c.size(2)).unsqueeze(1).to(c.dtype)
        x = self.embed_inputs(c, uv, x_mask, vol)
        lf0 = norm_lf0 = pred_lf0 = 0
        if self.use_automatic_f0_prediction:
            lf0 = commons.hz_to_lf0(f0.unsqueeze(1))
            norm_lf0 = commons.normalize_lf0(lf0, x_mask, uv, random_scale=True)
            pred_lf0 = self.f0_decoder(x, norm_lf0, x_mask, spk_emb=g)
        _, m_p, logs_p = self.enc_p(x, x_mask, commons.f0_to_coarse(f0))
        z, m_q, logs_q, spec_mask = self.enc_q(spec, spec_lengths, g=g)
        z_p = self.flow(z, spec_mask, g=g)
        z_slice, pitch_slice, ids_slice = commons.rand_slice_segments_with_pitch(z, f0, spec_lengths,
                                                                                 self.segment_size)
        audio = self.dec(z_slice, pitch_slice, g=g)
        return audio, ids_slice, spec_mask, (z, z_p, m_p, logs_p, m_q, logs_q), pred_lf0, norm_lf0, lf0

    # ----------------------------------------------------------------------------------------- inference
    def speaker_condition(self, g: torch.Tensor) -> torch.Tensor:
        """Speaker id ([1] or [1, 1] long) -> [1, G, 1]; mix matrix [T, n_speakers] float -> [1, G, T]."""
        if g.is_floating_point():
            if g.dim() != 2 or g.shape[1] != self.n_speakers:
                raise ModelError(f"A speaker-mix matrix must have shape [frames, {self.n_speakers}] "
                                 f"(one weight per speaker of this model); got {list(g.shape)}.")
            # per frame: sum_s w[t, s] * emb_g[s]  (as upstream's speaker_map product + sum)
            table = self.emb_g.weight.reshape(1, self.n_speakers, 1, 1, self.gin_channels)
            mixed = torch.sum(g.reshape(g.shape[0], g.shape[1], 1, 1, 1) * table, dim=1)  # [T, 1, 1, G]
            return mixed.transpose(0, -1).transpose(0, -2).squeeze(0)  # [1, G, T]
        if g.dim() == 1:
            g = g.unsqueeze(0)
        if int(g.min()) < 0 or int(g.max()) >= self.n_speakers:
            raise ModelError(f"Speaker id {g.flatten().tolist()} is out of range: this model has "
                             f"{self.n_speakers} speaker(s), ids 0..{self.n_speakers - 1}.")
        return self.emb_g(g).transpose(1, 2)

    def embed_inputs(self, c: torch.Tensor, uv: torch.Tensor, x_mask: torch.Tensor,
                     vol: torch.Tensor | None) -> torch.Tensor:
        """pre(c) * mask + emb_uv(uv) [+ emb_vol(vol)] -> [B, H, T]."""
        x = self.pre(c) * x_mask + self.emb_uv(uv.long()).transpose(1, 2)
        if vol is not None and self.vol_embedding:
            x = x + self.emb_vol(vol[:, :, None]).transpose(1, 2)
        return x

    def predict_f0(self, x: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, x_mask: torch.Tensor,
                   g: torch.Tensor) -> torch.Tensor:
        """f0 decoder: input f0 [B, T] Hz (only its voiced-mean-removed contour is used) -> predicted f0 [B, T] Hz."""
        norm_lf0 = commons.normalize_lf0(commons.hz_to_lf0(f0.unsqueeze(1)), x_mask, uv)
        pred_lf0 = self.f0_decoder(x, norm_lf0, x_mask, spk_emb=g)
        return commons.lf0_to_hz(pred_lf0).squeeze(1)

    @torch.no_grad()
    def infer(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor,
              noise_scale: float = 0.35, predict_f0: bool = False, vol: torch.Tensor | None = None,
              seed: int = DEFAULT_SEED, chunk_frames: int = 0,
              span: tuple[int, int] | None = None,
              vocoder_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """c [1, S, T], f0 [1, T] Hz (interpolated), uv [1, T] 0/1, g speaker id or mix [T, n_spk], vol [1, T].
        chunk_frames > 0: the vocoder decodes that many frames at a time (same audio, bounded memory).
        span (start, stop): the vocoder decodes only those frames (the rest of the model still sees all T).
        vocoder_dtype bfloat16 / float16: the vocoder runs in that precision (svc_core.precision; opt-in).

        Returns (audio [1, 1, T*hop] in [-1, 1], or [1, 1, (stop-start)*hop] with a span; f0 [1, T] Hz: the input
        or, with predict_f0, the prediction).
        Re-seeds the torch RNG with `seed` first, so identical calls give identical audio.
        """
        if c.dim() != 3 or c.shape[1] != self.ssl_dim:
            raise ModelError(f"Content features must have shape [1, {self.ssl_dim}, frames] for this model "
                             f"(ssl_dim {self.ssl_dim}); got {list(c.shape)}. Check the speech encoder.")
        if c.device.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        torch.manual_seed(seed)
        g = self.speaker_condition(g)
        if g.shape[-1] not in (1, c.shape[-1]):
            raise ModelError(f"The speaker-mix matrix has {g.shape[-1]} rows but the content has {c.shape[-1]} "
                             "frames; give one row of speaker weights per frame.")
        lengths = torch.full((c.size(0),), c.size(-1), device=c.device)
        x_mask = commons.sequence_mask(lengths, c.size(2)).unsqueeze(1).to(c.dtype)
        x = self.embed_inputs(c, uv, x_mask, vol)
        if predict_f0:
            if self.use_automatic_f0_prediction:
                f0 = self.predict_f0(x, f0, uv, x_mask, g)
            else:
                log.warning("predict_f0 ignored: this model was trained without automatic f0 prediction "
                            "(use_automatic_f0_prediction is false).")
        z_p, _, _ = self.enc_p(x, x_mask, commons.f0_to_coarse(f0), noise_scale=noise_scale)
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        audio = self.dec(z * x_mask, f0, g=g, chunk_frames=chunk_frames, span=span, dtype=vocoder_dtype)
        return audio, f0
