"""`Svc`: the so-vits-svc conversion pipeline (slice -> f0 -> content -> retrieval -> synthesizer -> stitch).

Per piece, the same steps as upstream 4.1 `Svc.infer`: pad with silence, quantise through 16-bit PCM, resample to
44.1 kHz, predict f0 (interpolated, with uv) and transpose it, resample to 16 kHz for the content encoder, stretch
units onto the f0 grid, mix in cluster centres or retrieved features, measure loudness for volume models, run the
synthesizer, drop the padding, optionally blend loudness envelopes.
"""
from __future__ import annotations

import hashlib
import logging
import os
from typing import Callable, Mapping, Optional, Union

import numpy as np
import torch

from . import audio as audio_io
from . import cancel
from .assemble import OutputBuffer, plan_pieces
from . import families
from .constants import ENCODER_HOP_LENGTH, ENCODER_SAMPLE_RATE
from .encoders import ContentEncoder, check_compatible, get_encoder
from .errors import OptionError, SpeakerError
from .f0 import default_threshold, get_predictor
from .feature_cache import NO_CACHE, FeatureCache
from .piece import PieceFeatures
from .features import frame_volume, mix_loudness_envelope, stretch_units
from .memory import release_free_memory
from .options import ConvertOptions
from .precision import check_precision
from .resample import sinc_resample
from .second_stage import DiffusionOnlyModel, SecondStage, default_noise
from .slicer import slice_audio
from .timing import StageTimes, timed_calls

log = logging.getLogger("svc_core")

Speaker = Union[str, int, Mapping[str, float], None]  # None: a single-speaker model's only speaker
ProgressFn = Callable[[float, str], None]


