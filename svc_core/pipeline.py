"""`Svc`: the so-vits-svc conversion pipeline (slice -> f0 -> content -> retrieval -> synthesizer -> stitch).

Per piece, the same steps as upstream 4.1 `Svc.infer`: pad with silence, quantise through 16-bit PCM, resample to
44.1 kHz, predict f0 (interpolated, with uv) and transpose it, resample to 16 kHz for the content encoder, stretch
units onto the f0 grid, mix in cluster centres or retrieved features, measure loudness for volume models, run the
synthesizer, drop the padding, optionally blend loudness envelopes.
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Mapping, Optional, Union

import numpy as np
import torch

from . import audio as audio_io
from .assemble import OutputBuffer, plan_pieces
from .checkpoint import load_synthesizer
from .constants import ENCODER_SAMPLE_RATE
from .encoders import ContentEncoder, check_compatible, get_encoder
from .errors import OptionError, SpeakerError
from .f0 import get_predictor
from .features import frame_volume, mix_loudness_envelope, stretch_units
from .options import ConvertOptions
from .resample import sinc_resample
from .slicer import slice_audio
from .timing import StageTimes

log = logging.getLogger("svc_core")

Speaker = Union[str, int, Mapping[str, float]]
ProgressFn = Callable[[float, str], None]


class Svc:
    """A loaded voice: synthesizer + config, its content encoder, optional cluster/index file.

    `slice_inference(audio, sr, speaker, transpose, f0_predictor, **options)` converts a whole clip and returns
    float32 audio at the model rate; `last_times` holds the per-stage timings of the last call. `f0_weights`
    maps predictor names to weights files (default: ./pretrain or $SVC_PRETRAIN_DIR).
    """

    def __init__(self, model_path: str | os.PathLike, config_path: str | os.PathLike,
                 encoder_path: Optional[str] = None, cluster_path: Optional[str] = None, device: str = "cpu",
                 encoder: Union[str, "ContentEncoder", None] = None,
                 f0_weights: Optional[Mapping[str, str]] = None) -> None:
        self.device = torch.device(device)
        self.model_path, self.config_path = os.fspath(model_path), os.fspath(config_path)
        self.load_times = StageTimes()
        with self.load_times.stage("load model"):
            self.model = load_synthesizer(os.fspath(model_path), os.fspath(config_path), device=device)
        self.config = self.model.config
        self.sample_rate = int(self.config.sampling_rate)
        self.hop_length = int(self.config.hop_length)
        if isinstance(encoder, ContentEncoder):
            self.encoder = encoder
        else:
            with self.load_times.stage("load encoder"):
                self.encoder = get_encoder(encoder or self.config.speech_encoder, path=encoder_path, device=device)
        check_compatible(self.encoder, self.config.model.ssl_dim, self.config.speech_encoder)
        self.retriever = None
        if cluster_path:
            from .retrieval import load_retrieval

            with self.load_times.stage("load cluster"):
                self.retriever = load_retrieval(cluster_path)
            self.retriever.check_dim(int(self.config.model.ssl_dim), self.config.speech_encoder)
        self.f0_weights = dict(f0_weights or {})  # predictor name -> weights file (e.g. {"rmvpe": "rmvpe.pt"})
        self._predictors: dict[tuple[str, float], object] = {}
        self.last_times = StageTimes()

    # ----------------------------------------------------------------- speakers
    @property
    def speakers(self) -> list[str]:
        return list(self.config.spk)

    def _speaker_condition(self, speaker: Speaker, n_frames: int) -> tuple[torch.Tensor, str, int]:
        """Speaker -> (g for infer: LongTensor [1, 1] or mix matrix [T, n_spk], name, id)."""
        if isinstance(speaker, Mapping):
            n_spk = self.model.emb_g.weight.shape[0]
            weights = torch.zeros(n_spk)
            for name, w in speaker.items():
                weights[self.config.speaker_id(name)] = float(w)
            if weights.sum() <= 0:
                raise SpeakerError("A speaker mix needs at least one positive weight.")
            weights /= weights.sum()
            top = int(weights.argmax())
            name = next((n for n, i in self.config.spk.items() if i == top), str(top))
            return weights[None].expand(n_frames, n_spk).contiguous().to(self.device), name, top
        sid = self.config.speaker_id(speaker)
        name = next((n for n, i in self.config.spk.items() if i == sid), str(sid))
        return torch.LongTensor([[sid]]).to(self.device), name, sid

    def _predictor(self, name: str, threshold: float):
        key = (name, threshold)
        if key not in self._predictors:
            self._predictors[key] = get_predictor(name, hop_length=self.hop_length, sampling_rate=self.sample_rate,
                                                  device=str(self.device), threshold=threshold,
                                                  weights_path=self.f0_weights.get(name))
        return self._predictors[key]

    # ----------------------------------------------------------------- one piece
    def infer_piece(self, wav: np.ndarray, sr: int, speaker: Speaker, opts: ConvertOptions,
                    times: StageTimes) -> np.ndarray:
        """Convert one padded piece (float32 [N] at `sr`) -> float32 [T * hop] at the model rate."""
        with times.stage("resample"):
            wav = audio_io.pcm16_round_trip(wav, sr)
            wav44 = audio_io.resample(wav, sr, self.sample_rate) if sr != self.sample_rate else wav
        with times.stage("f0"):
            f0, uv = self._predictor(opts.f0_predictor, opts.f0_threshold).compute_f0_uv(wav44)
            f0 = torch.from_numpy(np.asarray(f0, dtype=np.float32))[None] * 2 ** (opts.transpose / 12)
            uv = torch.from_numpy(np.asarray(uv, dtype=np.float32))[None]
        n_frames = f0.shape[1]
        with times.stage("encoder"):
            wav_t = torch.from_numpy(wav44).to(self.device)
            wav16 = sinc_resample(wav_t, self.sample_rate, ENCODER_SAMPLE_RATE)
            units = self.encoder.encode(wav16)[0]
            c = stretch_units(units.float().cpu(), n_frames, self.config.unit_interpolate_mode)
        g, spk_name, spk_id = self._speaker_condition(speaker, n_frames)
        if opts.cluster_ratio > 0:
            if self.retriever is None:
                raise OptionError("cluster_ratio is above 0 but no cluster or index file is loaded.")
            with times.stage("retrieval"):
                mixed = self.retriever.mix(c.T.numpy().astype(np.float32), spk_name, spk_id, opts.cluster_ratio)
                c = torch.from_numpy(np.ascontiguousarray(mixed.T, dtype=np.float32))
        vol = None
        if getattr(self.model, "emb_vol", None) is not None:
            vol = frame_volume(torch.from_numpy(wav44))[None, :n_frames].to(self.device)
        with times.stage("synthesizer"), torch.inference_mode():
            out, _ = self.model.infer(c[None].to(self.device), f0.to(self.device), uv.to(self.device), g,
                                      noise_scale=opts.noise_scale, predict_f0=opts.auto_predict_f0, vol=vol,
                                      seed=opts.seed)
            out = out[0, 0].float().cpu().numpy()
        if opts.loudness_mix < 1:
            with times.stage("loudness"):
                out = mix_loudness_envelope(wav44[: len(out)], out, self.sample_rate, opts.loudness_mix)
        return out

    # ----------------------------------------------------------------- whole clip
    def slice_inference(self, audio: np.ndarray, sr: int, speaker: Speaker, transpose: float = 0,
                        f0_predictor: str = "rmvpe", progress: Optional[ProgressFn] = None,
                        **options) -> np.ndarray:
        """Convert a clip (float [N] or [N, C] at `sr` Hz) -> float32 [M] at the model rate (44.1 kHz).

        Options: see `ConvertOptions` (upstream names such as noice_scale, lg_num, cluster_infer_ratio work too).
        """
        opts = ConvertOptions.from_kwargs(transpose=transpose, f0_predictor=f0_predictor, **options)
        wav = audio_io.to_mono_float(audio)
        audio_io.check_audio(wav, int(sr))
        self.config.speaker_id(next(iter(speaker)) if isinstance(speaker, Mapping) else speaker)
        times = StageTimes(audio_seconds=len(wav) / sr)
        self.last_times = times
        with times.stage("slice"):
            chunks = slice_audio(wav, sr, db_thresh=opts.slice_db)
            pieces = plan_pieces(chunks, sr, self.sample_rate, opts.clip_seconds, opts.crossfade_seconds,
                                 opts.max_slice_seconds, opts.max_slice_crossfade)
            buffer = OutputBuffer(pieces, opts.crossfade_ratio)
        pad_in = int(sr * opts.pad_seconds)
        pad_out = int(self.sample_rate * opts.pad_seconds)
        done_samples, total_samples = 0, max(1, sum(p.end - p.start for p in pieces))
        for index, piece in enumerate(pieces):
            if piece.silent:
                buffer.append(piece, np.zeros(piece.out_length, dtype=np.float32))
            else:
                segment = np.pad(wav[piece.start:piece.end], (pad_in, pad_in))
                out = self.infer_piece(segment, sr, speaker, opts, times)
                buffer.append(piece, out[pad_out: len(out) - pad_out] if pad_out else out)
            done_samples += piece.end - piece.start
            if progress is not None:
                progress(done_samples / total_samples,
                         f"piece {index + 1}/{len(pieces)} ({'silence' if piece.silent else 'voiced'}, "
                         f"{(piece.end - piece.start) / sr:.2f} s)")
        log.info("converted %.2f s of audio in %.2f s (RTF %.3f)", times.audio_seconds, times.total, times.rtf)
        return buffer.audio
