"""One conversion, run in a worker thread and reported as a stream of `JobUpdate`s.

Everything a job touches is local to it (its request, its output folder, its update stream), so two people
converting at the same time never see each other's log or result. The options are checked first (one table:
svc_core.options.RANGES), then the job takes its place in the server's fair queue (limits.JobSlots), converts within
its time budget (limits.JobLimits.budget) and frees the slot however it ends. Closing the update stream (the page's
Stop button, gradio_client's `job.cancel()`, a closed page) stops the worker at its next checkpoint: the engine
checks between every layer of the models (svc_core.cancel), so within a fraction of a second. Engine errors
(`SvcError`) end the stream with their message as is; anything else ends it with one readable line while the
traceback goes to the server log.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from .. import cancel
from ..audio import AUDIO_SUFFIXES
from ..cancel import ConversionCancelled
from ..errors import OptionError, SvcError
from ..options import ConvertOptions
from ..paths import safe_file_name
from . import backends
from .eta import JobProgress, StageRates, Work, expected_seconds, job_rates
from .job_io import (ConvertRequest, JobResult, JobUpdate, check_audio_file, cost_factor, denoiser_calls,
                     family_of, prune_results, resolve_f0, rvc_words)
from .job_pump import HEARTBEAT_SECONDS, SKIP, JobStream, PumpState, pump_events
from .limits import WAIT_POLL_SECONDS, JobLimits, JobSlots, Ticket, client_key
from .models import ModelLibrary
from .voice_cache import VoiceCache

log = logging.getLogger("svc_core.ui")

ORPHAN_SECONDS = 60.0  # a worker whose update stream nobody has read for this long stops (the page is gone)
HOPELESS_FACTOR = 1.5  # a plan expected to take this many times the budget left is stopped before it starts
STOPPED = "Stopped: the conversion was cancelled (the Stop button, an API cancel, or the page was closed)."
# Milestones before the engine's plan (after it, eta.JobProgress weighs the work): read 1 %, voice loaded 4 %.
READ_FRACTION, VOICE_LOAD_FRACTION, LOADED_FRACTION = 0.01, 0.02, 0.04  # input read, voice loading, voice ready
CONVERT_START, CONVERT_SPAN = 0.05, 0.85  # the plot's "measuring the output's f0" milestone (at most: never back)


@dataclass
class JobContext:
    """What a job needs from the server: the voices, the loaded-voice cache, where results go, the limits."""

    library: ModelLibrary
    cache: VoiceCache
    results_dir: Path
    max_file_size: int
    max_audio_seconds: float = 30 * 60
    calibration_dir: Path | None = None  # audio for making a voice's int8 vocoder (None: the repo's examples/)
    limits: JobLimits = field(default_factory=JobLimits)
    slots: JobSlots | None = None  # None: made from `limits` (share one JobSlots between contexts to share slots)
    rates: StageRates = field(default_factory=StageRates)  # per-voice stage speeds, for the ETA

    def __post_init__(self) -> None:
        if self.slots is None:
            self.slots = JobSlots(self.limits)

    def stop_jobs_of(self, client: str, reason: str = STOPPED) -> int:
        """Stop every job (running or waiting) of `client` (limits.client_key) -> how many were asked to stop."""
        return self.slots.cancel_client(client, reason)


@dataclass
class _Events:
    """Channel from the worker to the streaming generator (a thread-safe queue of tuples)."""

    items: "queue.Queue[tuple]" = field(default_factory=queue.Queue)


class _JobWatch(cancel.Watch):
    """The job's svc_core.cancel.Watch: the engine's plan and steps go to the update queue (only while `tracking`:
    the conversion itself, not an int8 calibration run), and nobody reading the stream for ORPHAN_SECONDS stops it.
    """

    def __init__(self, items: "queue.Queue[tuple]") -> None:
        super().__init__()
        self.items = items
        self.tracking = False
        self.last_read = time.monotonic()
        self.voiced_seconds = 0.0  # of the conversion's plan
        self.rates: dict[str, float] = {}  # the voice's expected seconds per second of audio (eta.StageRates)

    def check(self) -> None:
        if not self.cancelled and time.monotonic() - self.last_read > ORPHAN_SECONDS:
            self.cancel(f"Stopped: nobody read this conversion's progress for {ORPHAN_SECONDS:.0f} s (the page "
                        "is gone).")
        super().check()

    def on_plan(self, pieces: list[tuple[float, bool]]) -> None:
        if self.tracking:
            self.voiced_seconds = sum(seconds for seconds, silent in pieces if not silent)
            self.items.put(("plan", pieces))
            self._refuse_hopeless(pieces)

    def _refuse_hopeless(self, pieces: list[tuple[float, bool]]) -> None:
        """Stop at once a conversion expected to take far longer than its budget allows (a long song on a server
        with a cap) instead of letting it hold the slot until the deadline."""
        if self.deadline is None or not self.rates:
            return
        expected = expected_seconds(self.rates, pieces)
        left = self.deadline - time.monotonic()
        if expected > HOPELESS_FACTOR * max(left, 0.0):
            self.cancel(f"Stopped before converting: this clip has {self.voiced_seconds:.0f} s of voice, which would "
                        f"take about {expected:.0f} s here at this voice's measured speed; {max(left, 0):.0f} s of "
                        "its time budget are left. Convert a shorter part, or ask the server's owner to raise "
                        "--max-job-seconds.")

    def on_step(self, piece: int, stage: str, fraction: float) -> None:
        if self.tracking:
            self.items.put(("step", piece, stage, fraction))


class ConversionJob:
    """`for update in ConversionJob(request, context, client).run(): ...` streams one conversion; `client`
    (limits.client_key of the request) is whose fair share it counts against. Closing the stream stops it;
    `stopped` is set once the worker thread has let go of everything (slot, voice)."""

    def __init__(self, request: ConvertRequest, context: JobContext, client: str = "local") -> None:
        self.request = request
        self.context = context
        self.client = client
        self._events = _Events()
        self.watch = _JobWatch(self._events.items)
        self.stopped = threading.Event()
        self._start = time.perf_counter()
        self._slot_start = time.monotonic()

    def cancel(self, reason: str = STOPPED) -> None:
        """Stop the job at its next checkpoint (any thread)."""
        self.watch.cancel(reason)

    # ----------------------------------------------------------------- worker side
    def _say(self, text: str) -> None:
        self._events.items.put(("log", text))

    def _work(self) -> None:
        ticket: Ticket | None = None
        try:
            with cancel.watching(self.watch):
                self.request.options()  # out-of-range values are refused before the job takes a place
                ticket = self.context.slots.admit(self.client, self.watch)
                waited = self.context.slots.acquire(ticket, self.watch, self._waiting)
                if waited >= 1:
                    self._say(f"waited {waited:.1f} s for a free conversion slot")
                self._slot_start = time.monotonic()
                self._events.items.put(("done", self._convert()))
        except ConversionCancelled as err:
            self._events.items.put(("error", str(err) or STOPPED))
        except SvcError as err:
            self._events.items.put(("error", self._without_server_paths(str(err))))
        except MemoryError:
            self._events.items.put(("error", "The server ran out of memory; try a shorter clip or a larger slice "
                                      "threshold."))
        except Exception as err:  # a bug: one line for the page, the traceback for the server log
            log.exception("conversion failed")
            self._events.items.put(("error", f"Internal error while converting ({type(err).__name__}: {err}). "
                                      "The server log has the details."))
        finally:
            if ticket is not None:
                self.context.slots.release(ticket)
            self.stopped.set()

    def _waiting(self, ahead: int) -> None:
        where = "next in line" if ahead == 0 else f"{ahead} ahead of you"
        self._events.items.put(("stage", 0.0, f"waiting for a free conversion slot ({where})"))

    def _without_server_paths(self, message: str) -> str:
        """Engine messages may quote the uploaded file's server path; people only need its name."""
        if self.request.audio_path:
            folder = str(Path(self.request.audio_path).parent)
            message = message.replace(folder + os.sep, "").replace(folder, "")
        return message

    def _convert(self) -> JobResult:
        from ..audio import read_audio, write_audio

        req, ctx = self.request, self.context
        path = check_audio_file(req.audio_path, ctx.max_file_size)
        f0_name = resolve_f0(req.f0_predictor)
        self._say(f"reading {path.name}")
        loaded = read_audio(path, max_seconds=ctx.max_audio_seconds)
        wav, sr = loaded.wav, loaded.sample_rate
        for note in loaded.notes:
            self._say(f"warning: {self._without_server_paths(note)}")
        self._say(f"input: {len(wav) / sr:.2f} s at {sr} Hz")
        entry = ctx.library.get(req.model)
        req, traits = self._second_stage_request(entry)
        self._start_budget(loaded.seconds, cost_factor(req, traits), "diffusion" if req.diffusing else "the enhancer")
        self._events.items.put(("stage", READ_FRACTION, "loading the voice"))
        backend = backends.backend_for(entry, req.backend)
        if backend != backends.check_backend(req.backend):
            self._say(f"{entry.key} is an ONNX file ({entry.model_path.name}): it runs on ONNX Runtime"
                      if entry.onnx_only else f"{entry.key} is a diffusion model alone: it runs in torch"
                      if entry.diffusion_only else f"{entry.key} is an RVC voice: it runs in torch here")
        if ctx.cache.peek(entry.key, backend) is None:
            extra = " and exporting it to ONNX" if backend == backends.ONNX and not entry.onnx_only else ""
            self._say(f"loading voice {entry.key} (first use{extra})")
            self._events.items.put(("stage", VOICE_LOAD_FRACTION, f"loading voice {entry.key}"))
        voice, cached = ctx.cache.get(entry, backend)
        self._say("voice already in memory" if cached else f"voice loaded in {voice.load_seconds:.2f} s")
        self.watch.check()
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
        rates_key = f"{entry.key}/{backend}"
        work = self._work_of(req, traits)
        self.watch.rates = job_rates(ctx.rates.for_voice(rates_key), work)
        self._events.items.put(("rates", self.watch.rates))
        self._acquire_voice(voice)
        try:
            self.watch.check()
            if req.vocoder_precision == "int8":
                self._prepare_int8_vocoder(svc)
            has_f0 = bool(getattr(svc.model, "has_f0", True))
            options = req.voice_options(f0_name, family_of(svc), has_f0)
            opts = ConvertOptions.from_kwargs(svc.option_defaults(), **options)  # what the engine will use
            pitch = (f"transpose {req.transpose:+g}, f0 {f0_name}" + (" (auto-f0)" if req.auto_f0 else "")
                     if has_f0 else "no pitch input")
            self._say(f"converting: speaker {speaker}, {pitch}" + self._second_stage_words(req, traits)
                      + rvc_words(svc, opts, has_f0))
            self._events.items.put(("stage", LOADED_FRACTION, "converting"))
            previous: dict[str, float] = {}

            def progress(fraction: float, message: str) -> None:
                now = svc.last_times.seconds
                parts = [f"{name} {now[name] - previous.get(name, 0.0):.2f} s" for name in now
                         if now[name] - previous.get(name, 0.0) >= 0.005 and name != "slice"]
                previous.clear()
                previous.update(now)
                self._events.items.put(("progress", fraction, message + (": " + ", ".join(parts) if parts else "")))

            self.watch.tracking = True
            try:
                out = svc.slice_inference(wav, sr, speaker, progress=progress, **options)
            finally:
                self.watch.tracking = False
            times = svc.last_times
            self._events.items.put(("converted",))
        finally:
            voice.lock.release()
        self._events.items.put(("stage", CONVERT_START + CONVERT_SPAN, "measuring the output's f0"))
        from .plots import f0_comparison

        out_rate = int(svc.output_rate(opts)) if hasattr(svc, "output_rate") else svc.sample_rate
        with times.stage("f0 plot"):  # a fast tracker on both sides (plots.py): ~0.2 s for 40 s
            plot = f0_comparison(wav, sr, out, out_rate, float(req.transpose))
        self._say(f"f0 plot: {times.seconds['f0 plot']:.2f} s")
        prune_results(ctx.results_dir)
        out_dir = ctx.results_dir / uuid.uuid4().hex
        name = "_".join(safe_file_name(part) for part in (path.stem, entry.key, speaker)) + f"_{req.transpose:+g}.wav"
        with times.stage("write"):
            write_audio(out_dir / name, out, out_rate)
        self._say(f"done: {times.audio_seconds:.2f} s of audio in {times.total:.2f} s (real-time factor "
                  f"{times.rtf:.3f})")
        ctx.rates.learn(rates_key, times.seconds, self.watch.voiced_seconds, times.audio_seconds, work)
        return JobResult(out_dir / name, out_rate, times, None if cached else voice.load_seconds, f0_name,
                         str(getattr(svc.encoder, "name", "?")), plot, engine)

    def _second_stage_request(self, entry: Any) -> tuple[ConvertRequest, Any]:
        """The request as this voice runs it, and its diffusion traits (None without a diffusion model): a
        diffusion-only voice always renders from noise; diffusion asked of a voice without a model is refused."""
        from dataclasses import replace

        from .diffusion_files import diffusion_traits, vocoder_available

        req = self.request
        if req.enhance and not req.diffusing and not vocoder_available(entry.diffusion, entry.vocoder_path):
            raise OptionError(f"The enhancer needs the NSF-HiFiGAN mel vocoder, and none is found for {entry.key} on "
                              "this server: turn it off, or put openvpi's nsf_hifigan files (model + config.json) "
                              "in the voice folder's nsf_hifigan/ or the server's pretrain/nsf_hifigan/.")
        if entry.diffusion is None:
            if req.diffusing:
                raise OptionError(f"The voice {entry.key} has no diffusion model, so shallow diffusion and "
                                  "only-diffusion are not available for it: turn them off, or add its diffusion "
                                  "model (diffusion/model_*.pt + config.yaml in the voice folder, or upload them "
                                  "with the voice).")
            return req, None
        if entry.diffusion_only and not req.only_diffusion:
            req = replace(req, only_diffusion=True, shallow_diffusion=False)
            self._say(f"{entry.key} is a diffusion model alone: it renders the voice from noise (only-diffusion)")
        return req, diffusion_traits(entry.diffusion)

    @staticmethod
    def _calls(req: ConvertRequest, traits: Any) -> int:
        if not req.diffusing or traits is None:
            return 0
        k_step = traits.max_k_step if req.only_diffusion else req.k_step
        return denoiser_calls(k_step, req.diffusion_speedup or traits.speedup, req.diffusion_method or traits.method)

    def _work_of(self, req: ConvertRequest, traits: Any) -> Work:
        return Work(synthesizer=not req.only_diffusion, denoiser_calls=self._calls(req, traits),
                    mel_vocoder=req.diffusing or req.enhance)

    def _second_stage_words(self, req: ConvertRequest, traits: Any) -> str:
        """The log's words for the second stage, e.g. ", shallow diffusion k_step 100, dpm-solver++ speedup 10 (10
        denoiser calls per piece)", ", NSF-HiFiGAN enhancer (adaptive key +2)"; "" for none."""
        if req.diffusing and traits is not None:
            method = req.diffusion_method or traits.method
            speedup = 1 if method == "ddpm" else (req.diffusion_speedup or traits.speedup)
            what = "only-diffusion" if req.only_diffusion else f"shallow diffusion k_step {req.k_step}"
            return (f", {what}, {method} speedup {speedup} ({self._calls(req, traits)} denoiser calls per piece)"
                    + (", second encoding" if req.second_encoding and not req.only_diffusion else ""))
        if req.enhance:
            return f", NSF-HiFiGAN enhancer (adaptive key {req.enhancer_adaptive_key:+g})"
        return ""

    def _start_budget(self, audio_seconds: float, cost: float = 1.0, why: str = "") -> None:
        """Give the job its deadline: the budget for this much audio, counted from when it got its slot."""
        budget = self.context.limits.budget(audio_seconds, cost, why)
        self.watch.deadline = self._slot_start + budget.seconds
        self.watch.deadline_reason = (
            f"Stopped after {budget.seconds:.4g} s: this conversion used up its time budget ({budget.explanation}),"
            " so that others get a turn. Try a shorter clip, or ask the server's owner to raise --job-time-factor "
            "or --max-job-seconds.")
        self._say(f"time budget: {budget.seconds:.4g} s ({budget.explanation})")

    def _acquire_voice(self, voice: Any) -> None:
        """Take the voice's lock, waiting (cancellably, off the budget) while another job converts with it."""
        if voice.lock.acquire(blocking=False):
            return
        self._say("waiting for another conversion with this voice to finish")
        self._events.items.put(("stage", LOADED_FRACTION, "waiting for the voice"))
        start = time.monotonic()
        while not voice.lock.acquire(timeout=WAIT_POLL_SECONDS):
            if self.watch.cancelled:
                self.watch.check()
        if self.watch.deadline is not None:
            self.watch.deadline += time.monotonic() - start

    def _prepare_int8_vocoder(self, svc: Any) -> None:
        """Make the voice's int8 vocoder on first use (ONNX backend; the torch engine refuses int8 itself)."""
        path = getattr(svc, "int8_path", None) or getattr(getattr(svc, "model", None), "int8_path", None)  # RVC ONNX
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
        """Start the worker and yield a snapshot after each event (and every HEARTBEAT_SECONDS). Closing the
        generator (or abandoning it) stops the worker (job_pump.pump_events)."""
        worker = threading.Thread(target=self._work, name="svc-convert", daemon=True)
        state = PumpState(JobProgress(self.context.rates.defaults), self._start)
        handlers = {"plan": _on_plan, "step": _on_step, "progress": _on_progress, "converted": _on_converted}
        yield from pump_events(JobStream(worker, self._events.items, self.watch, JobUpdate, "result", STOPPED,
                                         handlers), state)


