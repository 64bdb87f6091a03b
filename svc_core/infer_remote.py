"""`python -m svc_core infer ... --server URL`: the local batch (svc_core.infer_cli) run as jobs on a server.

The plan is the local one: the same input expansion, output names and up-front checks (`infer_cli.plan_jobs`, once
before the server is asked anything and again with the speakers' names). `-m` is then a voice key the server knows
(`GET /api/v1/voices`), not a file; the conversion options map to the API's (`MAPPED`), and the options that pick
local files or local resources (`LOCAL_ONLY`) are refused by name. Each conversion is submitted as a job
(`POST /conversions`), at most `--parallel` in flight; progress lines come from the job records (stage, %, ETA);
results are downloaded to the output paths (re-encoded when the output's format is not the server's). A job that
fails is reported with its code and message and the batch goes on; the exit status is 2 if any failed. Ctrl-C (or
an error that stops the batch) cancels the jobs this run submitted that are not finished.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import ApiError, SvcClient, raise_for_job
from .errors import ModelError, OptionError, SpeakerError
from .jobs_cli import ServerError, add_server_arguments, connect, explain, progress_words, token_of

if TYPE_CHECKING:
    from .infer_cli import Job

DEFAULT_PARALLEL = 2  # jobs in flight at once
POLL_SECONDS = 0.5  # how often the jobs in flight are looked at
UNREACHABLE_SECONDS = 60.0  # a server that does not answer the polls this long stops the batch (a restart is shorter)
PROGRESS_STEP = 0.25  # a progress line at each stage change and each time a job moves this much (0..1)
FINAL = ("done", "failed", "cancelled")
# submit answers about the file itself: that input is reported and skipped, the batch goes on
FILE_CODES = ("unsupported_audio", "file_too_large", "audio_too_long", "unsafe_file")
MODEL_SUFFIXES = (".pth", ".pt", ".onnx", ".ckpt", ".safetensors")  # -m looks like a local file
# infer option (argparse dest) -> the API's conversion field (svc_core.jobs.requests.CONVERT_FIELDS); sent when given
MAPPED = {"f0": "f0_predictor", "auto_f0": "auto_f0", "cluster_ratio": "cluster_ratio", "noise_scale": "noise_scale",
          "slice_db": "slice_db", "pad_seconds": "pad_seconds", "clip_seconds": "clip_seconds",
          "crossfade_seconds": "crossfade_seconds", "loudness_mix": "loudness_mix", "protect": "protect",
          "filter_radius": "filter_radius", "resample_sr": "resample_sr", "vocoder_precision": "vocoder_precision",
          "encoder_precision": "encoder_precision", "shallow_diffusion": "shallow_diffusion",
          "only_diffusion": "only_diffusion", "k_step": "k_step", "diffusion_method": "diffusion_method",
          "diffusion_speedup": "diffusion_speedup", "second_encoding": "second_encoding", "enhance": "enhance",
          "enhancer_key": "enhancer_adaptive_key"}
# infer options that name local files or local resources: refused with --server (dest -> the flag to name)
LOCAL_ONLY = {"config": "-c/--config", "encoder": "--encoder", "encoder_name": "--encoder-name", "rmvpe": "--rmvpe",
              "cluster": "--cluster/--index", "crossfade_ratio": "--crossfade-ratio",
              "f0_threshold": "--f0-threshold", "device": "--device", "threads": "--threads",
              "diffusion_model": "--diffusion-model", "diffusion_config": "--diffusion-config",
              "diffusion_precision": "--diffusion-precision", "vocoder": "--vocoder"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """--server, --token, --parallel of `infer`."""
    g = p.add_argument_group("on a server (the REST API): every conversion runs there as a job")
    add_server_arguments(g, required=False, server_help="; every conversion runs there as a job, and -m is the "
                         "key of one of the server's voices (same inputs, outputs and names as a local batch)")
    g.add_argument("--parallel", type=int, default=DEFAULT_PARALLEL, metavar="N",
                   help=f"with --server: jobs in flight at once (default {DEFAULT_PARALLEL})")


def _defaults() -> dict[str, Any]:
    from . import infer_cli

    parser = argparse.ArgumentParser(add_help=False)
    infer_cli.add_arguments(parser)
    return {action.dest: action.default for action in parser._actions}


def api_options(args: argparse.Namespace) -> dict[str, Any]:
    """The API options of the infer flags that were given (the server's defaults hold for the rest); OptionError
    naming a local-only flag that was given."""
    defaults = _defaults()
    for dest, flag in LOCAL_ONLY.items():
        if getattr(args, dest) != defaults[dest]:
            raise OptionError(f"{flag} is a local option: with --server the voice's files and the engine's settings "
                              "are the server's. Leave it out, or convert locally (without --server).")
    return {name: getattr(args, dest) for dest, name in MAPPED.items() if getattr(args, dest) != defaults[dest]}


def _voice(client: SvcClient, server: str, model: str | None) -> dict[str, Any]:
    """The server's voice `model` (a key), or ModelError listing the server's voices."""
    voices = client.voices()
    listed = ", ".join(f"{v['key']} ({len(v.get('speakers') or [])} speakers)" for v in voices) or "none"
    found = [v for v in voices if v["key"] == model]
    if found:
        return found[0]
    if not model:
        raise ModelError(f"-m/--model is needed with --server: the key of one of the server's voices: {listed}.")
    if Path(model).exists() or Path(model).suffix.lower() in MODEL_SUFFIXES:
        raise ModelError(f"With --server, -m is the key of a voice the server knows, not a local file ('{model}'); "
                         f"upload the voice to the server first (the page or POST /api/v1/voices), or pick one "
                         f"of the server's voices: {listed}.")
    raise ModelError(f"The server at {server} has no voice '{model}'. Its voices: {listed}.")


def speakers_of(voice: dict[str, Any], given: list[str] | None) -> list[str]:
    """-s values as the voice's speaker names (a number not among the names is an index into them, as a speaker id);
    none: the voice's only speaker. SpeakerError lists the speakers."""
    names = list(voice.get("speakers") or [])
    listed = ", ".join(f"{name} ({number})" for number, name in enumerate(names))
    if given is None:
        if len(names) > 1:
            raise SpeakerError(f"The voice {voice['key']} has {len(names)} speakers: {listed}. Choose one with "
                               "-s NAME (or its id).")
        return names[:1] or [""]
    out = []
    for speaker in given:
        if speaker in names or not names:
            out.append(speaker)
        elif speaker.isdigit() and int(speaker) < len(names):
            out.append(names[int(speaker)])
        else:
            raise SpeakerError(f"The voice {voice['key']} has no speaker '{speaker}'. Its speakers: {listed}.")
    return out


def run_remote(args: argparse.Namespace) -> int:
    """`infer --server`: check everything, then run the batch on the server (see the module docstring)."""
    from .infer_cli import plan_jobs, refuse_unsupported

    refuse_unsupported(args)
    if args.parallel < 1:
        raise OptionError(f"--parallel must be 1 or more; got {args.parallel}.")
    options = api_options(args)
    given = args.speaker or ["speaker"]
    plan_jobs(args, given, given)  # inputs and outputs checked before the server is asked anything
    with connect(args) as client:
        voice = _voice(client, args.server, args.model)
        speakers = speakers_of(voice, args.speaker)
        jobs = plan_jobs(args, speakers, [s or voice["key"] for s in speakers])
        batch = RemoteBatch(client, args.server, voice["key"], options, jobs, args.parallel)
        try:
            return batch.run()
        except ApiError as err:
            raise explain(err, args.server, token_of(args)) from None


@dataclass
class Flight:
    """A submitted job of the batch."""

    number: int
    job: "Job"  # src, dst, speaker, transpose
    id: str
    shown: tuple = ()  # (status, stage, progress step) last printed


@dataclass
class RemoteBatch:
    """The planned jobs (infer_cli.Job) of one voice, run on the server at most `parallel` at a time."""

    client: SvcClient
    server: str
    model: str
    options: dict[str, Any]
    jobs: list["Job"]
    parallel: int
    failed: list[str] = field(default_factory=list)
    flying: list[Flight] = field(default_factory=list)
    unreadable: set[Path] = field(default_factory=set)
    unreachable_since: float | None = None  # monotonic time of the first poll in a row the server did not answer
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])  # Idempotency-Key prefix of this run

    def run(self) -> int:
        start = time.perf_counter()
        pending = deque(enumerate(self.jobs, 1))
        try:
            while pending or self.flying:
                while pending and len(self.flying) < self.parallel:
                    self._submit(*pending.popleft())
                if self.flying:
                    time.sleep(POLL_SECONDS)
                    self._look_all()
        except BaseException:  # Ctrl-C, or an error that stops the batch: cancel what this run left on the server
            self._cancel_flying()
            raise
        total = len(self.jobs)
        if total > 1:
            print(f"converted {total - len(self.failed)} of {total} in {time.perf_counter() - start:.1f} s "
                  f"on {self.server}")
        if self.failed:
            print(f"error: {len(self.failed)} of {total} conversions failed: {', '.join(sorted(set(self.failed)))}",
                  file=sys.stderr)
            return 2
        return 0

    # ------------------------------------------------------------------ steps
    def _say(self, number: int, text: str) -> None:
        prefix = f"[{number}/{len(self.jobs)}] " if len(self.jobs) > 1 else ""
        print(prefix + text, file=sys.stderr)

    def _fail(self, number: int, job: "Job", message: str, code: str) -> None:
        """A job's failure: raised for a single job (as the local CLI), else reported and the batch goes on."""
        if len(self.jobs) == 1:
            raise ApiError(code, message)
        self._say(number, f"error: {job.src.name}: {message} ({code}) (skipped)")
        self.failed.append(job.src.name)
        if code in FILE_CODES:
            self.unreadable.add(job.src)

    def _submit(self, number: int, job: "Job") -> None:
        if job.src in self.unreadable:  # already reported for another speaker
            self._say(number, f"{job.src}: skipped (could not be read above)")
            self.failed.append(job.src.name)
            return
        try:
            record = self.client.submit_conversion(job.src, idempotency_key=f"cli-{self.run_id}-{number}",
                                                   model=self.model, speaker=job.speaker, transpose=job.transpose,
                                                   **self.options)
        except ApiError as err:
            if err.code not in FILE_CODES:
                raise  # the request itself (options, voice, credentials): every job would fail the same way
            self._fail(number, job, err.message, err.code)
            return
        self.flying.append(Flight(number, job, record["id"]))
        self._say(number, f"{job.src} (speaker {job.speaker}, transpose {job.transpose:+g}): job {record['id']}")

    def _look_all(self) -> None:
        """One poll of every job in flight; a server that stops answering (a restart: its jobs are kept) is waited
        for up to UNREACHABLE_SECONDS."""
        import httpx

        try:
            for flight in list(self.flying):
                self._look(flight, self.client.job(flight.id))
        except httpx.TransportError as err:
            now = time.monotonic()
            if self.unreachable_since is None:
                self.unreachable_since = now
                print(f"the server at {self.server} does not answer ({type(err).__name__}); waiting for it",
                      file=sys.stderr)
            elif now - self.unreachable_since > UNREACHABLE_SECONDS:
                raise ServerError(f"The server at {self.server} has not answered for {UNREACHABLE_SECONDS:.0f} s "
                                  f"({type(err).__name__}: {err}).") from None
            return
        self.unreachable_since = None

    def _look(self, flight: Flight, record: dict[str, Any]) -> None:
        step = int(float(record.get("progress") or 0.0) / PROGRESS_STEP)
        shown = (record.get("status"), record.get("stage"), step)
        if shown != flight.shown and record.get("status") not in FINAL:
            self._say(flight.number, f"{flight.job.src.name}: {progress_words(record)}")
        flight.shown = shown
        if record.get("status") not in FINAL:
            return
        self.flying.remove(flight)
        try:
            raise_for_job(record)
        except ApiError as err:
            self._fail(flight.number, flight.job, err.message, err.code)
            return
        self._save(flight, record)

    def _save(self, flight: Flight, record: dict[str, Any]) -> None:
        """The job's audio result at the planned output path (re-encoded when its format differs)."""
        import soundfile as sf

        results = record.get("results") or []
        audio = next((r for r in results if str(r.get("media_type", "")).startswith("audio/")), None)
        if audio is None:
            self._fail(flight.number, flight.job, f"Job {flight.id} finished without an audio result.",
                       "result_not_found")
            return
        dst = Path(flight.job.dst)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if Path(audio["name"]).suffix.lower() == dst.suffix.lower():
            self.client.download(flight.id, audio["name"], dst)
        else:
            from .audio import write_audio

            with tempfile.TemporaryDirectory(prefix="svc-remote-") as tmp:
                got = self.client.download(flight.id, audio["name"], Path(tmp) / Path(audio["name"]).name)
                wav, rate = sf.read(str(got), dtype="float32")
                write_audio(dst, wav, rate)
        info = sf.info(str(dst))
        timings = record.get("timings") or {}
        if len(self.jobs) == 1:
            for stage, seconds in timings.items():
                print(f"{stage:<14}{float(seconds):>10.3f}")
        print(f"wrote {dst} ({info.frames / info.samplerate:.2f} s at {info.samplerate} Hz; job {flight.id}, "
              f"{float(timings.get('total', 0.0)):.1f} s on the server)")

    def _cancel_flying(self) -> None:
        """Cancel the jobs this run submitted that are not finished (best effort: the server may be gone)."""
        for flight in self.flying:
            try:
                self.client.cancel(flight.id)
                self._say(flight.number, f"{flight.job.src.name}: job {flight.id} cancelled")
            except Exception as err:  # noqa: BLE001 - keep cancelling the others
                self._say(flight.number, f"{flight.job.src.name}: could not cancel job {flight.id}: {err}")
        self.flying.clear()
