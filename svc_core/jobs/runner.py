"""Run one job anywhere: an embedded pool's thread or a Dramatiq worker. `run_job(job_id, env)` never raises for a
job's own errors (a queue must not retry a bad request); it ends the record as done, failed or cancelled.

The steps: claim the record (store.claim: a finished or cancelled job is skipped, a job started too often fails as
"worker_lost"), fetch its inputs from the blob store into scratch/<id>/ (and an uploaded voice the worker does not
have yet: voice_sync.ensure_voice), run the page's own job
(svc_core.ui.jobs.ConversionJob or svc_core.ui.cover_job.CoverJob: the same checks, limits and engine), write its
progress to the store (at most WRITES_PER_SECOND, and at every stage change), keep a heartbeat while it runs, stop
it when someone asks the store to cancel it, and put its files in the blob store as "results/<id>/<name>".
"""
from __future__ import annotations

import json
import logging
import mimetypes
import os
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cancel import ConversionCancelled
from ..ui.cover_job import CoverContext, CoverJob
from ..ui.cover_choices import resolve_plan
from ..ui.jobs import ConversionJob, JobContext
from . import errors, model
from .blobs import BlobStore
from .errors import JobNotFound, error_code  # noqa: F401 - error_code is part of this module's interface
from .model import CANCELLED, DONE, FAILED, LOG_LINES, QUEUED, JobRecord, ResultFile
from .retention import drop_files
from .requests import convert_request, cover_request
from .store import JobStore
from .voice_sync import ensure_voice

log = logging.getLogger("svc_core.jobs")

HEARTBEAT_SECONDS = model.HEARTBEAT_SECONDS  # a running job's heartbeat_at is refreshed this often
CANCEL_POLL_SECONDS = 0.3  # how often the store is asked whether someone cancelled the job
WRITES_PER_SECOND = 4.0  # progress writes to the store, at most (a stage change is always written)
CANCEL_REASON = "Stopped: the job was cancelled."
INTERRUPTED = "Interrupted by a server shutdown: resubmitted at the next start."
MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg",
               ".zip": "application/zip", ".json": "application/json"}
SUMMARY_NAME = "summary.json"  # a cover's summary (transpose used, the key suggestion, loudness) among its results


@dataclass
class WorkerEnv:
    """What running a job needs: where records and files are, the engine's job context (voices, loaded-voice
    cache, limits), a scratch folder for inputs, the worker's name ("<host>:<pid>") and, for covers, their
    context (None: made from `jobs`)."""

    store: JobStore
    blobs: BlobStore
    jobs: JobContext
    scratch: Path
    name: str = ""
    cover: CoverContext | None = None

    def __post_init__(self) -> None:
        self.scratch = Path(self.scratch)
        if not self.name:
            self.name = f"{socket.gethostname()}:{os.getpid()}"
        if self.cover is None:
            self.cover = CoverContext(self.jobs)

    def worker_id(self) -> str:
        """"<host>:<pid>:<thread>" of the calling thread."""
        return f"{self.name}:{threading.current_thread().name}"


class _Capturing:
    """Mixin for the page's jobs: keeps the exception that ended the engine's work (its class gives the code)."""

    exception: BaseException | None = None

    def _capture(self, call, *args):
        try:
            return call(*args)
        except BaseException as exc:  # re-raised: the job reports it as it always does
            self.exception = exc
            raise


class _ConversionJob(_Capturing, ConversionJob):
    def _convert(self):
        return self._capture(super()._convert)


class _CoverJob(_Capturing, CoverJob):
    def _cover(self, request, plan):
        return self._capture(super()._cover, request, plan)


def stage_head(stage: str) -> str:
    """The stage's first words ("converting: vocoder, piece 2" -> "converting"); what changes at a new stage."""
    return stage.split(":", 1)[0].split(" (", 1)[0].strip()


def media_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"


