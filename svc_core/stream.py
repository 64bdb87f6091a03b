"""File-to-file conversion whose memory does not grow with the input's length.

`convert_file(svc, src, dst, speaker, ...)` reads the input block by block with soundfile, checks it and slices it
on an RMS curve computed from those blocks, reads each piece again when its turn comes, and writes every finished
stretch of output straight into `dst`. The samples are the same as `load_audio` + `Svc.slice_inference` +
`write_audio` give; only about one piece of input and output is held at a time. Inputs soundfile cannot seek
through (containers decoded by librosa/audioread) are decoded whole, as `load_audio` does. RVC voices run RVC's
whole-clip recipe (svc_core.rvc.recipe) on the decoded input.

The output is written to a temporary file beside `dst` and renamed when complete, so a failed or cancelled
conversion never leaves a truncated file under the requested name.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import soundfile as sf

from . import audio as audio_io
from .errors import AudioError
from .options import ConvertOptions
from .paths import require_file
from .slicer import slice_source
from .timing import StageTimes

log = logging.getLogger("svc_core")

READ_BLOCK = 2**20  # input samples per read while checking the file (~24 s at 44.1 kHz)


class FileSamples:
    """Mono float32 samples of an audio file, decoded on demand: `.shape`, `[a:b]` and integer-array indexing,
    channels averaged as `audio.to_mono_float` does."""

    dtype = np.dtype(np.float32)

    def __init__(self, path: str | os.PathLike) -> None:
        self.name = Path(path).name
        self._file = sf.SoundFile(os.fspath(path))
        self.sample_rate = int(self._file.samplerate)
        self.shape = (int(self._file.frames),)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) (clipped to the file) -> float32 [stop - start]."""
        start, stop = max(0, start), min(self.shape[0], stop)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        try:
            self._file.seek(start)
            data = self._file.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as err:
            raise AudioError(f"'{self.name}' could not be decoded after {start / self.sample_rate:.2f} s ({err}). "
                             "The file may be truncated or corrupt; re-export it.") from None
        if len(data) != stop - start:
            raise AudioError(f"'{self.name}' ended early: {start + len(data)} of {self.shape[0]} samples could be "
                             "decoded. The file may be truncated; re-export it.")
        return audio_io.to_mono_float(data)

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise IndexError("FileSamples reads contiguous ranges only")
            return self.read(start, stop)
        index = np.asarray(key)
        lo = int(index.min())
        return self.read(lo, int(index.max()) + 1)[index - lo]

    def blocks(self, size: int = READ_BLOCK) -> Iterator[np.ndarray]:
        for start in range(0, self.shape[0], size):
            yield self.read(start, start + size)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "FileSamples":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_samples(path: str | os.PathLike) -> Optional[FileSamples]:
    """FileSamples for a file soundfile can open and seek in, else None (decode it whole instead)."""
    try:
        samples = FileSamples(path)
    except Exception:  # soundfile's LibsndfileError/RuntimeError/TypeError: not a format it streams
        return None
    if not samples._file.seekable():
        samples.close()
        return None
    return samples


class AudioWriter:
    """Writes mono float blocks (clipped to [-1, 1], as `write_audio`) into `<dst>.part<suffix>` beside `dst`, and
    renames it to `dst` on a clean exit; an exception removes the partial file. Time spent goes to "write"."""

    def __init__(self, dst: str | os.PathLike, sample_rate: int, times: Optional[StageTimes] = None) -> None:
        self.path = Path(dst)
        self.partial = self.path.with_name(f"{self.path.stem}.part{self.path.suffix}")
        self.sample_rate = sample_rate
        self.times = times
        self.samples = 0
        self._file: Optional[sf.SoundFile] = None

    def __enter__(self) -> "AudioWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._file = sf.SoundFile(os.fspath(self.partial), "w", self.sample_rate, 1,
                                      subtype=audio_io.output_subtype(self.path))
        except Exception as err:
            raise AudioError(f"Cannot write '{self.path.name}': {err}. Use a .wav or .flac output name.") from None
        return self

    def write(self, block: np.ndarray) -> None:
        if self.times is None:
            self._file.write(np.clip(block, -1.0, 1.0))
        else:
            with self.times.stage("write"):
                self._file.write(np.clip(block, -1.0, 1.0))
        self.samples += len(block)

    def __exit__(self, exc_type, *exc) -> None:
        self._file.close()
        if exc_type is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


