"""The second stage of a conversion, after the so-vits synthesizer: shallow diffusion, only-diffusion (no so-vits
model) and the NSF-HiFiGAN enhancer. `Svc` inherits it; the work itself is svc_core.diffusion.stage's.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np
import torch

from . import audio as audio_io
from . import cancel
from .constants import ENCODER_SAMPLE_RATE
from .errors import OptionError
from .features import frame_volume, stretch_units
from .options import ConvertOptions
from .timing import StageTimes
from .models.voice_model import VoiceModel


def default_noise(opts: ConvertOptions):
    """The random draws of a piece's diffusion and mel vocoder: a torch generator seeded with opts.seed."""
    from .noise import TorchNoise

    return TorchNoise.seeded(opts.seed)


class DiffusionOnlyModel(VoiceModel):
    """What `Svc` reads from its model when a diffusion model works alone: the config built from config.yaml."""

    emb_vol = None

    def __init__(self, config) -> None:
        self.config = config


class SecondStage:
    """Mixin of `Svc` (it reads self.diffusion, self.encoder, self.config, ...)."""

    _predicted_f0: Optional[torch.Tensor] = None  # the f0 of the last synthesis with auto_predict_f0

    def _second_stage(self, out: Optional[np.ndarray], wav44: np.ndarray, c: torch.Tensor, f0: torch.Tensor,
                      vol: Optional[torch.Tensor], speaker: object, opts: ConvertOptions, times: StageTimes,
                      span: Optional[tuple[int, int]]) -> np.ndarray:
        """Shallow diffusion, only-diffusion or the enhancer on one piece: out (so-vits audio [T * hop], None for
        only-diffusion), wav44 the padded input at the model rate, c [S, T] units, f0 [1, T] Hz -> the audio of
        span's frames (all when None)."""
        noise = self.noise_factory(opts)
        n_frames = f0.shape[1]
        if not opts.diffusing:
            cancel.checkpoint("mel vocoder", 0.0)
            return self.enhancer().enhance_piece(out, f0, self.hop_length, opts.enhancer_adaptive_key, noise, span,
                                                 times, sr=self.sample_rate, chunk_frames=self._mel_chunk(opts),
                                                 dtype=self._mel_vocoder_dtype(opts))
        if opts.second_encoding and out is not None:
            with times.stage("encoder"), torch.inference_mode():
                wav16 = audio_io.resample(out, self.sample_rate, ENCODER_SAMPLE_RATE)
                units = self.encoder.encode(torch.from_numpy(wav16).to(self.device), opts.encoder_precision)[0]
                c = stretch_units(units.float().cpu(), n_frames, self.diffusion.config.unit_interpolate_mode)
        if vol is None:  # RMS of what is rendered: the input for only-diffusion, else the so-vits output
            vol = frame_volume(torch.from_numpy(wav44 if out is None else out))[None, :n_frames]
        cancel.checkpoint("diffusion", 0.0)
        with cancel.cancel_hooks(self.diffusion.model, "diffusion", *self._denoiser_steps(opts, out is None)), \
                cancel.cancel_hooks(self.diffusion.vocoder):
            return self.diffusion.render(c[None], f0, vol, self._diffusion_speaker(speaker), opts, noise, times,
                                         source=out, span=span, chunk_frames=self._mel_chunk(opts))

    def _mel_chunk(self, opts: ConvertOptions) -> int:
        """Mel-vocoder frames per chunk: opts.decoder_chunk_frames, else the vocoder's measured best (256)."""
        if opts.decoder_chunk_frames is not None:
            return int(opts.decoder_chunk_frames)
        from .vocoders.nsf_hifigan import NsfHifiGAN

        return NsfHifiGAN.DEFAULT_CHUNK_FRAMES

    def _denoiser_steps(self, opts: ConvertOptions, from_noise: bool) -> tuple[object, int]:
        """(a submodule the denoiser runs once per call: its WaveNet's input projection, the expected calls) for
        cancel.cancel_hooks' "diffusion" progress; (None, 0) when the model has no such part."""
        first = getattr(getattr(getattr(self.diffusion.model, "decoder", None), "denoise_fn", None),
                        "input_projection", None)
        method, speedup = self.diffusion.settings(opts)
        k_step = self.diffusion.config.max_k_step if from_noise else int(opts.k_step)
        calls = k_step if method == "ddpm" or speedup <= 1 else max(1, k_step // speedup)
        return (first, calls) if first is not None else (None, 0)

    def _mel_vocoder_dtype(self, opts: ConvertOptions) -> Optional[torch.dtype]:
        """The enhancer's decoder precision: opts.vocoder_precision's bf16 / fp16 (int8, the ONNX backend's so-vits
        vocoder, leaves it float32)."""
        from .precision import PRECISIONS, check_precision

        return check_precision(opts.vocoder_precision, self.device) if opts.vocoder_precision in PRECISIONS else None

    def _diffusion_speaker(self, speaker):
        """Speaker -> the diffusion model's speaker: an id, or a mix {id: weight} (weights summing to 1)."""
        if isinstance(speaker, Mapping):
            total = sum(float(w) for w in speaker.values())
            return {self.config.speaker_id(name): float(w) / total for name, w in speaker.items() if float(w) > 0}
        return self.config.speaker_id(speaker)

    def check_second_stage(self, opts: ConvertOptions) -> None:
        """Refuse diffusion options this voice cannot run (before any work)."""
        if self.only_diffusion and not opts.only_diffusion:
            raise OptionError("This voice is a diffusion model alone (no so-vits model): convert with "
                              "only_diffusion (-od).")
        if opts.diffusing:
            if self.diffusion is None:
                raise OptionError("Shallow diffusion / only-diffusion need a diffusion model: load the voice with "
                                  "its diffusion/model_*.pt and config.yaml (-dm/-dc).")
            self.diffusion.check(opts)
        elif opts.enhance:
            self.enhancer()

    def enhancer(self):
        """The NSF-HiFiGAN enhancer (loaded on first use: the diffusion model's vocoder, else pretrain/nsf_hifigan)."""
        if self._enhancer is None:
            from .diffusion.stage import load_mel_vocoder_for
            from .vocoders.enhancer import Enhancer

            vocoder = self.diffusion.vocoder if self.diffusion is not None else \
                load_mel_vocoder_for(given=self.vocoder_path, device=str(self.device))
            self._enhancer = Enhancer(vocoder)
        return self._enhancer
