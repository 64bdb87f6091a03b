"""RVC's conversion recipe on the shared engine: `convert_rvc(svc, wav, sr, speaker, opts)`.

Steps (RVC WebUI `VC.vc_single` -> `Pipeline.pipeline`, CPU/fp32 windows):
 1. input -> 16 kHz mono float32 (soxr VHQ; RVC decodes with ffmpeg), divided by peak/0.95 when that exceeds 1;
 2. 48 Hz Butterworth high-pass (filtfilt), float64;
 3. long inputs (> 41 s) are cut at the quietest 10 ms near every 38 s mark (svc_core.rvc.signal.plan_segments);
 4. reflect padding of 1 s per side, f0 of the whole padded input (svc_core.rvc.f0.rvc_f0: raw, transposed);
 5. per segment: content features of the padded segment (svc.encoder, 50 Hz), retrieval (faiss k=8,
    w = 1/d^2, mixed with ratio opts.cluster_ratio), x2 nearest upsampling to 100 Hz, cut to the f0 length,
    protect (unvoiced frames keep 1 - protect of the unmixed features), the synthesizer, 1 s trimmed per side;
 6. change_rms with opts.loudness_mix on the concatenated output, optional resampling (opts.resample_sr),
    peak limit to 0.99.
Memory: per segment (RVC's cut marks every 38 s, each cut within +-6 s: at most ~50 s + 2 s of padding) the
encoder features, the model's activations and its output. The text encoder's attention is O(frames^2) within a
segment and dominates: measured +0.8 GB at 35 s, +1.3 GB at 44 s (parity-size model, 2 heads like RVC's own).
What grows with the input: the 16 kHz input (float64 after the high-pass, ~128 kB/s, plus its padded copy), its
f0 (100 frames/s) and the converted output (float32 at the model rate, 160 kB/s at 40 kHz; change_rms scales it
in place, block by block).
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any, Callable, Mapping, MutableMapping, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from .. import audio as audio_io
from .. import cancel
from ..constants import ENCODER_HOP_LENGTH, ENCODER_SAMPLE_RATE
from ..errors import SpeakerError
from ..families import RVC_DEFAULTS, RVC_INDEX_RATE  # RVC's option defaults (Svc applies them: families)
from ..noise import NoiseSource, TorchNoise
from ..options import ConvertOptions
from ..timing import StageTimes, timed_calls
from .f0 import RVC_F0_HOP, pitch_inputs, raw_f0
from .signal import RvcWindows, Segment, change_rms, highpass, peak_limit, plan_segments, reflect_pad, resample_output

log = logging.getLogger("svc_core")

INPUT_HEADROOM = 0.95  # vc_single divides the 16 kHz input by peak / 0.95 when that exceeds 1
PROTECT_OFF = 0.5  # protect >= this switches protection off (RVC)
UPSAMPLE = 2  # content frames (50 Hz) -> model frames (100 Hz), nearest
NoiseArg = Union[NoiseSource, Callable[[int], NoiseSource], None]
ProgressFn = Callable[[float, str], None]


def speaker_input(svc: Any, speaker: Any) -> torch.Tensor:
    """Speaker -> RVC's sid LongTensor [1], or for a mix {name: weight} FloatTensor [n_spk] weights summing to 1."""
    config = svc.config
    if isinstance(speaker, Mapping):
        weights = torch.zeros(int(config.n_speakers))
        for name, w in speaker.items():
            weights[config.speaker_id(name)] = float(w)
        if weights.sum() <= 0:
            raise SpeakerError("A speaker mix needs at least one positive weight.")
        return weights / weights.sum()
    return torch.LongTensor([config.speaker_id(speaker)])


def _noise_for(noise: NoiseArg, index: int, seed: int) -> NoiseSource:
    if noise is None:
        return TorchNoise.seeded(seed)
    if isinstance(noise, NoiseSource):
        return noise  # one source for every segment: its draws are consumed in order
    return noise(index)


def _digest(samples: np.ndarray) -> str:
    return hashlib.blake2b(np.ascontiguousarray(samples).view(np.uint8), digest_size=16).hexdigest()


