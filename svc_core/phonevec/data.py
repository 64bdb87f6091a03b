"""Training data: corpus clips -> online-augmented audio batches with CTC targets and speaker labels.

Batches are built from clips sorted by length so padding stays small; each holds at most `batch_seconds` of
padded audio. Online augmentation (per clip, seeded by (seed, epoch, clip index)): speed, gain, coloured noise,
small-room reverb; the VTLP warp is drawn per batch (the mel filterbank is shared by a batch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from . import augment
from .corpus import Corpus
from .voices import SAMPLE_RATE, VOICE_IDS


@dataclass
class OnlineAugment:
    """Probabilities and ranges of the on-the-fly augmentations (speed factor, dB, seconds, warp alpha)."""

    p_speed: float = 0.5
    speed_range: tuple[float, float] = (0.9, 1.1)
    gain_db: tuple[float, float] = (-8.0, 4.0)
    p_noise: float = 0.3
    snr_db: tuple[float, float] = (12.0, 40.0)
    p_reverb: float = 0.2
    rt60: tuple[float, float] = (0.1, 0.5)
    wet: tuple[float, float] = (0.1, 0.4)
    p_vtlp: float = 0.7
    vtlp_range: tuple[float, float] = (0.88, 1.12)
    enabled: bool = True


@dataclass
class Batch:
    """wav [B, N] float32 16 kHz (zero-padded), n_samples [B], targets (concatenated ids), target_lengths [B],
    speakers [B] (index into VOICE_IDS), warp (VTLP alpha for the batch)."""

    wav: torch.Tensor
    n_samples: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    speakers: torch.Tensor
    warp: float = 1.0


def load_clip(corpus: Corpus, clip: dict[str, Any]) -> np.ndarray:
    """A clip's audio, float32 [N] at 16 kHz."""
    import soundfile as sf

    audio, sr = sf.read(corpus.path(clip), dtype="float32")
    if sr != SAMPLE_RATE:
        raise ValueError(f"{clip['path']} is {sr} Hz; phonevec clips are {SAMPLE_RATE} Hz")
    return audio


def augment_clip(wav: np.ndarray, rng: np.random.Generator, aug: OnlineAugment) -> np.ndarray:
    """One seeded draw of speed, gain, noise and reverb (lengths may change with speed)."""
    if not aug.enabled:
        return wav
    if rng.random() < aug.p_speed:
        wav = augment.speed(wav, float(rng.uniform(*aug.speed_range)))
    if rng.random() < aug.p_reverb:
        wav = augment.reverb(wav, rng, float(rng.uniform(*aug.rt60)), float(rng.uniform(*aug.wet)))
    if rng.random() < aug.p_noise:
        wav = augment.add_noise(wav, float(rng.uniform(*aug.snr_db)), rng, color=float(rng.uniform(0.0, 1.0)))
    return augment.gain(wav, float(rng.uniform(*aug.gain_db)))


def make_batches(clips: list[dict[str, Any]], batch_seconds: float, rng: np.random.Generator | None) -> list[list[int]]:
    """Indices of `clips` grouped by length (padded size <= batch_seconds); shuffled when rng is given."""
    order = sorted(range(len(clips)), key=lambda i: clips[i]["n_samples"])
    if rng is not None:  # jitter lengths slightly so batches differ between epochs
        noisy = [clips[i]["n_samples"] * rng.uniform(0.9, 1.1) for i in range(len(clips))]
        order = sorted(range(len(clips)), key=lambda i: noisy[i])
    limit = batch_seconds * SAMPLE_RATE
    batches, cur, longest = [], [], 0
    for i in order:
        n = clips[i]["n_samples"] * 1.15  # room for speed perturbation
        if cur and max(longest, n) * (len(cur) + 1) > limit:
            batches.append(cur)
            cur, longest = [], 0
        cur.append(i)
        longest = max(longest, n)
    if cur:
        batches.append(cur)
    if rng is not None:
        rng.shuffle(batches)
    return batches


def collate(corpus: Corpus, clips: list[dict[str, Any]], indices: list[int], aug: OnlineAugment | None,
            seed: tuple[int, ...]) -> Batch:
    """Load, augment (when aug is given) and pad the clips `indices` into a Batch."""
    rng = np.random.default_rng(list(seed))
    wavs, targets, speakers = [], [], []
    for i in indices:
        wav = load_clip(corpus, clips[i])
        if aug is not None:
            wav = augment_clip(wav, np.random.default_rng(list(seed) + [i]), aug)
        wavs.append(wav)
        targets.append(corpus.targets(clips[i]))
        speakers.append(VOICE_IDS.index(clips[i]["voice"]))
    n = max(len(w) for w in wavs)
    padded = np.zeros((len(wavs), n), dtype=np.float32)
    for row, w in zip(padded, wavs):
        row[: len(w)] = w
    warp = 1.0
    if aug is not None and aug.enabled and rng.random() < aug.p_vtlp:
        warp = round(float(rng.uniform(*aug.vtlp_range)), 3)
    return Batch(torch.from_numpy(padded), torch.tensor([len(w) for w in wavs]),
                 torch.tensor([t for ts in targets for t in ts], dtype=torch.long),
                 torch.tensor([len(t) for t in targets]), torch.tensor(speakers), warp)


def iterate(corpus: Corpus, clips: list[dict[str, Any]], batch_seconds: float, aug: OnlineAugment | None,
            seed: int, epoch: int, shuffle: bool = True, start: int = 0) -> Iterator[tuple[int, int, Batch]]:
    """(batch index, batches in the epoch, batch) of one epoch from batch `start`, deterministic for (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch]) if shuffle else None
    batches = make_batches(clips, batch_seconds, rng)
    for b in range(start, len(batches)):
        yield b, len(batches), collate(corpus, clips, batches[b], aug, (seed, epoch, b))