class _Monitor(threading.Thread):
    """Heartbeat and cancel poll of one running job: every CANCEL_POLL_SECONDS it reads the record and stops the
    job when cancel_requested is set; every HEARTBEAT_SECONDS it writes heartbeat_at."""

    def __init__(self, env: WorkerEnv, job_id: str, job: Any, stop: threading.Event | None = None) -> None:
        super().__init__(name=f"svc-job-monitor-{job_id[:8]}", daemon=True)
        self.env, self.job_id, self.job = env, job_id, job
        self.stop = stop  # set when the embedded pool stops (a server shutdown)
        self.done = threading.Event()
        self.cancelled = threading.Event()  # someone asked the store to cancel (or deleted the job)
        self.interrupted = threading.Event()  # stopped by the shutdown: the job goes back to the queue

    def run(self) -> None:
        last_beat = time.monotonic()
        while not self.done.wait(CANCEL_POLL_SECONDS):
            if self.stop is not None and self.stop.is_set() and not self.interrupted.is_set():
                self.interrupted.set()
                self.job.cancel(INTERRUPTED)
            try:
                if time.monotonic() - last_beat >= HEARTBEAT_SECONDS:
                    record = self.env.store.update(self.job_id, heartbeat_at=time.time())
                    last_beat = time.monotonic()
                else:
                    record = self.env.store.get(self.job_id)
                if record.cancel_requested and not self.cancelled.is_set():
                    self.cancelled.set()
                    self.job.cancel(CANCEL_REASON)
            except JobNotFound:  # deleted while running: nobody wants its result
                self.cancelled.set()
                self.job.cancel(CANCEL_REASON)
            except Exception:  # noqa: BLE001 - a store hiccup: try again at the next poll
                log.warning("job %s: heartbeat/cancel poll failed", self.job_id, exc_info=True)


