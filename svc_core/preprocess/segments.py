"""Plan the clips of one recording: cut at silences with svc_core.slicer, then merge / split to min..max seconds.

All positions are samples at the recording's (already resampled) rate; pieces are [start, end) ranges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..slicer import frame_rms, slice_audio

SLICER_HOP_MS = 10
SLICER_MIN_INTERVAL_MS = 300  # a pause this long can become a cut
SLICER_MAX_SIL_KEPT_MS = 500  # silence left around each voiced chunk
MAX_MERGE_GAP_SECONDS = 1.0  # a short piece is joined with a neighbour across at most this much silence
SPLIT_SEARCH_SECONDS = 1.0  # a forced split looks this far either side for the quietest frame
SPLIT_FRAME_MS = 20


@dataclass(frozen=True)
class Piece:
    """A planned clip: samples [start, end)."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Dropped:
    """A stretch of sound that did not become a clip, and why."""

    start: int
    end: int
    reason: str


def _voiced_chunks(wav: np.ndarray, sr: int, min_seconds: float, slice_db: float) -> list[Piece]:
    chunks = slice_audio(wav, sr, db_thresh=slice_db, min_length_ms=1000 * min_seconds,
                         min_interval_ms=SLICER_MIN_INTERVAL_MS, hop_ms=SLICER_HOP_MS,
                         max_sil_kept_ms=SLICER_MAX_SIL_KEPT_MS)
    return [Piece(c.start, c.end) for c in chunks if not c.silent and c.length > 0]


def _merge_short(pieces: list[Piece], sr: int, min_len: int, max_len: int) -> list[Piece]:
    """Join a piece shorter than min_len with the next one when the pause between is short and the result fits."""
    out: list[Piece] = []
    gap_limit = round(MAX_MERGE_GAP_SECONDS * sr)
    for piece in pieces:
        if out:
            prev = out[-1]
            short = prev.length < min_len or piece.length < min_len
            if short and piece.start - prev.end <= gap_limit and piece.end - prev.start <= max_len:
                out[-1] = Piece(prev.start, piece.end)
                continue
        out.append(piece)
    return out


def _split_long(wav: np.ndarray, sr: int, piece: Piece, min_len: int, max_len: int) -> list[Piece]:
    """Split a piece longer than max_len into equal parts, each cut moved to the quietest 20 ms frame nearby.

    The search window keeps every part within [min_len, max_len] (settings guarantee max_len >= 2 * min_len).
    """
    n_parts = math.ceil(piece.length / max_len)
    part = piece.length / n_parts
    window = int(min(SPLIT_SEARCH_SECONDS * sr, (max_len - part) / 2, (part - min_len) / 2))
    frame = max(1, round(SPLIT_FRAME_MS * sr / 1000))
    cuts = [piece.start]
    for k in range(1, n_parts):
        ideal = piece.start + round(k * part)
        lo, hi = max(ideal - window, cuts[-1] + min_len), ideal + window
        if hi - lo > frame:
            rms = frame_rms(wav[lo:hi], frame, max(1, frame // 4))
            ideal = lo + int(np.argmin(rms)) * max(1, frame // 4)
        cuts.append(min(max(ideal, lo), hi))
    cuts.append(piece.end)
    return [Piece(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def plan_pieces(wav: np.ndarray, sr: int, min_seconds: float, max_seconds: float,
                slice_db: float = -40.0) -> tuple[list[Piece], list[Dropped]]:
    """Clips of `wav` [N] float32 at `sr` Hz: each min_seconds..max_seconds long, cut at pauses.

    Returns (pieces in time order, dropped stretches with a reason each).
    """
    min_len, max_len = round(min_seconds * sr), round(max_seconds * sr)
    threshold = 10.0 ** (slice_db / 20.0)
    voiced = _merge_short(_voiced_chunks(wav, sr, min_seconds, slice_db), sr, min_len, max_len)
    pieces: list[Piece] = []
    dropped: list[Dropped] = []
    frame = max(1, round(SPLIT_FRAME_MS * sr / 1000))
    for piece in voiced:
        if piece.length < min_len:
            dropped.append(Dropped(piece.start, piece.end,
                                   f"{piece.length / sr:.2f} s of sound between pauses, shorter than {min_seconds:g} s"))
            continue
        segment = wav[piece.start:piece.end]
        if float(frame_rms(segment, frame, frame).max(initial=0.0)) < threshold:
            dropped.append(Dropped(piece.start, piece.end, f"no sound above {slice_db:g} dBFS"))
            continue
        pieces.extend(_split_long(wav, sr, piece, min_len, max_len) if piece.length > max_len else [piece])
    return pieces, dropped