# ----------------------------------------------------------------- a conversion's own events (job_pump handlers)
def _on_plan(state: PumpState, item: tuple) -> None:
    state.progress.plan(item[1])


def _on_step(state: PumpState, item: tuple) -> object:
    state.progress.step(item[1], item[2], item[3])
    state.stage = f"converting: {item[2]}" + (f", piece {item[1] + 1}" if state.progress.pieces > 1 else "")
    if time.monotonic() - state.last_yield < HEARTBEAT_SECONDS / 2:
        return SKIP  # steps come fast (one per vocoder chunk): the next snapshot carries them
    return None


def _on_progress(state: PumpState, item: tuple) -> None:
    state.stage = f"converting {item[2].split(':')[0]}"
    state.stamp(item[2])


def _on_converted(state: PumpState, item: tuple) -> None:
    state.progress.converted()


def start_job(request: ConvertRequest, context: JobContext, gradio_request: Any = None) -> ConversionJob:
    """The job for a Convert click or API call: its fair share is counted under the client of `gradio_request`
    (the handler's `gr.Request` parameter; None: "local"). Iterate `.run()` for the updates."""
    return ConversionJob(request, context, client_key(gradio_request))


__all__ = ["AUDIO_SUFFIXES", "STOPPED", "ConversionJob", "ConvertRequest", "JobContext", "JobResult", "JobUpdate",
           "check_audio_file", "resolve_f0", "start_job"]