def _record(trace: Optional[MutableMapping[str, Any]], name: str, value: Any) -> None:
    if trace is not None:
        trace[name] = value.detach().cpu().numpy().copy() if isinstance(value, torch.Tensor) else np.copy(value)


def load_16k(wav: np.ndarray, sr: int) -> np.ndarray:
    """Mono float audio at `sr` -> float32 [N] at 16 kHz, scaled down to peak 0.95 if it exceeds 1 (RVC)."""
    wav = audio_io.to_mono_float(wav)
    audio = audio_io.resample(wav, int(sr), ENCODER_SAMPLE_RATE) if int(sr) != ENCODER_SAMPLE_RATE else wav
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max(initial=0.0)) / INPUT_HEADROOM
    return audio / np.float32(peak) if peak > 1 else audio


def retrieve(svc: Any, feats: torch.Tensor, ratio: float, speaker: Any,
             trace: Optional[MutableMapping[str, Any]] = None, prefix: str = "") -> torch.Tensor:
    """feats [1, n, C] -> retrieved * ratio + (1 - ratio) * feats (float32, as RVC mixes in torch)."""
    from ..retrieval.faiss_index import SEARCH_BLOCK_FRAMES, SEARCH_K, FaissRetriever, weighted_neighbours

    retriever = svc.retriever
    frames = feats[0].cpu().numpy()
    sid = svc.config.speaker_id(max(speaker, key=speaker.get) if isinstance(speaker, Mapping) else speaker)
    name = svc.config.speaker_name(sid)
    if isinstance(retriever, FaissRetriever):
        key = retriever._speaker_key(name, sid)
        index, vectors = retriever.indexes[key], retriever.vectors(key)
        retrieved = np.empty_like(frames)
        scores, ids = [], []
        for start in range(0, frames.shape[0], SEARCH_BLOCK_FRAMES):
            block = np.ascontiguousarray(frames[start: start + SEARCH_BLOCK_FRAMES])
            score, ix = index.search(block, SEARCH_K)
            retrieved[start: start + block.shape[0]] = weighted_neighbours(block, vectors, score, ix)
            if trace is not None:
                scores.append(score)
                ids.append(ix)
        if trace is not None:
            _record(trace, prefix + "index_score", np.concatenate(scores))
            _record(trace, prefix + "index_ix", np.concatenate(ids))
            _record(trace, prefix + "retrieved", retrieved)
        return torch.from_numpy(retrieved).unsqueeze(0).to(feats.device) * ratio + (1 - ratio) * feats
    mixed = retriever.mix(frames, name, sid, ratio)  # k-means centres (so-vits files)
    return torch.from_numpy(np.ascontiguousarray(mixed)).unsqueeze(0).to(feats.device)


def segment_inputs(svc: Any, audio0: np.ndarray, pitch: Optional[torch.Tensor], pitchf: Optional[torch.Tensor],
                   speaker: Any, opts: ConvertOptions, times: StageTimes,
                   trace: Optional[MutableMapping[str, Any]] = None, prefix: str = "") -> tuple:
    """One segment's model inputs, as RVC's Pipeline.vc builds them: audio0 float64 [N] (padded segment),
    pitch int64 / pitchf float32 [1, N // 160] (None for a no-pitch model) -> (phone [1, T, C], pitch, pitchf)
    with T = min(N // 160, 2 x content frames)."""
    cache = getattr(svc, "cache", None)
    key = (_digest(audio0), "rvc-units", svc.encoder.name, id(svc.encoder), opts.encoder_precision)
    feats = None if cache is None else cache.get(key)
    if feats is None:
        cancel.checkpoint("encoder", 0.0)
        with times.stage("encoder"), cancel.cancel_hooks(svc.encoder):
            feats = svc.encoder.encode(torch.from_numpy(audio0.astype(np.float32)), opts.encoder_precision)
            feats = feats.float().transpose(1, 2).contiguous()  # [1, n, C]
        if cache is not None:
            cache.put(key, feats)
    _record(trace, prefix + "feats", feats)
    protecting = opts.protect < PROTECT_OFF and pitch is not None
    feats0 = feats.clone() if protecting else None
    if svc.retriever is not None and opts.cluster_ratio != 0:
        with times.stage("retrieval"):
            feats = retrieve(svc, feats, opts.cluster_ratio, speaker, trace, prefix)
    feats = F.interpolate(feats.permute(0, 2, 1), scale_factor=UPSAMPLE).permute(0, 2, 1)
    p_len = audio0.shape[0] // RVC_F0_HOP
    if feats.shape[1] < p_len:
        p_len = feats.shape[1]
        if pitch is not None:
            pitch, pitchf = pitch[:, :p_len], pitchf[:, :p_len]
    if protecting:
        feats0 = F.interpolate(feats0.permute(0, 2, 1), scale_factor=UPSAMPLE).permute(0, 2, 1)
        mask = pitchf.clone()
        mask[pitchf > 0] = 1
        mask[pitchf < 1] = opts.protect
        mask = mask.unsqueeze(-1)
        feats = feats * mask + feats0 * (1 - mask)
    return feats, pitch, pitchf


