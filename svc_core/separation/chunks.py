"""Running a separator over a long song in overlapping chunks, crossfaded, with memory flat in the song's length.

Each chunk [2, chunk] is separated on its own; neighbouring chunks overlap by `overlap` samples and are joined with
complementary raised-cosine fades (their gains sum to 1), so away from the overlaps the output is exactly the
chunk's output. Only the output stems (float32 [2, N] each) grow with the song; the model sees one chunk at a time.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from .. import cancel
from ..errors import SvcError

SeparateChunk = Callable[[np.ndarray], dict[str, np.ndarray]]


def chunk_starts(n: int, chunk: int, overlap: int) -> list[int]:
    """Start samples of the chunks covering [0, n): step chunk - overlap; the last chunk ends at n (or is the
    only one when n <= chunk)."""
    if chunk <= 0 or not 0 <= overlap < chunk:
        raise ValueError(f"bad chunking: chunk {chunk}, overlap {overlap}")
    if n <= chunk:
        return [0]
    step = chunk - overlap
    starts = list(range(0, n - chunk, step))
    starts.append(n - chunk)
    return starts


def fade_in(length: int) -> np.ndarray:
    """float32 [length] raised-cosine ramp 0 -> 1; fade_in(L) + fade_in(L)[::-1] == 1."""
    if length <= 0:
        return np.zeros(0, np.float32)
    t = (np.arange(length, dtype=np.float64) + 0.5) / length
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def run_chunked(separate_chunk: SeparateChunk, audio: np.ndarray, chunk: int, overlap: int,
                progress: Optional[Callable[[int, int], None]] = None) -> dict[str, np.ndarray]:
    """audio float32 [2, N] -> {stem: float32 [2, N]}: `separate_chunk` on each chunk, crossfaded in the overlaps.

    The overlap actually faded between two chunks is their real overlap (the last chunk is moved back to end at
    N, so it may overlap its neighbour by more than `overlap`; the fade then spans `overlap` samples centred in
    that region). Calls cancel.checkpoint("separation", done / total) after each chunk.
    """
    n = audio.shape[1]
    starts = chunk_starts(n, chunk, overlap)
    out: dict[str, np.ndarray] = {}
    written = 0  # samples [0, written) are final except the fade region of the next chunk
    for i, start in enumerate(starts):
        cancel.checkpoint("separation", i / len(starts))
        end = min(start + chunk, n)
        piece = separate_chunk(np.ascontiguousarray(audio[:, start:end]))
        for name, y in piece.items():
            if y.shape != (audio.shape[0], end - start):
                raise SvcError(f"The separator returned {name} of shape {tuple(y.shape)} for a chunk of shape "
                               f"{(audio.shape[0], end - start)}; this is a bug in the separator.")
            if name not in out:
                if i:
                    raise SvcError(f"The separator returned a new stem '{name}' mid-song; this is a bug.")
                out[name] = np.zeros((audio.shape[0], n), np.float32)
        if i == 0:
            for name, y in piece.items():
                out[name][:, start:end] = y
        else:
            shared = written - start  # samples this chunk shares with what is written
            fade = min(overlap, shared)
            lead = (shared - fade) // 2  # keep the previous chunk's output up to the fade's start
            a, b = start + lead, start + lead + fade
            ramp = fade_in(fade)
            for name, y in piece.items():
                dst = out[name]
                dst[:, a:b] = dst[:, a:b] * (1 - ramp) + y[:, lead:lead + fade] * ramp
                dst[:, b:end] = y[:, lead + fade:]
        written = end
        if progress is not None:
            progress(i + 1, len(starts))
    cancel.checkpoint("separation", 1.0)
    return out