class _Run:
    """One attempt at one claimed job."""

    def __init__(self, record: JobRecord, env: WorkerEnv, stop: threading.Event | None = None) -> None:
        self.record, self.env, self.stop = record, env, stop
        self.folder = env.scratch / record.id
        self.lines = list(record.log) + [f"attempt {record.attempts} of {record.max_attempts} on {record.worker}"]
        self.last_write = 0.0
        self.last_stage = ""
        self.out_dirs: list[Path] = []

    # ------------------------------------------------------------------ store writes
    def _log(self, log_text: str) -> list[str]:
        return (self.lines + [line for line in log_text.splitlines() if line])[-LOG_LINES:]

    def _write_progress(self, update: Any) -> None:
        now = time.monotonic()
        stage = stage_head(update.stage)  # "converting: vocoder, piece 2" -> "converting": a stage change
        if stage == self.last_stage and now - self.last_write < 1.0 / WRITES_PER_SECOND:
            return
        self.last_write, self.last_stage = now, stage
        lines = self._log(update.log)
        self.env.store.update(self.record.id, stage=update.stage, progress=min(1.0, max(0.0, update.fraction)),
                              eta_seconds=update.eta, message=lines[-1] if lines else "", log=lines)

    def _clean_scratch(self) -> None:
        """Remove the job's scratch folders (its inputs, the engine's output once uploaded); before the final
        status is written, so a client that sees the job ended finds nothing of it left on the worker."""
        for folder in (self.folder, *self.out_dirs):
            shutil.rmtree(folder, ignore_errors=True)

    def _finish(self, status: str, log_text: str, **values: Any) -> JobRecord:
        self._clean_scratch()
        lines = self._log(log_text)
        now = time.time()
        timings = dict(values.pop("timings", {}))
        started = self.record.started_at or now
        timings.update(queue_wait=max(0.0, started - self.record.created_at), run=max(0.0, now - started),
                       total=max(0.0, now - self.record.created_at))
        record = self.env.store.update(self.record.id, status=status, finished_at=now, timings=timings, log=lines,
                                       message=lines[-1] if lines else "",
                                       eta_seconds=0.0 if status == DONE else None, **values)
        try:  # it ended: its inputs are not needed any more (results are what clients fetch)
            drop_files(self.env.blobs, self.record.id, results=False)
        except Exception:  # noqa: BLE001 - left for retention to remove
            log.warning("job %s: its inputs could not be removed", self.record.id, exc_info=True)
        return record

    def _requeue(self, log_text: str = "") -> JobRecord:
        """Back to QUEUED, this attempt not counted (a server shutdown stopped it; the next start runs it)."""
        lines = self._log(log_text + "\n" + INTERRUPTED)
        return self.env.store.update(self.record.id, status=QUEUED, stage="queued", progress=0.0, eta_seconds=None,
                                     attempts=max(0, self.record.attempts - 1), worker=None, heartbeat_at=None,
                                     started_at=None, message=INTERRUPTED, log=lines)

    def _fail(self, code: str, message: str, log_text: str = "") -> JobRecord:
        if code == errors.CANCELLED:
            return self._finish(CANCELLED, log_text, stage="cancelled", error={"code": code, "message": message})
        return self._finish(FAILED, log_text + f"\nfailed ({code}): {message}", stage="failed",
                            error={"code": code, "message": message})

    # ------------------------------------------------------------------ the job
    def run(self) -> JobRecord | None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            paths = {name: self.env.blobs.get_file(key, self.folder / key.rsplit("/", 1)[-1])
                     for name, key in self.record.inputs.items()}
            if self.record.kind == "train":  # a training run: svc_core.jobs.train_job drives it
                from .train_job import run_training

                return run_training(self, paths)
            job = self._make_job(paths)
            if self.stop is not None and self.stop.is_set():  # the server stops: do not start it now
                return self._requeue()
            return self._drive(job)
        except JobNotFound:
            log.info("job %s was deleted while it ran", self.record.id)
            return None
        except errors.BlobNotFound as exc:
            return self._fail(errors.BAD_REQUEST, f"The job's input file is gone from the store ({exc}).")
        except Exception as exc:  # noqa: BLE001 - the job ends failed; a queue must not retry it
            code = error_code(exc)
            if code == errors.INTERNAL:
                log.exception("job %s failed", self.record.id)
                return self._fail(code, f"Internal error ({type(exc).__name__}); the worker's log has the details.")
            return self._fail(code, str(exc))
        finally:
            self._clean_scratch()  # also when it was re-queued or deleted

    def _make_job(self, paths: dict[str, Path]) -> Any:
        params, owner = self.record.params, self.record.owner
        ensure_voice(self.env.jobs.library, self.env.blobs, str(params.get("model", "")))
        if self.record.kind == "convert":
            request = convert_request(params, str(paths["audio"]))
            request.options()  # refused here with its own class (the job would only give the message)
            return _ConversionJob(request, self.env.jobs, owner)
        request = cover_request(params, str(paths["song"])).checked()
        resolve_plan(request.separator, request.lead_model, request.dereverb_model, self.env.cover.choices())
        return _CoverJob(request, self.env.cover, owner)

    def _drive(self, job: Any) -> JobRecord:
        monitor = _Monitor(self.env, self.record.id, job, self.stop)
        monitor.start()
        last = None
        try:
            stream = job.run()
            try:
                for update in stream:
                    last = update
                    if update.finished:
                        break
                    self._write_progress(update)
            finally:
                stream.close()
        finally:
            monitor.done.set()
        if last is None:  # pragma: no cover - run() always yields a final snapshot
            return self._fail(errors.INTERNAL, "The job ended without a result.")
        if last.error is None:
            return self._succeed(job, last)
        if monitor.cancelled.is_set():
            return self._fail(errors.CANCELLED, "The job was cancelled.", last.log)
        if monitor.interrupted.is_set():
            return self._requeue(last.log)
        if isinstance(job.exception, ConversionCancelled):  # not by us: its time budget ran out (or would)
            return self._fail(errors.TIME_LIMIT, last.error, last.log)
        if job.exception is not None:
            code = error_code(job.exception)
            return self._fail(code, last.error, last.log)
        # no engine exception: the error came before the engine's part (the slot queue: limits.JobLimitError)
        internal = last.error.startswith("Internal error")
        return self._fail(errors.INTERNAL if internal else errors.BUSY, last.error, last.log)

    # ------------------------------------------------------------------ results
    def _succeed(self, job: Any, last: Any) -> JobRecord:
        job_id = self.record.id
        if self.record.kind == "convert":
            result = last.result
            files = [result.output_path]
            self.out_dirs.append(result.output_path.parent)
            timings = {name: float(seconds) for name, seconds in result.times.seconds.items()}
            if result.load_seconds is not None:
                timings["load voice"] = float(result.load_seconds)
            extra: dict[str, Any] = {}
        else:
            outcome = last.outcome
            cover = outcome.result
            files = list(cover.files()) + ([cover.zip_path] if cover.zip_path else [])
            self.out_dirs.extend({Path(p).parent for p in files})
            timings = {name: float(seconds) for name, seconds in cover.stage_seconds.items()}
            timings.update({f"convert/{name}": float(s) for name, s in cover.conversion_seconds.items()})
            summary = cover_summary(outcome)
            extra = {SUMMARY_NAME: json.dumps(summary, indent=1).encode()}
        results: list[ResultFile] = []
        for path in files:
            path = Path(path)
            key = f"results/{job_id}/{path.name}"
            size = self.env.blobs.put_file(key, path)
            results.append(ResultFile(path.name, key, size, media_type(path.name)))
        for name, data in extra.items():
            key = f"results/{job_id}/{name}"
            results.append(ResultFile(name, key, self.env.blobs.put_bytes(key, data), media_type(name)))
        return self._finish(DONE, last.log, stage="done", progress=1.0, results=results, timings=timings,
                            error=None)