def _vocoder_of(model: Any) -> Any:
    """The decoder module to time as "vocoder" (None for a model without one, e.g. an ONNX graph)."""
    return getattr(model, "dec", None)


def convert_rvc(svc: Any, wav: np.ndarray, sr: int, speaker: Any, opts: ConvertOptions,
                progress: Optional[ProgressFn] = None, noise: NoiseArg = None,
                windows: RvcWindows = RvcWindows(), trace: Optional[MutableMapping[str, Any]] = None,
                audio16k: Optional[np.ndarray] = None, use_cache: bool = True) -> np.ndarray:
    """Convert a clip (float [N] or [N, C] at `sr` Hz) with an RVC voice -> float32 [M] at the model rate (or
    opts.resample_sr). noise: a NoiseSource used for every segment in turn, or index -> NoiseSource; None =
    TorchNoise.seeded(opts.seed) per segment. trace: filled with RVC's intermediate arrays under the parity
    fixtures' names (tests). audio16k: the 16 kHz input already loaded (skips step 1). Stages in svc.last_times.
    use_cache: keep this input's f0 and content features in svc.cache (a rerun with other transpose, index rate,
    protect, speaker or loudness mix then skips f0 and the encoder); False stores nothing new.
    Options are taken as given: Svc.convert_rvc checks them against the family table first (svc_core.families)."""
    model = svc.model
    has_f0 = bool(getattr(model, "has_f0", True))
    times = svc.last_times
    if audio16k is None:
        with times.stage("resample"):
            audio16k = load_16k(wav, sr)
    with times.stage("highpass"):
        audio_hp = highpass(audio16k)
        segments = plan_segments(audio_hp, windows)
        audio_pad = reflect_pad(audio_hp, windows.t_pad)
    _record(trace, "audio_hp", audio_hp)
    cancel.plan([((s.stop - s.start) / ENCODER_SAMPLE_RATE, False) for s in segments])
    p_len = audio_pad.shape[0] // RVC_F0_HOP
    pitch = pitchf = None
    cache = getattr(svc, "cache", None)
    if cache is not None:  # f0 and content features are reused when the same input is converted again
        feature_bytes = 4.0 * (len(audio_pad) / ENCODER_HOP_LENGTH * svc.encoder.dim + 2 * p_len)
        cache.paused = not use_cache or feature_bytes > cache.max_bytes
    if has_f0:
        key = (_digest(audio_pad), "rvc-f0", opts.f0_predictor, opts.filter_radius, opts.f0_threshold)
        hz_raw = None if cache is None else cache.get(key)
        if hz_raw is None:
            cancel.checkpoint("f0", 0.0)
            with times.stage("f0"):
                hz_raw = raw_f0(opts.f0_predictor, audio_pad, p_len, opts.filter_radius, opts.f0_threshold,
                                svc.f0_weights.get(opts.f0_predictor), str(svc.device))
            if cache is not None:
                cache.put(key, hz_raw)
        coarse, hz = pitch_inputs(hz_raw, p_len, opts.transpose)
        _record(trace, "f0_coarse", coarse)
        _record(trace, "f0_hz", hz)
        pitch, pitchf = torch.from_numpy(coarse)[None], torch.from_numpy(hz)[None]
    sid = speaker_input(svc, speaker)
    trim = int(svc.sample_rate * windows.x_pad)
    pieces = []
    for index, segment in enumerate(segments):
        cancel.begin_piece(index)
        pieces.append(_convert_segment(svc, audio_pad, segment, pitch, pitchf, sid, speaker, opts, times,
                                       _noise_for(noise, index, opts.seed), trim, trace, f"vc{index}_"))
        if progress is not None:
            progress((index + 1) / len(segments), f"segment {index + 1}/{len(segments)} "
                                                  f"({(segment.stop - segment.start) / ENCODER_SAMPLE_RATE:.2f} s)")
    out = np.concatenate(pieces)
    del pieces
    if opts.loudness_mix != 1:
        with times.stage("loudness"):
            out = change_rms(audio_hp, ENCODER_SAMPLE_RATE, out, svc.sample_rate, opts.loudness_mix)
    _record(trace, "rms_out", out)
    if opts.resample_sr:
        with times.stage("resample"):
            out = resample_output(out, svc.sample_rate, opts.resample_sr)
    out = peak_limit(out)
    log.info("converted %.2f s of audio in %.2f s (RTF %.3f)", times.audio_seconds, times.total, times.rtf)
    return out


