"""Content embeddings with per-frame labels, from the four places a voice's map draws on:

    labeller = FrameLabeller(svc.encoder)                       # the voice's own content encoder
    train = dataset_frames("dataset/44k", labeller)            # (a) <speaker>/<clip>.wav, cached .soft.pt reused
    inp = labeller.embed(wav, sr, speaker="input", source="input", clip="song.wav")        # (b)
    conv, audio = converted_frames(svc, wav, sr, ConversionSpec("alice", 0, 0.5), labeller)  # (c)
    centres = retrieval_frames(svc.retriever)                  # (d) k-means centres / faiss index rows

Every frame is one content frame at 50 frames/s (16 kHz, hop 320). Labels: phone = the most likely phone of
phonevec's posteriorgram (the shipped phonevec256.pt, `phoneppg42` tap; "sil" below SILENCE_DB), pitch = f0 of the
16 kHz audio at the same hop (Praat "pm" by default: fast and weight-free; 0 Hz = unvoiced).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..audio import check_audio, load_audio, resample, to_mono_float
from ..constants import ENCODER_HOP_LENGTH, ENCODER_SAMPLE_RATE
from ..encoders import get_encoder
from ..encoders.base import ContentEncoder
from ..errors import AudioError, OptionError
from ..f0 import get_predictor
from ..safe_load import load_torch
from .frames import SILENCE, UNKNOWN, FrameSet

FRAME_SECONDS = ENCODER_HOP_LENGTH / ENCODER_SAMPLE_RATE  # 0.02 s per content frame
SILENCE_DB = 40.0  # frames this far below the clip's loudest frame are labelled "sil"
PHONE_ENCODER = "phoneppg42"  # posteriorgram tap of the shipped phonevec256.pt: names the phone of each frame
PITCH_PREDICTOR = "pm"  # Praat autocorrelation: no weights, ~100x real time on one core
DATASET_SUFFIXES = (".wav", ".flac")
MAX_CLIPS_PER_SPEAKER = 40  # training clips read per speaker (sorted by name; the rest are skipped)
MAX_INDEX_ROWS = 20_000  # faiss index rows read per speaker (seeded subsample above this)


@dataclass(frozen=True)
class ConversionSpec:
    """How to convert the input before re-encoding it: target speaker, semitones, cluster/retrieval ratio 0..1."""

    speaker: str
    transpose: float = 0.0
    cluster_ratio: float = 0.0
    f0_predictor: str = "pm"


def _phone_names() -> tuple[str, ...]:
    from ..phonevec.text import PHONE_SET

    return PHONE_SET.phones


class FrameLabeller:
    """Embeds clips with `encoder` and labels each frame (phone, pitch, time). `phones`: a phoneppg42 encoder
    (default: built from the shipped phonevec256.pt; None with phones=False: every phone label is empty)."""

    def __init__(self, encoder: ContentEncoder, phones: bool | ContentEncoder = True,
                 pitch_predictor: str = PITCH_PREDICTOR) -> None:
        self.encoder = encoder
        if phones is True:
            phones = encoder if encoder.name == PHONE_ENCODER else get_encoder(PHONE_ENCODER)
        self.phones: ContentEncoder | None = phones or None
        self.pitch = get_predictor(pitch_predictor, hop_length=ENCODER_HOP_LENGTH,
                                   sampling_rate=ENCODER_SAMPLE_RATE, device="cpu")

    def features16(self, wav16: np.ndarray) -> np.ndarray:
        """float32 [N] at 16 kHz -> content frames [T, C]."""
        return self.encoder.encode(torch.from_numpy(wav16))[0].T.float().cpu().numpy()

    def embed(self, wav: np.ndarray, sr: int, speaker: str, source: str, clip: str,
              features: np.ndarray | None = None) -> FrameSet:
        """One clip (float [N] or [N, ch] at `sr`) -> its frames; `features` [T, C]: precomputed content frames
        (a preprocess cache) used instead of encoding."""
        wav = to_mono_float(wav)
        check_audio(wav, int(sr), name=clip)
        wav16 = resample(wav, int(sr), ENCODER_SAMPLE_RATE) if sr != ENCODER_SAMPLE_RATE else wav
        wav16 = np.ascontiguousarray(wav16, dtype=np.float32)
        feats = self.features16(wav16) if features is None else np.asarray(features, np.float32)
        n = len(feats)
        return FrameSet(feats, np.full(n, speaker), np.full(n, source), self.phone_labels(wav16, n),
                        self.pitch_labels(wav16, n), np.arange(n, dtype=np.float32) * FRAME_SECONDS,
                        np.full(n, clip))

    def phone_labels(self, wav16: np.ndarray, n: int) -> np.ndarray:
        """[n] phone names: argmax of the posteriorgram's phone channels, "sil" on quiet frames."""
        if self.phones is None:
            return np.full(n, UNKNOWN)
        ppg = self.phones.encode(torch.from_numpy(wav16))[0].T.cpu().numpy()  # [T, 42]: blank, then 41 phones
        names = np.asarray(_phone_names() + (SILENCE,))[_fit(ppg[:, 1:].argmax(1), n, 0)]
        names[_quiet(wav16, n)] = SILENCE
        return names

    def pitch_labels(self, wav16: np.ndarray, n: int) -> np.ndarray:
        """[n] f0 in Hz per frame (0 = unvoiced)."""
        f0, uv = self.pitch.compute_f0_uv(wav16, n)
        return (np.asarray(f0, np.float32) * (np.asarray(uv) > 0.5)).astype(np.float32)


