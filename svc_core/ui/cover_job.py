"""One song cover, run in a worker thread and reported as a stream of `CoverUpdate`s (the Cover tab's job).

The same rules as a conversion (jobs.py): the options are checked first, the job takes its place in the server's
fair queue (the conversion slots: a cover and a conversion never run at once beyond --concurrency), runs within its
time budget (limits.JobLimits.budget, scaled by COVER_COST for the separation and remix), and frees the slot however
it ends. Closing the update stream (Stop, gradio_client's `job.cancel()`, a closed page) cancels the job's
svc_core.cancel.Watch: the separator checks it per chunk and the engine between layers. The pipeline itself is
`svc_core.cover.run_cover`; its progress(stage, fraction, message) drives the bar (cover_progress.py).
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
from ..cover.request import DEFAULT_TARGET_LUFS
from ..errors import AudioError, OptionError, SvcError
from ..paths import safe_file_name
from . import backends
from .cover_choices import SeparationPlan, SeparatorChoice, check_formats, resolve_plan, separator_choices
from .cover_progress import CoverProgress, CoverRates, CoverWork
from .job_io import ConvertRequest, family_of, prune_results
from .job_pump import JobStream, PumpState, pump_events
from .jobs import JobContext, _JobWatch
from .limits import WAIT_POLL_SECONDS, client_key

log = logging.getLogger("svc_core.ui")

# A cover's time budget is a conversion's (limits.JobLimits.budget) times this: the conversion of the vocal, plus
# separating the song (the built-in network ~0.1-0.2 s per second of song on 2 cores, a community network up to
# ~1 s), plus key shift, remix and export (a few % each); see cover_progress.py's rates.
COVER_COST = 1.5
COVER_COST_WHY = "a cover (separation, conversion, remix)"
STOPPED = "Stopped: the cover was cancelled (the Stop button, an API cancel, or the page was closed)."
KEY_AUTO, KEY_MANUAL = "auto", "manual"
READ_FRACTION, VOICE_FRACTION = 0.01, 0.03  # milestones before the pipeline: song checked, voice found


@dataclass(frozen=True)
class CoverJobRequest:
    """What the Cover tab (or an API client) asks for. `voice` carries the voice options the Convert tab has
    (speaker, pitch tracker, noise scale, ...; its transpose is ignored: `key` / `transpose` decide it)."""

    song_path: str | None
    voice: ConvertRequest
    separator: str
    key: str = KEY_AUTO  # "auto": the pipeline's suggestion; "manual": `transpose`
    transpose: float = 0.0  # semitones, when key is "manual"
    shift_accompaniment: bool = False
    reverb: float = 0.0
    target_lufs: float = DEFAULT_TARGET_LUFS
    vocal_gain_db: float = 0.0
    accompaniment_gain_db: float = 0.0
    formats: tuple[str, ...] = ("wav",)
    make_zip: bool = True
    lead_model: str = ""  # a community model file ("<family>:<file>") splitting lead from backing vocals; "": none
    dereverb_model: str = ""  # a community model file removing the reverb from the vocals; "": none

    def checked(self) -> "CoverJobRequest":
        """The request with its values checked (OptionError naming the first one out of range): the cover's
        settings by svc_core.cover.CoverRequest's own check (one place for their ranges), the voice options by
        svc_core.options.RANGES."""
        from dataclasses import replace

        from ..cover import CoverRequest

        key = (self.key or KEY_AUTO).strip().lower()
        if key not in (KEY_AUTO, KEY_MANUAL):
            raise OptionError(f"key is '{self.key}'; it must be 'auto' (the suggested transpose) or 'manual' (the "
                              "transpose value).")
        checked = replace(self, key=key, formats=check_formats(self.formats))
        CoverRequest(b"", transpose=checked.transpose_value, vocal_gain_db=float(self.vocal_gain_db),
                     accompaniment_gain_db=float(self.accompaniment_gain_db), reverb=float(self.reverb),
                     target_lufs=float(self.target_lufs), formats=checked.formats)
        self.voice.options()  # the voice options' ranges
        return checked

    @property
    def transpose_value(self) -> float | str:
        """What the pipeline is given: "auto" or semitones."""
        return "auto" if self.key == KEY_AUTO else float(self.transpose)


@dataclass
class CoverOutcome:
    """A finished cover for the page: the pipeline's CoverResult and the song's length."""

    result: Any  # svc_core.cover.result.CoverResult
    song_seconds: float
    separator: str  # the separator passes that ran, in words (SeparationPlan.short)
    voice: str  # the voice's key
    speaker: str
    seconds: float  # wall time of the whole job
    threads: int = 0  # torch threads the job ran with


@dataclass
class CoverUpdate:
    """A snapshot of the cover for the page: the log so far, progress, and the outcome or error at the end."""

    log: str
    fraction: float
    stage: str
    elapsed: float
    eta: float | None
    outcome: CoverOutcome | None = None
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.outcome is not None or self.error is not None


@dataclass
class CoverContext:
    """What a cover needs from the server: the conversion jobs' context (voices, slots, limits, results folder)
    and where community separation models are."""

    jobs: JobContext
    separation_dir: Path | None = None  # None: registry.models_dir() ($SVC_SEPARATION_DIR or ./separation_models)
    rates: CoverRates = field(default_factory=CoverRates)

    def choices(self) -> list[SeparatorChoice]:
        return separator_choices(self.separation_dir)


class CoverJob:
    """`for update in CoverJob(request, context, client).run(): ...` streams one cover; closing the stream
    stops it; `stopped` is set once the worker has let go of its slot."""

    def __init__(self, request: CoverJobRequest, context: CoverContext, client: str = "local") -> None:
        self.request = request
        self.context = context
        self.client = client
        self._items: "queue.Queue[tuple]" = queue.Queue()
        self.watch = _JobWatch(self._items)  # tracking stays off: the pipeline's own progress drives the bar
        self.stopped = threading.Event()
        self._start = time.perf_counter()

    def cancel(self, reason: str = STOPPED) -> None:
        self.watch.cancel(reason)

    # ----------------------------------------------------------------- worker side
    def _say(self, text: str) -> None:
        self._items.put(("log", text))

    def _work(self) -> None:
        slots = self.context.jobs.slots
        ticket = None
        try:
            with cancel.watching(self.watch):
                request = self.request.checked()  # refused before the job takes a place
                plan = resolve_plan(request.separator, request.lead_model, request.dereverb_model,
                                    self.context.choices())
                ticket = slots.admit(self.client, self.watch)
                waited = slots.acquire(ticket, self.watch, self._waiting)
                if waited >= 1:
                    self._say(f"waited {waited:.1f} s for a free slot")
                self._items.put(("done", self._cover(request, plan)))
        except ConversionCancelled as err:
            self._items.put(("error", str(err) or STOPPED))
        except SvcError as err:
            self._items.put(("error", self._without_server_paths(str(err))))
        except MemoryError:
            self._items.put(("error", "The server ran out of memory; try a shorter song or another separator."))
        except Exception as err:  # a bug: one line for the page, the traceback for the server log
            log.exception("cover failed")
            self._items.put(("error", f"Internal error while making the cover ({type(err).__name__}: {err}). "
                                      "The server log has the details."))
        finally:
            if ticket is not None:
                slots.release(ticket)
            self.stopped.set()

    def _waiting(self, ahead: int) -> None:
        where = "next in line" if ahead == 0 else f"{ahead} ahead of you"
        self._items.put(("stage", 0.0, f"waiting for a free slot ({where})"))

    def _without_server_paths(self, message: str) -> str:
        """Messages may quote the uploaded song's server path; people only need its name."""
        for path in (self.request.song_path, str(self.context.jobs.results_dir) + os.sep):
            if path:
                folder = str(Path(path).parent) if not path.endswith(os.sep) else path.rstrip(os.sep)
                message = message.replace(folder + os.sep, "").replace(folder, "")
        return message

    def _cover(self, request: CoverJobRequest, plan: SeparationPlan) -> CoverOutcome:
        from .. import song_io

        ctx = self.context.jobs
        path = check_song_file(request.song_path, ctx.max_file_size, song_io.VIDEO_SUFFIXES)
        self._say(f"reading {path.name}")
        song, sr = song_io.read_song(path, max_seconds=min(song_io.COVER_MAX_SECONDS, ctx.max_audio_seconds))
        seconds = song.shape[-1] / sr
        self._say(f"song: {seconds:.2f} s at {sr} Hz")
        self._start_budget(seconds)
        self._items.put(("stage", READ_FRACTION, "loading the voice"))
        entry = ctx.library.get(request.voice.model)
        backend = backends.backend_for(entry, backends.TORCH)
        if ctx.cache.peek(entry.key, backend) is None:
            self._say(f"loading voice {entry.key} (first use)")
        voice, cached = ctx.cache.get(entry, backend)  # also sets this thread's torch threads (svc_core.threads)
        self._say("voice already in memory" if cached else f"voice loaded in {voice.load_seconds:.2f} s")
        import torch

        threads = torch.get_num_threads()  # this thread's, as VoiceCache.get chose them (svc_core.threads)
        self.watch.check()
        pair = f"{plan.key}|{entry.key}"
        work = CoverWork(plan.main.kind, len(request.formats), request.shift_accompaniment, len(plan.passes) - 1)
        self._items.put(("rates", self.context.rates.for_pair(pair, work)))
        cover_request = self._pipeline_request(request, plan, voice.svc, (song, sr), path.stem)
        del song
        self._acquire_voice(voice)
        try:
            self._say(f"separator: {plan.short}; voice {entry.key}, speaker "
                      f"{cover_request.speaker or 'its only one'}; key {request.key}"
                      + (f" ({request.transpose:+g})" if request.key == KEY_MANUAL else "") + f"; {threads} threads")
            self._items.put(("stage", VOICE_FRACTION, "separating"))
            self._items.put(("start", seconds))
            prune_results(ctx.results_dir)
            out_dir = ctx.results_dir / uuid.uuid4().hex
            from ..cover import run_cover

            started = time.perf_counter()
            result = run_cover(cover_request, out_dir, progress=self._progress, voice=voice.svc, cache=False)
        finally:
            voice.lock.release()
        self.context.rates.learn(pair, dict(result.stage_seconds), seconds)
        for note in getattr(result, "notes", None) or ():
            self._say(f"note: {self._without_server_paths(str(note))}")
        self._say(f"done: {seconds:.1f} s of song in {time.perf_counter() - started:.1f} s")
        return CoverOutcome(result, seconds, plan.short, entry.key, str(cover_request.speaker or ""),
                            time.perf_counter() - self._start, threads)

    def _start_budget(self, seconds: float) -> None:
        """The job's deadline: a conversion's budget for this much song, times COVER_COST, from now."""
        budget = self.context.jobs.limits.budget(seconds, COVER_COST, COVER_COST_WHY)
        self.watch.deadline = time.monotonic() + budget.seconds
        self.watch.deadline_reason = (
            f"Stopped after {budget.seconds:.4g} s: this cover used up its time budget ({budget.explanation}), so "
            "that others get a turn. Cover a shorter song (or a part of it), or ask the server's owner to raise "
            "--job-time-factor or --max-job-seconds.")
        self._say(f"time budget: {budget.seconds:.4g} s ({budget.explanation})")

    def _acquire_voice(self, voice: Any) -> None:
        """Take the voice's lock, waiting (cancellably, off the budget) while another job uses it."""
        if voice.lock.acquire(blocking=False):
            return
        self._say("waiting for another conversion with this voice to finish")
        self._items.put(("stage", READ_FRACTION, "waiting for the voice"))
        start = time.monotonic()
        while not voice.lock.acquire(timeout=WAIT_POLL_SECONDS):
            self.watch.check()
        if self.watch.deadline is not None:
            self.watch.deadline += time.monotonic() - start

    def _progress(self, stage: str, fraction: float, message: str = "") -> None:
        self._items.put(("progress", stage, float(fraction), str(message or "")))

    def _pipeline_request(self, request: CoverJobRequest, plan: SeparationPlan, svc: Any, song: tuple,
                          name: str) -> Any:
        """svc_core.cover.CoverRequest for this job (its settings checked: OptionError)."""
        from ..cover import CoverRequest

        has_f0 = bool(getattr(svc.model, "has_f0", True))
        options = request.voice.voice_options(request.voice.f0_predictor, family_of(svc), has_f0)
        options.pop("transpose", None)  # the cover's key decides it
        speaker = request.voice.speaker.strip() or None  # None: a single-speaker voice's only one
        lead, dereverb = plan.lead, plan.dereverb
        return CoverRequest(song, speaker=speaker, separator=plan.main.name, separator_model=plan.main.model_path,
                            lead_separator=lead and lead.name, lead_model=lead and lead.model_path,
                            dereverb_separator=dereverb and dereverb.name,
                            dereverb_model=dereverb and dereverb.model_path, options=options,
                            transpose=request.transpose_value, shift_accompaniment=request.shift_accompaniment,
                            vocal_gain_db=request.vocal_gain_db, accompaniment_gain_db=request.accompaniment_gain_db,
                            reverb=request.reverb,
                            target_lufs=request.target_lufs, formats=request.formats, zip=request.make_zip,
                            name=safe_file_name(name))

    # ----------------------------------------------------------------- streaming side
    def run(self) -> Iterator[CoverUpdate]:
        """Start the worker and yield a snapshot after each event (and every HEARTBEAT_SECONDS). Closing the
        generator (or abandoning it) stops the worker (job_pump.pump_events)."""
        worker = threading.Thread(target=self._work, name="svc-cover", daemon=True)
        state = PumpState(CoverProgress({}), self._start)
        self._shown_stage = ""  # the pipeline stage last written to the log
        handlers = {"start": lambda state, item: state.progress.start(item[1]), "progress": self._on_progress}
        yield from pump_events(JobStream(worker, self._items, self.watch, CoverUpdate, "outcome", STOPPED, handlers),
                               state)

    def _on_progress(self, state: PumpState, item: tuple) -> None:
        """The pipeline's progress(stage, fraction, message): the bar, the stage's words, a log line per stage."""
        _, name, fraction, message = item
        state.progress.stage(name, fraction)
        state.stage = f"{name}: {message}" if message else name
        if name != self._shown_stage:
            self._shown_stage = name
            state.stamp(f"stage {name}" + (f": {message}" if message else ""))


def check_song_file(path: str | None, max_bytes: int, video_suffixes: tuple[str, ...] = ()) -> Path:
    """The uploaded song exists, has an audio extension (or one of `video_suffixes`: its audio track is used) and
    is within the size limit; its content is checked when it is read (song_io.read_song)."""
    if not path:
        raise AudioError("Upload a song first.")
    p = Path(path)
    if not p.is_file():
        raise AudioError("The uploaded song is no longer on the server; upload it again.")
    accepted = tuple(dict.fromkeys((*AUDIO_SUFFIXES, *video_suffixes)))
    if p.suffix.lower() not in accepted:
        raise AudioError(f"'{p.name}' is not a song file we accept. Upload one of: "
                         f"{', '.join(s.lstrip('.') for s in accepted)}.")
    size = p.stat().st_size
    if size > max_bytes:
        raise AudioError(f"'{p.name}' is {size / 2**20:.1f} MB; the limit is {max_bytes / 2**20:.0f} MB.")
    return p


def start_cover(request: CoverJobRequest, context: CoverContext, gradio_request: Any = None) -> CoverJob:
    """The job for a Cover click or API call, counted under the client of `gradio_request` (None: "local")."""
    return CoverJob(request, context, client_key(gradio_request))