class Svc(SecondStage):
    """A loaded voice: synthesizer + config, its content encoder, optional cluster/index file.

    `slice_inference(audio, sr, speaker, transpose, f0_predictor, **options)` converts a whole clip and returns
    float32 audio at the model rate; `last_times` holds the per-stage timings of the last call. `f0_weights`
    maps predictor names to weights files (default: ./pretrain or $SVC_PRETRAIN_DIR).
    """

    DECODER_CHUNK_FRAMES = 256  # vocoder frames per chunk by default: fastest for torch on 2 threads (bench/README)

    def __init__(self, model_path: str | os.PathLike | None, config_path: str | os.PathLike | None,
                 encoder_path: Optional[str] = None, cluster_path: Optional[str] = None, device: str = "cpu",
                 encoder: Union[str, "ContentEncoder", None] = None,
                 f0_weights: Optional[Mapping[str, str]] = None,
                 diffusion_model_path: str | os.PathLike | None = None,
                 diffusion_config_path: str | os.PathLike | None = None,
                 vocoder_path: str | os.PathLike | None = None) -> None:
        self.device = torch.device(device)
        self.load_times = StageTimes()
        self.diffusion = None  # svc_core.diffusion.DiffusionStage: shallow / only diffusion (needs a model file)
        self.vocoder_path = None if vocoder_path is None else os.fspath(vocoder_path)
        self._enhancer = None  # loaded on first use (opts.enhance)
        self.noise_factory: Callable[[ConvertOptions], object] = default_noise  # diffusion + mel vocoder draws
        if diffusion_model_path is not None:
            from .diffusion.stage import DiffusionStage

            if diffusion_config_path is None:
                raise OptionError("A diffusion model needs its config.yaml (diffusion_config_path / -dc).")
            with self.load_times.stage("load diffusion"):
                self.diffusion = DiffusionStage(diffusion_model_path, diffusion_config_path, self.vocoder_path,
                                                device=device)
        self.only_diffusion = model_path is None  # no so-vits model: everything from the diffusion model
        if self.only_diffusion:
            if self.diffusion is None:
                raise OptionError("Give a so-vits model (G_*.pth + config.json), or a diffusion model for "
                                  "only-diffusion.")
            self.model_path, self.config_path = self.diffusion.model_path, self.diffusion.config_path
            self.model = DiffusionOnlyModel(self.diffusion.svc_config())
        else:
            self.model_path = os.fspath(model_path)
            self.config_path = None if config_path is None else os.fspath(config_path)  # RVC files carry theirs
            with self.load_times.stage("load model"):
                self.model = self._load_model(self.model_path, self.config_path, device)
            if self.diffusion is not None:
                self.diffusion.check_voice(self.model.config, os.path.basename(self.model_path))
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
        self.cache = FeatureCache()  # f0/uv and units per piece: transpose/ratio changes reuse them
        release_free_memory()  # loading leaves freed heap blocks (state dicts, weight-norm folding) behind

    def _load_model(self, model_path: str, config_path: Optional[str], device: str) -> torch.nn.Module:
        """The synthesizer (with `.config` and `.family`) as the family table loads it; other backends return
        their own model object here."""
        return families.load_model(model_path, config_path, device=device)

    @property
    def family(self) -> "families.Family":
        """The voice's model family (svc_core.families): which options apply and their defaults."""
        return families.family(getattr(self.model, "family", "so-vits"))

    def option_defaults(self) -> dict:
        """Option defaults of this voice's family (RVC: rms_mix_rate 0.25, index_rate 0.75 with an index)."""
        return families.option_defaults(self.family, self.retriever is not None)

    def output_rate(self, opts: ConvertOptions) -> int:
        """Sample rate of the converted audio for `opts`: the model's, or opts.resample_sr (RVC voices)."""
        return int(opts.resample_sr) if self.family.is_rvc and opts.resample_sr else self.sample_rate

    # ----------------------------------------------------------------- speakers
    @property
    def speakers(self) -> list[str]:
        return list(self.config.spk)

    def _speaker_condition(self, speaker: Speaker, n_frames: int) -> tuple[torch.Tensor, str, int]:
        """Speaker -> (g for infer: LongTensor [1, 1] or mix matrix [T, n_spk], name, id)."""
        if isinstance(speaker, Mapping):
            n_spk = self.config.n_speakers
            weights = torch.zeros(n_spk)
            for name, w in speaker.items():
                weights[self.config.speaker_id(name)] = float(w)
            if weights.sum() <= 0:
                raise SpeakerError("A speaker mix needs at least one positive weight.")
            weights /= weights.sum()
            top = int(weights.argmax())
            mix = weights[None].expand(n_frames, n_spk).contiguous().to(self.device)
            return mix, self.config.speaker_name(top), top
        sid = self.config.speaker_id(speaker)
        return torch.LongTensor([[sid]]).to(self.device), self.config.speaker_name(sid), sid

    def _predictor(self, name: str, threshold: float):
        key = (name, threshold)
        if key not in self._predictors:
            self._predictors[key] = get_predictor(name, hop_length=self.hop_length, sampling_rate=self.sample_rate,
                                                  device=str(self.device), threshold=threshold,
                                                  weights_path=self.f0_weights.get(name))
        return self._predictors[key]

    # ----------------------------------------------------------------- one piece
    def infer_piece(self, wav: np.ndarray, sr: int, speaker: Speaker, opts: ConvertOptions,
                    times: StageTimes, trim: int | tuple[int, int] = 0, use_cache: bool = True) -> np.ndarray:
        """Convert one padded piece (float32 [N] at `sr`) -> float32 [T * hop - left - right] at the model rate:
        the output without `trim` samples at each end (the slice padding; a (left, right) pair trims the ends
        apart). The vocoder does not decode the frames that lie wholly inside the trimmed ends (except with
        loudness_mix < 1, whose envelope needs them). use_cache=False neither reads nor fills the feature cache."""
        features = self.piece_features(wav, sr, speaker, opts, times, use_cache)
        return self.synthesize_piece(features, speaker, opts, times, trim)

    def piece_features(self, wav: np.ndarray, sr: int, speaker: Speaker, opts: ConvertOptions, times: StageTimes,
                       use_cache: bool = True) -> PieceFeatures:
        """The synthesizer's inputs for one piece (float32 [N] at `sr`): f0/uv (transposed), content units
        stretched onto the f0 grid with the cluster/index mix applied (it depends on the speaker)."""
        cache = self.cache if use_cache else NO_CACHE
        key = (hashlib.blake2b(np.ascontiguousarray(wav).view(np.uint8), digest_size=16).hexdigest(), int(sr)) \
            if use_cache else ()
        with times.stage("resample"):  # not cached: cheap (~0.5 ms per second of audio), and large to keep
            wav = audio_io.pcm16_round_trip(wav, sr)
            wav44 = audio_io.resample(wav, sr, self.sample_rate) if sr != self.sample_rate else wav
        threshold = default_threshold(opts.f0_predictor) if opts.f0_threshold is None else opts.f0_threshold
        f0_key = key + ("f0", opts.f0_predictor, threshold)
        f0_uv = cache.get(f0_key)
        if f0_uv is None:
            cancel.checkpoint("f0", 0.0)
            predictor = self._predictor(opts.f0_predictor, threshold)
            with times.stage("f0"), cancel.cancel_hooks(predictor):
                f0_uv = predictor.compute_f0_uv(wav44)
                f0_uv = tuple(np.asarray(a, dtype=np.float32) for a in f0_uv)
            cache.put(f0_key, f0_uv)
        f0 = torch.from_numpy(f0_uv[0])[None] * 2 ** (opts.transpose / 12)
        uv = torch.from_numpy(f0_uv[1])[None]
        n_frames = f0.shape[1]
        c_key = key + ("units", self.encoder.name, id(self.encoder), opts.encoder_precision)
        units = cache.get(c_key)  # at the encoder's own frame rate (50/s): smaller than the stretched units
        if units is None:
            cancel.checkpoint("encoder", 0.0)
            with times.stage("encoder"), cancel.cancel_hooks(self.encoder):
                wav_t = torch.from_numpy(wav44).to(self.device)
                wav16 = sinc_resample(wav_t, self.sample_rate, ENCODER_SAMPLE_RATE)
                units = self.encoder.encode(wav16, opts.encoder_precision)[0].float().cpu()
            cache.put(c_key, units)
        c = stretch_units(units, n_frames, self.config.unit_interpolate_mode)
        if opts.cluster_ratio > 0:
            if self.retriever is None:
                raise OptionError("cluster_ratio is above 0 but no cluster or index file is loaded.")
            _, spk_name, spk_id = self._speaker_condition(speaker, 1)
            with times.stage("retrieval"):
                mixed = self.retriever.mix(c.T.numpy().astype(np.float32), spk_name, spk_id, opts.cluster_ratio)
                c = torch.from_numpy(np.ascontiguousarray(mixed.T, dtype=np.float32))
        return PieceFeatures(wav=wav44, f0=f0, uv=uv, c=c)

    def synthesize_piece(self, features: PieceFeatures, speaker: Speaker, opts: ConvertOptions, times: StageTimes,
                         trim: int | tuple[int, int] = 0) -> np.ndarray:
        """`piece_features`' result -> float32 [T * hop - left - right] at the model rate (see infer_piece)."""
        left, right = (trim, trim) if isinstance(trim, int) else (int(trim[0]), int(trim[1]))
        wav44, f0, uv, c = features.wav, features.f0, features.uv, features.c
        n_frames = f0.shape[1]
        g, _, _ = self._speaker_condition(speaker, n_frames)
        vol = None
        if getattr(self.model, "emb_vol", None) is not None:
            vol = frame_volume(torch.from_numpy(wav44))[None, :n_frames].to(self.device)
        # whole frames not decoded at each end
        skip_left, skip_right = (left // self.hop_length, right // self.hop_length) if opts.loudness_mix >= 1 \
            else (0, 0)
        span = (skip_left, n_frames - skip_right) if 0 < skip_left + skip_right < n_frames else None
        second = opts.diffusing or opts.enhance  # a second stage reads the whole so-vits output
        out = None
        if not opts.only_diffusion:
            cancel.checkpoint("synthesizer", 0.0)
            with times.stage("synthesizer"):
                out = self._synthesize(c[None], f0, uv, g, vol, opts, span=None if second else span, times=times)
        if second:
            f0_out = self._predicted_f0 if opts.auto_predict_f0 and self._predicted_f0 is not None else f0
            out = self._second_stage(out, wav44, c, f0_out, vol, speaker, opts, times, span)
        if opts.loudness_mix < 1:
            with times.stage("loudness"):
                out = mix_loudness_envelope(wav44[: len(out)], out, self.sample_rate, opts.loudness_mix)
        first = left - (span[0] * self.hop_length if span else 0)
        return out[first: first + n_frames * self.hop_length - left - right]

    def vocoder_dtype(self, opts: ConvertOptions) -> Optional[torch.dtype]:
        """opts.vocoder_precision -> autocast dtype (None: float32); OptionError where it would not run fast.
        A model with its own precisions answers itself (`vocoder_precision_dtype`: an RVC ONNX voice, whose
        "int8" is torch.int8, its int8 vocoder file)."""
        own = getattr(self.model, "vocoder_precision_dtype", None)
        if own is not None:
            return own(opts.vocoder_precision)
        return check_precision(opts.vocoder_precision, self.device)

    def chunk_frames(self, opts: ConvertOptions) -> int:
        """Vocoder chunk length in frames for `opts` (its decoder_chunk_frames, else this backend's default)."""
        return self.DECODER_CHUNK_FRAMES if opts.decoder_chunk_frames is None else opts.decoder_chunk_frames

    def _synthesize(self, c: torch.Tensor, f0: torch.Tensor, uv: torch.Tensor, g: torch.Tensor,
                    vol: Optional[torch.Tensor], opts: ConvertOptions,
                    span: Optional[tuple[int, int]] = None, times: Optional[StageTimes] = None) -> np.ndarray:
        """The model call, the only step other backends (svc_core.onnx.OnnxSvc) replace.

        c [1, S, T] (CPU), f0/uv [1, T] (CPU), g as `_speaker_condition` gives, vol [1, T] or None
        -> float32 [T * hop] audio, or with span (start, stop) the audio of those frames only [(stop-start) * hop]
        (the vocoder decodes nothing else). times: the vocoder's share is timed as its own stage, "vocoder".
        """
        vocoder = getattr(self.model, "dec", None)  # WORLD voices have none: all of it is "synthesizer"
        with torch.inference_mode(), timed_calls(vocoder, times, "vocoder", of="synthesizer"), \
                self._vocoder_watch(c.shape[-1], opts, span):
            out, f0_out = self.model.infer(c.to(self.device), f0.to(self.device), uv.to(self.device), g,
                                           noise_scale=opts.noise_scale, predict_f0=opts.auto_predict_f0, vol=vol,
                                           seed=opts.seed, chunk_frames=self.chunk_frames(opts), span=span,
                                           vocoder_dtype=self.vocoder_dtype(opts))
        self._predicted_f0 = f0_out.float().cpu() if opts.auto_predict_f0 else None
        return out[0, 0].float().cpu().numpy()

    def _vocoder_watch(self, frames: int, opts: ConvertOptions, span: Optional[tuple[int, int]]):
        """cancel.cancel_hooks on the whole synthesizer, counting the vocoder's chunks (its first convolution runs
        once per chunk) as "vocoder" progress: stopping within one layer, and a bar that moves per chunk."""
        vocoder = getattr(self.model, "dec", None)
        first = getattr(vocoder, "conv_pre", None)
        chunks = 0
        if first is not None and hasattr(vocoder, "context_frames"):
            from .models.nsf_hifigan import SHAPE_BUCKET, chunk_spans

            start, stop = span if span is not None else (0, frames)
            chunks = len(chunk_spans(frames, self.chunk_frames(opts), vocoder.context_frames(), start, stop,
                                     bucket=SHAPE_BUCKET))
        return cancel.cancel_hooks(self.model, "vocoder", first, chunks)

    # ----------------------------------------------------------------- whole clip
    def slice_inference(self, audio: np.ndarray, sr: int, speaker: Speaker, transpose: float = 0,
                        f0_predictor: str = "rmvpe", progress: Optional[ProgressFn] = None, cache: bool = True,
                        **options) -> np.ndarray:
        """Convert a clip (float [N] or [N, C] at `sr` Hz) -> float32 [M] at the model rate (44.1 kHz).

        Options: see `ConvertOptions` (upstream names such as noice_scale, lg_num, cluster_infer_ratio work too).
        cache=False adds nothing to the per-input feature cache (`self.cache`).
        For files, `convert_file` gives the same samples with memory that does not grow with the input's length.
        """
        opts = ConvertOptions.from_kwargs(self.option_defaults(), transpose=transpose,
                                          f0_predictor=f0_predictor, **options)
        wav = audio_io.to_mono_float(audio)
        audio_io.check_audio(wav, int(sr))
        if self.family.is_rvc:
            return self.convert_rvc(wav, sr, speaker, opts, progress, cache=cache)
        times = self.begin_conversion(speaker, len(wav), sr)
        with times.stage("slice"):
            chunks = slice_audio(wav, sr, db_thresh=opts.slice_db)
        return self.convert_chunks(wav, sr, chunks, speaker, opts, progress, cache=cache).audio

    def convert_rvc(self, wav: np.ndarray, sr: int, speaker: Speaker, opts: ConvertOptions,
                    progress: Optional[ProgressFn] = None, noise=None, cache: bool = True) -> np.ndarray:
        """An RVC voice's conversion (svc_core.rvc.recipe: RVC's own padding, split, f0, retrieval, protect and
        loudness steps) -> float32 [M] at `output_rate(opts)`. noise: see convert_rvc (None: seeded per segment);
        cache=False adds nothing to the feature cache."""
        from .rvc.recipe import convert_rvc

        families.check_options(self.family, opts, has_f0=bool(getattr(self.model, "has_f0", True)))
        if opts.cluster_ratio > 0 and self.retriever is None:
            raise OptionError("index_rate (cluster_ratio) is above 0 but no .index file is loaded.")
        self.vocoder_dtype(opts)  # refuse an unsupported precision before any work
        self.encoder.precision_dtype(opts.encoder_precision)
        self.begin_conversion(speaker, len(wav), sr)
        return convert_rvc(self, wav, sr, speaker, opts, progress, noise=noise, use_cache=cache)

    def convert_file(self, source, destination, speaker: Speaker, transpose: float = 0,
                     f0_predictor: str = "rmvpe", progress: Optional[ProgressFn] = None, cache: bool = True,
                     **options):
        """Convert the audio file `source` into `destination` (format from its extension), reading and writing
        block by block: see svc_core.stream.convert_file. cache=False stores no per-input features (for one-off
        conversions such as the CLI's). Returns a stream.ConvertedFile."""
        from .stream import convert_file

        return convert_file(self, source, destination, speaker, transpose, f0_predictor, progress, cache=cache,
                            **options)

    def _feature_bytes_per_second(self) -> float:
        """FeatureCache bytes per second of voiced input: float32 units at the encoder's rate + f0 and uv."""
        units = int(getattr(self.encoder, "dim", 0) or self.config.model.ssl_dim) * ENCODER_SAMPLE_RATE
        return 4.0 * (units / ENCODER_HOP_LENGTH + 2 * self.sample_rate / self.hop_length)

    def begin_conversion(self, speaker: Speaker, n_samples: int, sr: int) -> StageTimes:
        """Check the speaker and start `last_times` for a conversion of `n_samples` at `sr` Hz."""
        self.config.speaker_id(next(iter(speaker)) if isinstance(speaker, Mapping) else speaker)
        self.last_times = StageTimes(audio_seconds=n_samples / sr)
        return self.last_times

    def convert_chunks(self, samples, sr: int, chunks, speaker: Speaker, opts: ConvertOptions,
                       progress: Optional[ProgressFn] = None, sink=None, cache: bool = True) -> OutputBuffer:
        """Convert slicer `chunks` of `samples` (float32 mono [N] at `sr`, or any source `[a:b]` reads from) piece
        by piece into an OutputBuffer (its `.audio`, or `sink.write` per finished stretch). cache=False: nothing is
        added to the feature cache."""
        times = self.last_times
        families.check_options(self.family, opts)
        self.check_second_stage(opts)
        self.vocoder_dtype(opts)  # refuse an unsupported precision before any work
        self.encoder.precision_dtype(opts.encoder_precision)
        with times.stage("slice"):
            pieces = plan_pieces(chunks, sr, self.sample_rate, opts.clip_seconds, opts.crossfade_seconds,
                                 opts.max_slice_seconds, opts.max_slice_crossfade)
            buffer = OutputBuffer(pieces, opts.crossfade_ratio, sink)
        check_piece_count(pieces, sr, opts)
        cancel.plan([((p.end - p.start) / sr, p.silent) for p in pieces])
        voiced_seconds = sum(p.end - p.start for p in pieces if not p.silent) / sr
        self.cache.paused = not cache or voiced_seconds * self._feature_bytes_per_second() > self.cache.max_bytes
        pad_in = int(sr * opts.pad_seconds)
        pad_out = int(self.sample_rate * opts.pad_seconds)
        done_samples, total_samples = 0, max(1, sum(p.end - p.start for p in pieces))
        for index, piece in enumerate(pieces):
            cancel.begin_piece(index)
            if piece.silent:
                buffer.append(piece, np.zeros(piece.out_length, dtype=np.float32))
            else:
                segment = np.pad(samples[piece.start:piece.end], (pad_in, pad_in))
                out = self.infer_piece(segment, sr, speaker, opts, times, trim=pad_out)
                cancel.checkpoint("vocoder", 1.0)
                buffer.append(piece, out)
                del out, segment
                release_free_memory()
            done_samples += piece.end - piece.start
            if progress is not None:
                progress(done_samples / total_samples,
                         f"piece {index + 1}/{len(pieces)} ({'silence' if piece.silent else 'voiced'}, "
                         f"{(piece.end - piece.start) / sr:.2f} s)")
        log.info("converted %.2f s of audio in %.2f s (RTF %.3f)", times.audio_seconds, times.total, times.rtf)
        return buffer


def check_piece_count(pieces, sr: int, opts: ConvertOptions) -> None:
    """Refuse a plan with more voiced pieces than opts.max_pieces (each piece costs a fixed overhead)."""
    voiced = sum(1 for p in pieces if not p.silent)
    if voiced > opts.max_pieces:
        seconds = sum(p.end - p.start for p in pieces) / sr
        raise OptionError(f"These settings cut the {seconds:.1f} s clip into {voiced} pieces; the limit is "
                          f"{opts.max_pieces} (max_pieces). Raise clip_seconds (or set it to 0) or lower slice_db.")