def _fit(values: np.ndarray, n: int, fill) -> np.ndarray:
    """values [T] cut or padded (with its last value, or `fill` when empty) to [n]."""
    if len(values) >= n:
        return values[:n]
    pad = values[-1] if len(values) else fill
    return np.concatenate([values, np.full(n - len(values), pad, dtype=values.dtype)])


def _quiet(wav16: np.ndarray, n: int) -> np.ndarray:
    """[n] bool: frames more than SILENCE_DB below the clip's loudest frame."""
    frames = wav16[: n * ENCODER_HOP_LENGTH]
    frames = np.pad(frames, (0, n * ENCODER_HOP_LENGTH - len(frames))).reshape(n, ENCODER_HOP_LENGTH)
    db = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    return db < db.max() - SILENCE_DB


# ------------------------------------------------------------------------------------------------ (a) training
def dataset_clips(folder: str | os.PathLike, max_per_speaker: int = MAX_CLIPS_PER_SPEAKER) -> list[tuple[str, Path]]:
    """(speaker, clip) pairs of a dataset folder laid out as preprocess writes it (<speaker>/<clip>.wav, also the
    raw input layout); a folder of clips alone counts as one speaker named after it. Sorted; at most
    `max_per_speaker` per speaker."""
    root = Path(folder)
    if not root.is_dir():
        raise OptionError(f"The dataset folder '{root}' does not exist.")

    def clips(d: Path) -> list[Path]:
        return sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in DATASET_SUFFIXES)

    pairs: list[tuple[str, Path]] = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        pairs += [(sub.name, c) for c in clips(sub)[:max_per_speaker]]
    if not pairs:
        pairs = [(root.name, c) for c in clips(root)[:max_per_speaker]]
    if not pairs:
        raise OptionError(f"No .wav/.flac clips in '{root}' or in its speaker folders (<speaker>/<clip>.wav).")
    return pairs


def cached_features(clip: Path, dim: int) -> np.ndarray | None:
    """A clip's preprocess cache X.wav.soft.pt as [T, C] (safe load), or None when absent, older than the clip,
    unreadable or not `dim` channels wide (another encoder's)."""
    path = Path(f"{clip}.soft.pt")
    try:
        if path.stat().st_mtime_ns < clip.stat().st_mtime_ns:
            return None
        value = load_torch(path, what="cached features")
    except Exception:  # noqa: BLE001 - missing, truncated, pickled: encode the clip instead
        return None
    if not (isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[0] == 1 and value.shape[1] == dim):
        return None
    return value[0].T.float().numpy()