@dataclass
class ConvertedFile:
    path: Path
    seconds: float  # output duration
    sample_rate: int  # Hz
    streamed: bool  # False when the input had to be decoded whole


def convert_file(svc, src: str | os.PathLike, dst: str | os.PathLike, speaker, transpose: float = 0,
                 f0_predictor: str = "rmvpe", progress=None, max_seconds: float = audio_io.MAX_DURATION_SECONDS,
                 cache: bool = True, **options) -> ConvertedFile:
    """Convert the file `src` with `svc` (an Svc or OnnxSvc) into `dst`; options as `Svc.slice_inference`.
    cache=False keeps the input's f0 and content features out of `svc.cache` (a one-off conversion never reads
    them back). `svc.last_times` holds the stage timings afterwards ("write" included)."""
    opts = ConvertOptions.from_kwargs(svc.option_defaults(), transpose=transpose,
                                      f0_predictor=f0_predictor, **options)
    src = require_file(src, "Audio file", AudioError)
    audio_io.check_output_path(dst, src)
    if svc.family.is_rvc:
        return _convert_rvc_file(svc, src, dst, speaker, opts, progress, max_seconds, cache)
    samples = open_samples(src)
    if samples is None:
        wav, sr = audio_io.load_audio(src, max_seconds)
        out = svc.slice_inference(wav, sr, speaker, progress=progress, cache=cache, **asdict(opts))
        with AudioWriter(dst, svc.sample_rate, svc.last_times) as writer:
            writer.write(out)
        return ConvertedFile(Path(dst), len(out) / svc.sample_rate, svc.sample_rate, False)
    with samples:
        sr, n = samples.sample_rate, samples.shape[0]
        note = audio_io.header_note(samples._file, samples.name)  # a truncated WAV: say so, convert what is there
        if note:
            log.warning(note)
        audio_io.check_blocks(samples.blocks(), n, sr, samples.name, max_seconds)
        times = svc.begin_conversion(speaker, n, sr)
        with times.stage("slice"):
            chunks = slice_source(samples, sr, db_thresh=opts.slice_db)
        with AudioWriter(dst, svc.sample_rate, times) as writer:
            svc.convert_chunks(samples, sr, chunks, speaker, opts, progress, sink=writer, cache=cache)
    log.info("wrote %s (%.2f s at %d Hz)", dst, writer.samples / svc.sample_rate, svc.sample_rate)
    return ConvertedFile(Path(dst), writer.samples / svc.sample_rate, svc.sample_rate, True)


def _convert_rvc_file(svc, src, dst, speaker, opts: ConvertOptions, progress, max_seconds: float,
                      cache: bool) -> ConvertedFile:
    """An RVC voice's file conversion. RVC's recipe needs the whole input (f0 and the loudness mix span the
    clip), so the input is decoded whole and the output written at the end; memory grows with the input's
    length (svc_core.rvc.recipe says by how much)."""
    wav, sr = audio_io.load_audio(src, max_seconds)
    out = svc.convert_rvc(wav, sr, speaker, opts, progress, cache=cache)
    rate = svc.output_rate(opts)
    with AudioWriter(dst, rate, svc.last_times) as writer:
        writer.write(out)
    log.info("wrote %s (%.2f s at %d Hz)", dst, len(out) / rate, rate)
    return ConvertedFile(Path(dst), len(out) / rate, rate, False)