def cover_summary(outcome: Any) -> dict[str, Any]:
    """What a cover did, JSON-able: transpose, the key suggestion's words, loudness, stems by format."""
    result = outcome.result
    suggestion = result.suggestion
    return {"voice": outcome.voice, "speaker": outcome.speaker, "separator": outcome.separator,
            "song_seconds": round(float(outcome.song_seconds), 3), "transpose": result.transpose,
            "accompaniment_shift": result.accompaniment_shift,
            "suggested_transpose": None if suggestion is None else suggestion.semitones,
            "key_explanation": None if suggestion is None else suggestion.explanation,
            "mix_lufs": round(float(result.mix_lufs), 2), "mix_peak_db": round(float(result.mix_peak_db), 2),
            "sample_rate": int(result.sample_rate), "notes": [str(n) for n in result.notes],
            "files": {stem: {fmt: Path(p).name for fmt, p in by_format.items()}
                      for stem, by_format in result.stems.items()}}


def run_job(job_id: str, env: WorkerEnv, previous_dead: bool = False,
            stop: threading.Event | None = None) -> JobRecord | None:
    """Claim and run job `job_id` -> its final record (QUEUED again when `stop` was set meanwhile: a server
    shutdown); None when there was nothing to run (finished already, cancelled while queued, out of attempts,
    running on a live worker elsewhere: a fresh heartbeat, or unknown). `previous_dead`: the caller knows a RUNNING
    record's runner is gone (store.claim_decision)."""
    try:
        record = env.store.claim(job_id, env.worker_id(), previous_dead=previous_dead)
        if record is None:
            current = env.store.get(job_id)
            if current.finished:  # ended at the claim (cancelled, worker_lost) or before: inputs not needed
                drop_files(env.blobs, job_id, results=False)
            return None
    except JobNotFound:
        log.warning("job %s is not in the store; skipped", job_id)
        return None
    return _Run(record, env, stop).run()


SCRATCH = "job-scratch"  # under the work folder: inputs of running jobs, and the engine's output before upload


def make_worker_env(models_dir: Path, work_dir: Path, store: str | JobStore, blobs: str | BlobStore,
                    threads: str | int | None = None, *, name: str = "", shipped: tuple[Path, ...] | None = None,
                    separation_dir: Path | None = None, concurrency: int = 1, max_cached_voices: int = 2,
                    max_file_size: int = 200 * 2**20, max_audio_seconds: float = 30 * 60, device: str = "cpu",
                    limits: Any = None, context: JobContext | None = None) -> WorkerEnv:
    """A WorkerEnv as the web server builds its job context (svc_core.ui.server.build_app): the voices of
    `models_dir` (+ `shipped`, default the starter voices) and the uploads kept in work_dir/uploads, a loaded-voice
    cache (`threads`: torch threads per job, "auto", a count or None for $SVC_THREADS), `concurrency` jobs at once
    with no per-client limit (the queue orders them), the default time budgets. `store` / `blobs`: specs
    (open_job_store / open_blob_store) or objects. `context`: an existing JobContext to share (the page's)."""
    from ..ui.limits import JobLimits
    from ..ui.models import ModelLibrary
    from ..ui.settings import STARTER_SOVITS, STARTER_VOICES
    from ..ui.voice_cache import VoiceCache
    from ..ui.workdir import ONNX_EXPORTS, UPLOADS
    from .blobs import open_blob_store
    from .store import open_job_store

    work_dir = Path(work_dir).expanduser().resolve()
    scratch = work_dir / SCRATCH
    if context is None:
        shipped = (STARTER_VOICES, STARTER_SOVITS) if shipped is None else tuple(shipped)
        library = ModelLibrary(Path(models_dir).expanduser().resolve(), work_dir / UPLOADS, shipped=shipped)
        cache = VoiceCache(max_cached_voices, device, work_dir / ONNX_EXPORTS, threads)
        if limits is None:
            limits = JobLimits(concurrency=max(1, concurrency), max_waiting=10_000, per_client=0)
        context = JobContext(library, cache, scratch / "out", max_file_size, max_audio_seconds=max_audio_seconds,
                             limits=limits)
    return WorkerEnv(open_job_store(store) if isinstance(store, (str, Path)) else store,
                     open_blob_store(blobs) if isinstance(blobs, (str, Path)) else blobs,
                     context, scratch, name, CoverContext(context, separation_dir))
