"""The diffusion stage of a conversion: a so-vits-svc 4.1 diffusion model plus its NSF-HiFiGAN mel vocoder.

`Svc.infer_piece` hands it the piece's units, f0 and volume (and, for shallow diffusion, the so-vits output); it
returns the audio of the frames the piece keeps. Shallow diffusion: so-vits audio -> log-mel -> noised to step
k_step - 1 -> denoised by the chosen sampler -> vocoded. Only-diffusion: the mel is rendered from noise, no so-vits
model. The enhancer (no diffusion model) re-vocodes the so-vits output with the same vocoder.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np
import torch

from .. import cancel
from ..config import SvcConfig, config_from_dict, template_config
from ..errors import MissingWeightsError, ModelError, OptionError
from ..f0.weights import describe_search, find_weights
from ..options import ConvertOptions
from ..precision import PRECISIONS, check_precision
from ..timing import StageTimes
from ..noise import NoiseSource

VOCODER_FILE = "nsf_hifigan/model"  # openvpi's nsf_hifigan_20221211 `model` (+ config.json) under ./pretrain
MEL_VOCODER_STAGE = "mel vocoder"  # timing-table name of the NSF-HiFiGAN mel vocoder (the so-vits one is "vocoder")
DIFFUSION_STAGE = "diffusion"

SpeakerIds = Union[int, Mapping[int, float], None]  # a speaker id, a mix {id: weight}, or None (one speaker)


def find_vocoder(config_path: str | os.PathLike | None, ckpt: str | None, given: str | None) -> Path:
    """The mel vocoder's `model` file: `given`; else the diffusion config's vocoder.ckpt (as written, or relative
    to the config's folder and its parents, where upstream's logs/44k/diffusion/ layout puts pretrain/); else
    pretrain/nsf_hifigan/model. MissingWeightsError listing where we looked."""
    if given:
        path = Path(given)
        return path / "model" if path.is_dir() else path
    tried: list[Path] = []
    if ckpt:
        tried.append(Path(ckpt))
        if config_path is not None and not Path(ckpt).is_absolute():
            tried += [parent / ckpt for parent in list(Path(config_path).resolve().parents)[:4]]
    found = next((p for p in tried if p.is_file()), None) or find_weights(VOCODER_FILE)
    if found is None:
        where = ", ".join(f"'{p}'" for p in tried[:2]) + (", " if tried else "") + describe_search(VOCODER_FILE)
        raise MissingWeightsError(
            "The NSF-HiFiGAN mel vocoder (for shallow diffusion and the enhancer)", ckpt or VOCODER_FILE,
            f"Looked in {where}.",
            "Unzip openvpi's nsf_hifigan_20221211.zip into pretrain/ (pretrain/nsf_hifigan/model + config.json), "
            "or give its path (CLI --vocoder, Python vocoder_path=).")
    return found


def load_mel_vocoder_for(config_path=None, ckpt=None, kind: str = "nsf-hifigan", given: str | None = None,
                         device: str = "cpu"):
    """Load the mel vocoder found by `find_vocoder` (svc_core.vocoders)."""
    from ..vocoders import load_mel_vocoder

    return load_mel_vocoder(find_vocoder(config_path, ckpt, given), kind=kind, device=device)


def check_voice(cfg, config_path: str | os.PathLike, svc: SvcConfig, model_name: str) -> None:
    """Refuse a diffusion model (its DiffusionConfig `cfg`, read from config_path) that cannot follow the so-vits
    model `model_name` of config `svc`: naming both files and the field. No weights are needed."""
    name = os.path.basename(os.fspath(config_path))
    problems = []
    if cfg.sampling_rate != int(svc.sampling_rate) or cfg.block_size != int(svc.hop_length):
        problems.append(f"{name} data.sampling_rate/block_size are {cfg.sampling_rate}/{cfg.block_size}, "
                        f"{model_name} runs at {svc.sampling_rate} Hz with hop {svc.hop_length}")
    if cfg.encoder_out_channels != int(svc.model.ssl_dim):
        problems.append(f"{name} data.encoder_out_channels is {cfg.encoder_out_channels} ({cfg.encoder}) but "
                        f"{model_name} takes {svc.model.ssl_dim}-dim units ({svc.speech_encoder})")
    n_spk = max(1, cfg.n_spk)
    if n_spk > 1 and n_spk < svc.n_speakers:
        problems.append(f"{name} model.n_spk is {cfg.n_spk} but {model_name} has {svc.n_speakers} speakers")
    if problems:
        raise ModelError("The diffusion model does not belong to this voice: " + "; ".join(problems) + ". Use the "
                         "diffusion model trained on the same dataset (logs/44k/diffusion/).")


class DiffusionStage:
    """A loaded diffusion model (`model`, its `config`: DiffusionConfig) and mel vocoder (`vocoder`)."""

    def __init__(self, model_path: str | os.PathLike, config_path: str | os.PathLike,
                 vocoder_path: Optional[str] = None, device: str = "cpu", vocoder=None) -> None:
        from .loader import load_diffusion

        self.model_path, self.config_path = os.fspath(model_path), os.fspath(config_path)
        self.device = torch.device(device)
        self.model = load_diffusion(self.model_path, self.config_path, device=device)
        self.config = self.model.config
        if vocoder is None:
            self.vocoder_path = str(find_vocoder(self.config_path, self.config.vocoder_ckpt, vocoder_path))
            vocoder = load_mel_vocoder_for(given=self.vocoder_path, kind=self.config.vocoder_type, device=device)
        else:
            self.vocoder_path = "(given)"
        self.vocoder = vocoder
        self._check_vocoder()

    def _check_vocoder(self) -> None:
        cfg, voc = self.config, self.vocoder
        name = os.path.basename(self.config_path)
        if int(voc.sample_rate) != cfg.sampling_rate or int(voc.hop_size) != cfg.block_size:
            raise ModelError(f"{name} data.sampling_rate/block_size are {cfg.sampling_rate}/{cfg.block_size} but the "
                             f"mel vocoder runs at {voc.sample_rate} Hz with hop {voc.hop_size}; use the vocoder the "
                             "diffusion model was trained with.")
        out_dims = int(getattr(self.model, "out_dims", voc.n_mels))
        if int(voc.n_mels) != out_dims:
            raise ModelError(f"The diffusion model makes {out_dims} mel bins but the vocoder takes {voc.n_mels}.")

    # ------------------------------------------------------------------ voices
    def svc_config(self) -> SvcConfig:
        """The front-end settings of an only-diffusion voice (no so-vits model): rate, hop, speakers, encoder."""
        cfg = self.config
        speakers = dict(sorted(cfg.speakers.items(), key=lambda kv: kv[1])) or {"speaker0": 0}  # yaml: sorted keys
        doc = template_config(cfg.encoder, speakers=speakers)
        doc["data"].update(sampling_rate=cfg.sampling_rate, hop_length=cfg.block_size,
                           unit_interpolate_mode=cfg.unit_interpolate_mode)
        return config_from_dict(doc, source=os.path.basename(self.config_path))

    def check_voice(self, svc: SvcConfig, model_name: str) -> None:
        """Refuse a diffusion model that cannot follow this so-vits model (see `check_voice`)."""
        check_voice(self.config, self.config_path, svc, model_name)

    def settings(self, opts: ConvertOptions) -> tuple[str, int]:
        """(sampler, speedup) for `opts` (None: the diffusion config's infer section)."""
        method = opts.diffusion_method or self.config.infer_method
        speedup = int(opts.diffusion_speedup or self.config.infer_speedup)
        if method == "ddpm":
            speedup = 1
        return method, speedup

    def dtypes(self, opts: ConvertOptions) -> tuple[Optional[torch.dtype], Optional[torch.dtype]]:
        """(denoiser, mel vocoder) autocast dtypes for opts.diffusion_precision / opts.vocoder_precision (None:
        float32); OptionError where the device would not run them fast. vocoder_precision int8 (the ONNX backend's
        so-vits vocoder) leaves the mel vocoder in float32."""
        denoiser = check_precision(opts.diffusion_precision, self.device, "diffusion_precision")
        vocoder = check_precision(opts.vocoder_precision, self.device) if opts.vocoder_precision in PRECISIONS \
            else None
        return denoiser, vocoder

    def check(self, opts: ConvertOptions) -> None:
        """Refuse what upstream's guards refuse, before any work: with clear messages."""
        self.dtypes(opts)
        cfg, name = self.config, os.path.basename(self.config_path)
        if opts.only_diffusion and not cfg.full_chain:
            raise OptionError(f"Only-diffusion needs a diffusion model trained on the whole chain; {name} has "
                              f"model.k_step_max {cfg.k_step_max} of {cfg.timesteps} steps (a shallow-only model). "
                              "Use shallow diffusion, or a model trained with k_step_max 0.")
        if opts.shallow_diffusion and not opts.only_diffusion and opts.k_step > cfg.max_k_step:
            raise OptionError(f"k_step {opts.k_step} is above what this diffusion model was trained for "
                              f"({name} model.k_step_max {cfg.max_k_step}); use {cfg.max_k_step} or less.")

    # ------------------------------------------------------------------ rendering
    def extract_mel(self, audio: np.ndarray) -> torch.Tensor:
        """float32 [N] at the model rate -> log-mel [1, N // hop, M]."""
        wav = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32))[None].to(self.device)
        return self.vocoder.extract(wav)

    def mel(self, units: torch.Tensor, f0: torch.Tensor, vol: torch.Tensor, speaker: SpeakerIds,
            opts: ConvertOptions, noise: NoiseSource, gt_mel: Optional[torch.Tensor] = None) -> torch.Tensor:
        """units [1, C, T], f0 [1, T] Hz, vol [1, T], gt_mel [1, T, M] (shallow) or None (from noise)
        -> mel [1, T, M] float32 (the denoiser in opts.diffusion_precision)."""
        method, speedup = self.settings(opts)
        spk_id, spk_mix = None, None
        if isinstance(speaker, Mapping):
            spk_mix = {int(k): float(w) for k, w in speaker.items()}
        elif speaker is not None and self.config.n_spk > 1:
            spk_id = torch.LongTensor([[int(speaker)]]).to(self.device)
        k_step = self.config.max_k_step if gt_mel is None else int(opts.k_step)
        with torch.inference_mode():
            return self.model(units.transpose(1, 2).to(self.device), f0[:, :, None].to(self.device),
                              vol[:, :, None].to(self.device), spk_id=spk_id, spk_mix=spk_mix, gt_spec=gt_mel,
                              k_step=k_step, method=method, speedup=speedup, noise=noise,
                              dtype=self.dtypes(opts)[0])

    def vocode(self, mel: torch.Tensor, f0: torch.Tensor, noise: NoiseSource, chunk_frames: int,
               span: Optional[tuple[int, int]], dtype: Optional[torch.dtype] = None) -> np.ndarray:
        """mel [1, T, M], f0 [1, T] -> float32 audio of the frames in span (all when None); dtype: the decoder's
        reduced precision (None: float32)."""
        with torch.inference_mode():
            audio = self.vocoder.decode(mel, f0.to(self.device), noise=noise, chunk_frames=chunk_frames, span=span,
                                        dtype=dtype)
        return audio[0].float().cpu().numpy()

    def render(self, units: torch.Tensor, f0: torch.Tensor, vol: torch.Tensor, speaker: SpeakerIds,
               opts: ConvertOptions, noise: NoiseSource, times: StageTimes, source: Optional[np.ndarray],
               span: Optional[tuple[int, int]], chunk_frames: int) -> np.ndarray:
        """The whole stage: source (so-vits audio [T * hop]) or None for only-diffusion -> audio of span."""
        with times.stage(DIFFUSION_STAGE):
            gt_mel = None if source is None else self.extract_mel(source)
            mel = self.mel(units, f0, vol, speaker, opts, noise, gt_mel)
        cancel.checkpoint(MEL_VOCODER_STAGE, 0.0)  # the web demo's progress bar moves on to the vocoder
        with times.stage(MEL_VOCODER_STAGE):
            return self.vocode(mel, f0, noise, chunk_frames, span, self.dtypes(opts)[1])
