"""Split a recording at silences, the way so-vits-svc's slicer does before inference (spec g, step 1).

The decision runs on a frame RMS curve: hop = round(sr * hop_ms / 1000) samples, window =
min(round(sr * min_interval_ms / 1000), 4 * hop) samples, centred frames (librosa.feature.rms layout,
1 + N // hop frames for an even window). A frame is silent when its RMS is below 10^(db/20).
Every silence run that ends at a loud frame is examined once:

* it is cut when it is a leading silence longer than max_sil_kept, or when it lasts at least
  min_interval frames and the clip since the last cut is at least min_length frames long;
* silence up to max_sil_kept frames: a zero-width cut at the RMS minimum of the run (a leading silence is
  kept as a silent chunk from 0 to that minimum);
* up to 2 * max_sil_kept: a silent chunk between the minima near both ends and the middle;
* longer: a silent chunk from the minimum of the first max_sil_kept frames to the minimum of the last ones.

A trailing silence of at least min_interval frames becomes a silent chunk from its early minimum to the end.
Chunks are in samples, ordered, contiguous and cover [0, N); like upstream, zero-width silent chunks occur.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import AudioError, OptionError

DB_THRESH = -40.0  # dB, silence threshold (CLI/webUI default slice_db)
MIN_LENGTH_MS = 5000  # a clip must be this long before a middle silence may cut it
MIN_INTERVAL_MS = 300  # shortest silence that can become a cut
HOP_MS = 20  # RMS hop
MAX_SIL_KEPT_MS = 5000  # longest silence left attached to a cut
RMS_WINDOW_HOPS = 4  # the RMS window is at most this many hops long
FRAMES_PER_BLOCK = 512  # RMS frames computed per block (bounds the temporary [window, frames] array)


@dataclass(frozen=True)
class Chunk:
    """A slice of the input: samples [start, end) at the input rate; silent chunks become zeros downstream."""

    start: int
    end: int
    silent: bool

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class _Frames:
    """Slicer settings converted to samples and RMS frames."""

    threshold: float  # linear amplitude
    hop: int  # samples
    window: int  # samples
    min_length: int  # frames
    min_interval: int  # frames
    max_sil_kept: int  # frames


def _frame_settings(
    sr: int, db_thresh: float, min_length_ms: float, min_interval_ms: float, hop_ms: float, max_sil_kept_ms: float
) -> _Frames:
    if sr <= 0:
        raise OptionError(f"The sample rate must be positive, got {sr}.")
    if not min_length_ms >= min_interval_ms >= hop_ms:
        raise OptionError(
            "Slicer lengths must satisfy min_length >= min_interval >= hop; got "
            f"{min_length_ms} ms, {min_interval_ms} ms, {hop_ms} ms."
        )
    if not max_sil_kept_ms >= hop_ms:
        raise OptionError(f"The slicer's max_sil_kept ({max_sil_kept_ms} ms) must be at least its hop ({hop_ms} ms).")
    interval_samples = sr * min_interval_ms / 1000
    hop = round(sr * hop_ms / 1000)
    if hop < 1:
        raise OptionError(f"A slicer hop of {hop_ms} ms is shorter than one sample at {sr} Hz.")
    return _Frames(
        threshold=10 ** (db_thresh / 20.0),
        hop=hop,
        window=min(round(interval_samples), RMS_WINDOW_HOPS * hop),
        min_length=round(sr * min_length_ms / 1000 / hop),
        min_interval=round(interval_samples / hop),
        max_sil_kept=round(sr * max_sil_kept_ms / 1000 / hop),
    )


def _padded_block(wav: np.ndarray, start: int, stop: int, pad: int, pad_mode: str) -> np.ndarray:
    """Samples [start, stop) of `wav` padded by `pad` on both sides, without padding the whole signal."""
    n = wav.shape[0]
    lo, hi = start - pad, stop - pad  # in original coordinates
    if lo >= 0 and hi <= n:
        return wav[lo:hi]
    index = np.arange(lo, hi)
    if pad_mode == "constant":
        inside = (index >= 0) & (index < n)
        block = np.zeros(stop - start, dtype=wav.dtype)
        block[inside] = wav[index[inside]]
        return block
    index = np.abs(index)  # reflect without repeating the edge sample (numpy's "reflect")
    index = np.where(index >= n, 2 * (n - 1) - index, index)
    return wav[index]


def _rms_uncentred(y: np.ndarray, window: int, hop: int) -> np.ndarray:
    """RMS of frames y[i*hop : i*hop + window] -> [frames], the same arithmetic as librosa.feature.rms(center=False).

    The frames are a strided view laid out like librosa.util.frame ([window, frames]) so the float32 squares and
    the mean reduce in the same order and give bit-identical values (a test compares them).
    """
    if y.shape[-1] < window:
        return np.zeros(0, dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(y, window)[::hop]  # [frames, window] view
    frames = np.moveaxis(frames, -1, -2)  # [window, frames], like librosa.util.frame
    power = np.mean(np.abs(frames) ** 2, axis=-2)
    return np.sqrt(power).astype(np.float32, copy=False)


def frame_rms(wav: np.ndarray, window: int, hop: int, pad_mode: str = "constant") -> np.ndarray:
    """Centred frame RMS, equal to librosa.feature.rms(y=wav, frame_length=window, hop_length=hop)[0].

    wav: [N] float32 (or a sample source as `slice_source` takes). Returns [1 + (N + 2 * (window // 2) - window) // hop]
    float32. Works block by block, so the temporary framed array is bounded by FRAMES_PER_BLOCK frames whatever N is.
    pad_mode: "constant" (librosa >= 0.10) or "reflect" (librosa 0.9, pinned by upstream's requirements).
    """
    if pad_mode not in ("constant", "reflect"):
        raise OptionError(f"pad_mode must be 'constant' or 'reflect', got '{pad_mode}'.")
    pad = window // 2
    n = wav.shape[0]
    if pad_mode == "reflect" and n <= pad:  # tiny input: numpy's repeated reflection, whole signal at once
        padded = np.pad(np.asarray(wav[0:n]), pad, mode="reflect")
        return _rms_uncentred(padded, window, hop)
    n_frames = 1 + (n + 2 * pad - window) // hop
    out = np.empty(max(n_frames, 0), dtype=np.float32)
    for first in range(0, n_frames, FRAMES_PER_BLOCK):
        count = min(FRAMES_PER_BLOCK, n_frames - first)
        start = first * hop
        block = _padded_block(wav, start, start + (count - 1) * hop + window, pad, pad_mode)
        out[first : first + count] = _rms_uncentred(block, window, hop)
    return out


def _silence_runs(silent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop (exclusive) frame indices of every run of True in `silent`."""
    edges = np.diff(np.concatenate(([0], silent.astype(np.int8), [0])))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _argmin(rms: np.ndarray, lo: int, hi: int) -> int:
    """Index of the smallest RMS in frames [lo, hi) (first one on ties), as an absolute frame index."""
    return lo + int(np.argmin(rms[lo:hi]))


def _silence_tags(rms: np.ndarray, f: _Frames) -> list[tuple[int, int]]:
    """Frame ranges (begin, end) to mark silent, in order; end may exceed the last frame for a trailing tag."""
    total = rms.shape[0]
    keep = f.max_sil_kept
    tags: list[tuple[int, int]] = []
    clip_start = 0
    # float64 comparison, as upstream's per-frame `np.float32 < float` was under its pinned numpy 1.x
    starts, stops = _silence_runs(rms.astype(np.float64) < f.threshold)
    for begin, i in zip(starts.tolist(), stops.tolist()):
        if i == total:  # trailing silence: handled below
            if total - begin >= f.min_interval:
                pos = _argmin(rms, begin, min(total, begin + keep) + 1)
                tags.append((pos, total + 1))
            break
        leading = begin == 0 and i > keep
        cut_middle = i - begin >= f.min_interval and i - clip_start >= f.min_length
        if not (leading or cut_middle):
            continue
        if i - begin <= keep:
            pos = _argmin(rms, begin, i + 1)
            tags.append((0, pos) if begin == 0 else (pos, pos))
            clip_start = pos
        elif i - begin <= 2 * keep:
            mid = _argmin(rms, i - keep, begin + keep + 1)
            left = _argmin(rms, begin, begin + keep + 1)
            right = _argmin(rms, i - keep, i + 1)
            if begin == 0:
                tags.append((0, right))
                clip_start = right
            else:
                tags.append((min(left, mid), max(right, mid)))
                clip_start = max(right, mid)
        else:
            left = _argmin(rms, begin, begin + keep + 1)
            right = _argmin(rms, i - keep, i + 1)
            tags.append((0, right) if begin == 0 else (left, right))
            clip_start = right
    return tags


def _tags_to_chunks(tags: list[tuple[int, int]], hop: int, n: int) -> list[Chunk]:
    if not tags:
        return [Chunk(0, n, False)]
    chunks: list[Chunk] = []
    if tags[0][0] != 0:
        chunks.append(Chunk(0, min(n, tags[0][0] * hop), False))
    for k, (begin, end) in enumerate(tags):
        if k:
            chunks.append(Chunk(tags[k - 1][1] * hop, min(n, begin * hop), False))
        chunks.append(Chunk(begin * hop, min(n, end * hop), True))
    if tags[-1][1] * hop < n:
        chunks.append(Chunk(tags[-1][1] * hop, n, False))
    return chunks


def slice_audio(wav: np.ndarray, sr: int, *settings, **named_settings) -> list[Chunk]:
    """Cut a mono recording into voiced and silent chunks exactly as upstream's slicer does.

    wav: [N] float mono at `sr` Hz; the settings (db_thresh, min_length_ms, ...) are `slice_source`'s.
    Returns chunks in order, contiguous, covering [0, N).
    """
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise AudioError(f"The slicer needs mono audio as a 1-D array; got an array of shape {wav.shape}.")
    if not np.issubdtype(wav.dtype, np.floating):
        raise AudioError(f"The slicer needs floating-point samples in [-1, 1]; got dtype {wav.dtype}.")
    return slice_source(wav.astype(np.float32, copy=False), sr, *settings, **named_settings)


def slice_source(
    samples,
    sr: int,
    db_thresh: float = DB_THRESH,
    min_length_ms: float = MIN_LENGTH_MS,
    min_interval_ms: float = MIN_INTERVAL_MS,
    hop_ms: float = HOP_MS,
    max_sil_kept_ms: float = MAX_SIL_KEPT_MS,
    pad_mode: str = "constant",
) -> list[Chunk]:
    """`slice_audio` for any float32 mono sample source with `.shape == (N,)`, `[a:b]` slices and integer-array
    indexing, such as a file read block by block (svc_core.stream.FileSamples): the same chunks, and only
    FRAMES_PER_BLOCK RMS frames of audio are read at a time. db_thresh in dBFS; lengths in milliseconds;
    pad_mode "constant" (librosa >= 0.10) or "reflect" (librosa 0.9) for the RMS frames at the edges."""
    f = _frame_settings(sr, db_thresh, min_length_ms, min_interval_ms, hop_ms, max_sil_kept_ms)
    n = samples.shape[0]
    if n <= f.min_length:  # upstream compares samples with a frame count here; kept for identical output
        return [Chunk(0, n, False)]
    rms = frame_rms(samples, f.window, f.hop, pad_mode)
    if not np.all(np.isfinite(rms)):
        raise AudioError("The audio contains NaN or infinite samples; it cannot be sliced.")
    return _tags_to_chunks(_silence_tags(rms, f), f.hop, n)


def chunks_to_upstream(chunks: list[Chunk]) -> dict[str, dict[str, object]]:
    """The same chunks in upstream's layout: {"0": {"slice": is_silent, "split_time": "start,end"}, ...}."""
    return {str(k): {"slice": c.silent, "split_time": f"{c.start},{c.end}"} for k, c in enumerate(chunks)}