def _convert_segment(svc: Any, audio_pad: np.ndarray, segment: Segment, pitch, pitchf, sid: torch.Tensor,
                     speaker: Any, opts: ConvertOptions, times: StageTimes, noise: NoiseSource, trim: int,
                     trace: Optional[MutableMapping[str, Any]], prefix: str) -> np.ndarray:
    """One Pipeline.vc call: the model output of audio_pad[segment] without `trim` samples at each end."""
    audio0 = audio_pad[segment.start: segment.stop]
    seg_pitch = seg_pitchf = None
    if pitch is not None:
        seg_pitch = pitch[:, segment.f0_start: segment.f0_stop]
        seg_pitchf = pitchf[:, segment.f0_start: segment.f0_stop]
    _record(trace, prefix + "audio0_range", np.array(segment.audio_range))
    _record(trace, prefix + "pitch_range", np.array([segment.f0_start, segment.f0_stop]))
    phone, seg_pitch, seg_pitchf = segment_inputs(svc, audio0, seg_pitch, seg_pitchf, speaker, opts, times,
                                                  trace, prefix)
    _record(trace, prefix + "infer_phone", phone)
    if seg_pitch is not None:
        _record(trace, prefix + "infer_pitch", seg_pitch)
        _record(trace, prefix + "infer_nsff0", seg_pitchf)
    model = svc.model
    frames = phone.shape[1]
    skip = trim // svc.hop_length  # whole frames inside the trimmed ends: not decoded (same samples elsewhere)
    span = (skip, frames - skip) if 0 < skip and 2 * skip < frames else None
    cancel.checkpoint("synthesizer", 0.0)
    with times.stage("synthesizer"), svc._vocoder_watch(frames, opts, span), \
            timed_calls(_vocoder_of(model), times, "vocoder", of="synthesizer"):
        out = model.synthesize(phone.to(svc.device), None if seg_pitch is None else seg_pitch.to(svc.device),
                               None if seg_pitchf is None else seg_pitchf.to(svc.device), sid.to(svc.device), noise,
                               chunk_frames=svc.chunk_frames(opts), span=span, vocoder_dtype=svc.vocoder_dtype(opts))
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    first = trim - (span[0] * svc.hop_length if span else 0)
    _record(trace, prefix + "infer_o", out)
    _record(trace, prefix + "infer_o_offset", np.array(span[0] * svc.hop_length if span else 0))
    cancel.checkpoint("vocoder", 1.0)
    return out[first: first + frames * svc.hop_length - 2 * trim]


__all__ = ["RVC_DEFAULTS", "RVC_INDEX_RATE", "convert_rvc", "load_16k", "retrieve", "segment_inputs", "speaker_input"]