def dataset_frames(folder: str | os.PathLike, labeller: FrameLabeller, max_per_speaker: int = MAX_CLIPS_PER_SPEAKER,
                   use_cache: bool = True) -> FrameSet:
    """(a) Frames of a voice's training clips, source "training", speaker = the clip's folder."""
    return FrameSet.concat(_dataset_sets(folder, labeller, max_per_speaker, use_cache))


def _dataset_sets(folder, labeller: FrameLabeller, max_per_speaker: int, use_cache: bool) -> Iterator[FrameSet]:
    for speaker, clip in dataset_clips(folder, max_per_speaker):
        try:
            wav, sr = load_audio(str(clip))
        except AudioError:
            continue  # an unreadable clip is left out of the map, not the end of it
        feats = cached_features(clip, labeller.encoder.dim) if use_cache else None
        try:
            yield labeller.embed(wav, sr, speaker, "training", f"{speaker}/{clip.name}", features=feats)
        except AudioError:
            continue  # silent or too short to give a frame


def dataset_fingerprint(folder: str | os.PathLike, max_per_speaker: int = MAX_CLIPS_PER_SPEAKER) -> list:
    """What the training frames depend on: each clip's relative path, size and mtime (for the map cache key)."""
    root = Path(folder)
    out = []
    for speaker, clip in dataset_clips(root, max_per_speaker):
        st = clip.stat()
        cache = Path(f"{clip}.soft.pt")
        cst = cache.stat() if cache.exists() else None
        out.append([speaker, clip.name, st.st_size, st.st_mtime_ns, cst.st_mtime_ns if cst else 0])
    return out


# ------------------------------------------------------------------------------------------------ (c) converted
def converted_frames(svc, wav: np.ndarray, sr: int, spec: ConversionSpec, labeller: FrameLabeller,
                     clip: str = "input") -> tuple[FrameSet, np.ndarray]:
    """(c) Convert the input with `svc` (svc_core.pipeline.Svc) and re-encode the result: (frames with source
    "converted" and the target speaker, converted audio float32 [M] at svc.sample_rate)."""
    audio = svc.slice_inference(wav, sr, spec.speaker, transpose=spec.transpose, f0_predictor=spec.f0_predictor,
                                cluster_ratio=spec.cluster_ratio, cache=False)
    frames = labeller.embed(audio, svc.sample_rate, spec.speaker, "converted", f"{clip} -> {spec.speaker}")
    return frames, np.asarray(audio, np.float32)


# ------------------------------------------------------------------------------------------------ (d) centres
def retrieval_frames(retriever, speakers: list[str] = (), max_rows: int = MAX_INDEX_ROWS,
                     seed: int = 0) -> FrameSet | None:
    """(d) A retrieval file's vectors: k-means centres (source "centre", keyed by speaker name) or faiss index rows
    rebuilt with reconstruct (source "index", keyed by speaker id: named from `speakers`, the voice's list).
    None without a file."""
    if retriever is None:
        return None
    from ..retrieval import FaissRetriever, KMeansRetriever

    sets = []
    if isinstance(retriever, KMeansRetriever):
        for speaker, centres in retriever.centers.items():
            sets.append(FrameSet.uniform(centres, str(speaker), "centre", clip="k-means"))
    elif isinstance(retriever, FaissRetriever):
        for key in retriever.indexes:
            name = speakers[key] if isinstance(key, int) and 0 <= key < len(speakers) else str(key)
            rows = FrameSet.uniform(retriever.vectors(key), name, "index", clip="index")
            sets.append(rows.subsample(max_rows, seed))
    else:
        raise OptionError(f"A {type(retriever).__name__} has no vectors to draw.")
    return FrameSet.concat(sets)

