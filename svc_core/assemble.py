"""Planning the pieces of a conversion and stitching their outputs back together in a fixed-size buffer.

Follows upstream's slice_inference layout: silent slices become zeros, voiced slices are converted whole or in
forced pieces that overlap by a crossfade, every piece is centre-padded to its expected output length. Unlike
upstream, crossfade lengths are measured in output samples (upstream mixes input- and output-rate samples, which
only agrees for 44.1 kHz input), and the output is written into one preallocated array so memory stays flat.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Piece:
    """One unit of work: input samples [start, end) at the input rate."""

    start: int
    end: int
    silent: bool
    out_length: int  # output samples this piece contributes before crossfading
    crossfade: int  # output samples shared with the previous piece (0 for the first piece of a slice)


def output_length(n_in: int, sr_in: int, sr_out: int) -> int:
    return int(math.ceil(n_in / sr_in * sr_out))


def split_slice(start: int, end: int, piece_len: int, overlap: int) -> list[tuple[int, int]]:
    """Cut [start, end) into pieces of `piece_len`; each after the first begins `overlap` samples early."""
    bounds = []
    for s in range(start, end, piece_len):
        bounds.append((max(start, s - overlap) if s > start else s, min(s + piece_len, end)))
    return bounds


def plan_pieces(chunks, sr_in: int, sr_out: int, clip_seconds: float, crossfade_seconds: float,
                max_seconds: float, max_crossfade: float) -> list[Piece]:
    """Turn slicer chunks (objects with start, end, silent) into pieces with their output sizes."""
    pieces: list[Piece] = []
    for chunk in chunks:
        length = chunk.end - chunk.start
        if chunk.silent:
            pieces.append(Piece(chunk.start, chunk.end, True, output_length(length, sr_in, sr_out), 0))
            continue
        clip, fade = clip_seconds, crossfade_seconds
        if clip == 0 and length > max_seconds * sr_in:
            clip, fade = max_seconds, max_crossfade
        if clip == 0:
            pieces.append(Piece(chunk.start, chunk.end, False, output_length(length, sr_in, sr_out), 0))
            continue
        overlap_in = int(fade * sr_in)
        overlap_out = int(fade * sr_out)
        for k, (s, e) in enumerate(split_slice(chunk.start, chunk.end, int(clip * sr_in), overlap_in)):
            out_len = output_length(e - s, sr_in, sr_out)
            pieces.append(Piece(s, e, False, out_len, min(overlap_out, out_len) if k else 0))
    return pieces


def centre_fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Zero-pad `audio` symmetrically (extra sample on the right) up to `length`, or cut the tail beyond it."""
    if len(audio) >= length:
        return audio[:length]
    pad = length - len(audio)
    return np.pad(audio, (pad // 2, pad - pad // 2))


class ArraySink:
    """Collects the output in one preallocated float32 array."""

    def __init__(self, total: int) -> None:
        self.audio = np.zeros(total, dtype=np.float32)
        self.cursor = 0

    def write(self, block: np.ndarray) -> None:
        self.audio[self.cursor:self.cursor + len(block)] = block
        self.cursor += len(block)


class OutputBuffer:
    """Pieces are appended in order, overlapping ones crossfaded with upstream's ramp; finished samples go to
    `sink.write` (default: an ArraySink, read back as `.audio`) as soon as no later crossfade can change them,
    so with a file sink only about one piece is ever held in memory."""

    def __init__(self, pieces: list[Piece], crossfade_ratio: float, sink=None) -> None:
        self.total = sum(p.out_length - p.crossfade for p in pieces)
        self.sink = ArraySink(self.total) if sink is None else sink
        self.ratio = crossfade_ratio
        self._holds = [p.crossfade for p in pieces[1:]] + [0]  # samples the next piece will blend into
        self._index = 0
        self._pending = np.zeros(0, dtype=np.float32)  # produced but not yet final

    @property
    def audio(self) -> np.ndarray:
        return self.sink.audio

    def append(self, piece: Piece, audio: np.ndarray) -> None:
        audio = centre_fit(np.asarray(audio, dtype=np.float32), piece.out_length)
        lg = piece.crossfade
        if lg:
            # blend only the central `ratio` part of the overlap: keep the old tail before it, the new audio after
            blend = int(lg * self.ratio)
            left = (lg - blend) // 2
            ramp = np.linspace(0.0, 1.0, blend, dtype=np.float32) if blend else np.zeros(0, np.float32)
            tail = self._pending[len(self._pending) - lg:]
            old = tail[left:left + blend].copy()
            new = audio[left:left + blend]
            # tail layout: [left: old kept][blend: mixed][right: replaced by new audio]
            tail[left:left + blend] = old * (1 - ramp) + new * ramp
            tail[left + blend:] = audio[left + blend:lg]
            audio = audio[lg:]
        pending = np.concatenate([self._pending, audio])
        hold = min(self._holds[self._index], len(pending)) if self._index < len(self._holds) else 0
        self._index += 1
        self.sink.write(pending[:len(pending) - hold])
        self._pending = pending[len(pending) - hold:].copy()
