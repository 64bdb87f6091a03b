"""One conversion, run in a worker thread and reported as a stream of `JobUpdate`s.

Everything a job touches is local to it (its request, its output folder, its update stream), so two people
converting at the same time never see each other's log or result. A job whose page goes away is cancelled at
the next piece boundary. Engine errors (`SvcError`) end the stream with their message as is; anything else ends
it with one readable line while the traceback goes to the server log.
"""
from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from ..audio import AUDIO_SUFFIXES
from ..errors import AudioError, SvcError
from ..paths import safe_file_name
from ..timing import StageTimes
from . import backends
from .models import ModelLibrary
from .voice_cache import VoiceCache

log = logging.getLogger("svc_core.ui")

HEARTBEAT_SECONDS = 1.0  # an update at least this often, so elapsed/ETA tick and the connection stays busy
RESULT_MAX_AGE_SECONDS = 6 * 3600  # result folders older than this are removed when a new job starts
# Overall progress: reading and loading take the first 5 %, the conversion 5-90 %, plot and write the rest.
CONVERT_START, CONVERT_SPAN = 0.05, 0.85


@dataclass(frozen=True)
class ConvertRequest:
    """What the Convert tab (or an API client) asks for."""

    audio_path: str | None
    model: str
    speaker: str
    transpose: float = 0.0
    f0_predictor: str = "auto"
    auto_f0: bool = False
    cluster_ratio: float = 0.0
    noise_scale: float = 0.4
    slice_db: float = -40.0
    pad_seconds: float = 0.5
    clip_seconds: float = 0.0
    crossfade_seconds: float = 0.0
    loudness_mix: float = 1.0
    backend: str = "torch"  # "torch" (eager) or "onnx" (ONNX Runtime, see backends.py)
    vocoder_precision: str = "fp32"  # torch: fp32, or bf16 / fp16 where fast (svc_core.precision); ONNX: fp32, int8
    encoder_precision: str = "fp32"  # a content encoder running in torch: fp32, or bf16 / fp16 where fast

    def engine_options(self) -> dict[str, Any]:
        """Keyword options for `Svc.slice_inference` (besides speaker/transpose/f0_predictor)."""
        return {"auto_predict_f0": bool(self.auto_f0), "cluster_ratio": float(self.cluster_ratio),
                "noise_scale": float(self.noise_scale), "slice_db": float(self.slice_db),
                "pad_seconds": float(self.pad_seconds), "clip_seconds": float(self.clip_seconds),
                "crossfade_seconds": float(self.crossfade_seconds), "loudness_mix": float(self.loudness_mix),
                "vocoder_precision": str(self.vocoder_precision or "fp32"),
                "encoder_precision": str(self.encoder_precision or "fp32")}


@dataclass
class JobResult:
    output_path: Path
    sample_rate: int
    times: StageTimes
    load_seconds: float | None  # None when the voice was already in memory
    f0_name: str
    encoder: str
    f0_plot: pd.DataFrame
    backend: str = ""  # which engine and execution provider ran (backends.describe)


@dataclass
class JobUpdate:
    """A snapshot of the job for the page: the whole log so far, progress, and the result or error at the end."""

    log: str
    fraction: float
    stage: str
    elapsed: float
    eta: float | None
    result: JobResult | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None


class JobCancelled(Exception):
    """The page that started the job went away."""


def resolve_f0(name: str) -> str:
    """'auto' -> rmvpe when usable, else fcpe; other names must be usable here (else an error saying why)."""
    from ..f0 import resolve_predictor

    return resolve_predictor(name)


def check_audio_file(path: str | None, max_bytes: int) -> Path:
    """The uploaded clip exists, has an audio extension and is not over the size limit (content checked later)."""
    if not path:
        raise AudioError("Upload or record a clip first (or pick one of the examples).")
    p = Path(path)
    if not p.is_file():
        raise AudioError("The uploaded clip is no longer on the server; upload it again.")
    if p.suffix.lower() not in AUDIO_SUFFIXES:
        raise AudioError(f"'{p.name}' is not an audio file we accept. Upload one of: "
                         f"{', '.join(s.lstrip('.') for s in AUDIO_SUFFIXES)}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise AudioError(f"'{p.name}' is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    return p


def prune_results(results_dir: Path, max_age: float = RESULT_MAX_AGE_SECONDS) -> None:
    if not results_dir.is_dir():
        return
    cutoff = time.time() - max_age
    for child in results_dir.iterdir():
        try:
            if child.is_dir() and child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            pass


@dataclass
class JobContext:
    """What a job needs from the server: the voices, the loaded-voice cache, where results go, the limits."""

    library: ModelLibrary
    cache: VoiceCache
    results_dir: Path
    max_file_size: int
    max_audio_seconds: float = 30 * 60
    calibration_dir: Path | None = None  # audio for making a voice's int8 vocoder (None: the repo's examples/)


@dataclass
class _Events:
    """Thread-safe channel from the worker to the streaming generator."""

    items: "queue.Queue[tuple]" = field(default_factory=queue.Queue)
    cancel: threading.Event = field(default_factory=threading.Event)


class ConversionJob:
    """`for update in ConversionJob(request, context).run(): ...` streams one conversion."""

    def __init__(self, request: ConvertRequest, context: JobContext) -> None:
        self.request = request
        self.context = context
        self._events = _Events()
        self._start = time.perf_counter()

    # ----------------------------------------------------------------- worker side
    def _say(self, text: str) -> None:
        self._events.items.put(("log", text))

    def _work(self) -> None:
        try:
            self._events.items.put(("done", self._convert()))
        except JobCancelled:
            self._events.items.put(("error", "Cancelled: the page that started this conversion was closed."))
        except SvcError as err:
            self._events.items.put(("error", self._without_server_paths(str(err))))
        except MemoryError:
            self._events.items.put(("error", "The server ran out of memory; try a shorter clip or a larger "
                                             "slice threshold."))
        except Exception as err:  # a bug: one line for the page, the traceback for the server log
            log.exception("conversion failed")
            self._events.items.put(("error", f"Internal error while converting ({type(err).__name__}: {err}). "
                                             "The server log has the details."))

    def _without_server_paths(self, message: str) -> str:
        """Engine messages may quote the uploaded file's server path; people only need its name."""
        if self.request.audio_path:
            folder = str(Path(self.request.audio_path).parent)
            message = message.replace(folder + os.sep, "").replace(folder, "")
        return message

    def _convert(self) -> JobResult:
        from ..audio import load_audio, write_audio

        req, ctx = self.request, self.context
        path = check_audio_file(req.audio_path, ctx.max_file_size)
        f0_name = resolve_f0(req.f0_predictor)
        self._say(f"reading {path.name}")
        wav, sr = load_audio(path, max_seconds=ctx.max_audio_seconds)
        self._say(f"input: {len(wav) / sr:.2f} s at {sr} Hz")
        entry = ctx.library.get(req.model)
        backend = backends.backend_for(entry, req.backend)
        if backend != backends.check_backend(req.backend):
            self._say(f"{entry.key} is an ONNX file ({entry.model_path.name}): it runs on ONNX Runtime")
        if ctx.cache.peek(entry.key, backend) is None:
            extra = " and exporting it to ONNX" if backend == backends.ONNX and not entry.onnx_only else ""
            self._say(f"loading voice {entry.key} (first use{extra})")
            self._events.items.put(("stage", 0.02, f"loading voice {entry.key}"))
        voice, cached = ctx.cache.get(entry, backend)
        self._say("voice already in memory" if cached else f"voice loaded in {voice.load_seconds:.2f} s")
        svc = voice.svc
        engine = backends.describe(svc)
        for part, precision in (("vocoder", req.vocoder_precision), ("encoder", req.encoder_precision)):
            if (precision or "fp32") != "fp32":
                engine += f"; {part} {precision}"
        self._say(f"backend: {engine}")
        speaker = req.speaker.strip()
        if not speaker:  # left empty: fine for a single-speaker voice
            speaker = svc.config.speaker_name(svc.config.only_speaker("the speaker field"))
        svc.config.speaker_id(speaker)  # SpeakerError lists the valid names
        if not voice.lock.acquire(blocking=False):
            self._say("waiting for another conversion with this voice to finish")
            self._events.items.put(("stage", CONVERT_START, "waiting for the voice"))
            voice.lock.acquire()
        try:
            if self._events.cancel.is_set():
                raise JobCancelled()
            if req.vocoder_precision == "int8":
                self._prepare_int8_vocoder(svc)
            self._say(f"converting: speaker {speaker}, transpose {req.transpose:+g}, f0 {f0_name}"
                      + (" (auto-f0)" if req.auto_f0 else ""))
            self._events.items.put(("convert_start",))
            previous: dict[str, float] = {}

            def progress(fraction: float, message: str) -> None:
                if self._events.cancel.is_set():
                    raise JobCancelled()
                now = svc.last_times.seconds
                parts = [f"{name} {now[name] - previous.get(name, 0.0):.2f} s" for name in now
                         if now[name] - previous.get(name, 0.0) >= 0.005 and name != "slice"]
                previous.clear()
                previous.update(now)
                self._events.items.put(("progress", fraction, message + (": " + ", ".join(parts) if parts else "")))

            out = svc.slice_inference(wav, sr, speaker, transpose=float(req.transpose), f0_predictor=f0_name,
                                      progress=progress, **req.engine_options())
            times = svc.last_times
        finally:
            voice.lock.release()
        self._events.items.put(("stage", CONVERT_START + CONVERT_SPAN, "measuring the output's f0"))
        from .plots import f0_comparison

        with times.stage("f0 plot"):  # a fast tracker on both sides (plots.py): ~0.2 s for 40 s
            plot = f0_comparison(wav, sr, out, svc.sample_rate, float(req.transpose))
        self._say(f"f0 plot: {times.seconds['f0 plot']:.2f} s")
        prune_results(ctx.results_dir)
        out_dir = ctx.results_dir / uuid.uuid4().hex
        name = "_".join(safe_file_name(part) for part in (path.stem, entry.key, speaker)) + f"_{req.transpose:+g}.wav"
        with times.stage("write"):
            write_audio(out_dir / name, out, svc.sample_rate)
        self._say(f"done: {times.audio_seconds:.2f} s of audio in {times.total:.2f} s (real-time factor "
                  f"{times.rtf:.3f})")
        return JobResult(out_dir / name, svc.sample_rate, times, None if cached else voice.load_seconds, f0_name,
                         str(getattr(svc.encoder, "name", "?")), plot, engine)

    def _prepare_int8_vocoder(self, svc: Any) -> None:
        """Make the voice's int8 vocoder on first use (ONNX backend; the torch engine refuses int8 itself)."""
        path = getattr(svc, "int8_path", None)
        if path is None or path.is_file():
            return
        from ..onnx.vocoder_int8 import add_int8_vocoder

        self._say("making this voice's int8 vocoder (once per voice): calibrating on the example clips")
        self._events.items.put(("stage", CONVERT_START, "calibrating the int8 vocoder"))
        folder = self.context.calibration_dir
        entry = add_int8_vocoder(svc, [folder] if folder else None)
        check = entry["check"]
        self._say(f"int8 vocoder ready: {entry['quantized_layers']} convolutions int8; SNR {check['snr_db']:.1f} dB "
                  f"against float32 on {check['clip']}")

    # ----------------------------------------------------------------- streaming side
    def run(self) -> Iterator[JobUpdate]:
        """Start the worker and yield a snapshot after each event (and every HEARTBEAT_SECONDS)."""
        worker = threading.Thread(target=self._work, name="svc-convert", daemon=True)
        lines: list[str] = []
        fraction, stage = 0.0, "starting"
        convert_start: float | None = None
        convert_fraction = 0.0

        def stamp(text: str) -> None:
            lines.append(f"[{time.perf_counter() - self._start:7.2f} s] {text}")

        def snapshot(**extra: Any) -> JobUpdate:
            elapsed = time.perf_counter() - self._start
            eta = None
            if convert_start is not None and convert_fraction > 0:
                spent = time.perf_counter() - convert_start
                eta = spent * (1 - convert_fraction) / convert_fraction
            return JobUpdate("\n".join(lines), fraction, stage, elapsed, eta, **extra)

        worker.start()
        try:
            while True:
                try:
                    item = self._events.items.get(timeout=HEARTBEAT_SECONDS)
                except queue.Empty:
                    yield snapshot()
                    continue
                kind = item[0]
                if kind == "log":
                    stamp(item[1])
                elif kind == "stage":
                    fraction, stage = item[1], item[2]
                elif kind == "convert_start":
                    convert_start, fraction, stage = time.perf_counter(), CONVERT_START, "converting"
                elif kind == "progress":
                    convert_fraction = float(item[1])
                    fraction = CONVERT_START + CONVERT_SPAN * convert_fraction
                    stage = f"converting {item[2].split(':')[0]}"
                    stamp(item[2])
                elif kind == "done":
                    fraction, stage, convert_fraction = 1.0, "done", 1.0
                    yield snapshot(result=item[1])
                    return
                elif kind == "error":
                    stamp(f"error: {item[1]}")
                    stage = "failed"
                    yield snapshot(error=item[1])
                    return
                yield snapshot()
        finally:
            self._events.cancel.set()  # no-op when finished; stops the worker when the page went away


__all__ = ["AUDIO_SUFFIXES", "ConversionJob", "ConvertRequest", "JobContext", "JobResult", "JobUpdate",
           "check_audio_file", "resolve_f0"]
