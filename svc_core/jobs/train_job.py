"""Run a training job ("train" kind) inside the job runner (svc_core.jobs.runner): the same Python functions as
`python -m svc_core preprocess` and `train` (prepare_dataset, TrainSettings + Trainer.fit, compress-model's
write_release), with progress, an ETA, cancellation between steps and a time budget.

arch "world": the WORLD starter-voice path instead (`prepare-world` + `train-world`: W_<step>.pth + config.json).
Stages: "preprocessing" (unpack the checked archive, cut clips, content features and f0; progress 0-15 %),
"training" (progress = step / steps, the ETA from the measured step rate, the trainer's loss lines in the log;
15-95 %), "packaging" (the release generator G_<step>.pth + config.json, the voice registered as an upload of the
job's owner, published to the blob store for other workers when the jobs run on the broker). Results: the release
G_<step>.pth, config.json, train.log and voice.json ({"voice": <key>, "label", "speakers", "step"}).
A cancelled run (or one past its time budget) keeps nothing: the run folder is scratch and is removed.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..train.trainer import Trainer
from . import errors
from .model import DONE, LOG_LINES, ResultFile
from .train_dataset import extract_dataset
from .train_params import ENCODER

log = logging.getLogger("svc_core.jobs")

ENV_MAX_SECONDS = "SVC_TRAIN_MAX_SECONDS"
DEFAULT_MAX_SECONDS = 24 * 3600.0  # a training job's time budget (the broker's actor time limit is 24 h too)
PREPROCESS_SHARE, TRAIN_SHARE = 0.15, 0.80  # of the progress bar; packaging is the rest
VAL_PER_SPEAKER = 1
KEEP_CHECKPOINTS = 2
MAX_LOG_LINES_PER_RUN = 40  # the trainer logs about this many loss lines per run (log_interval = steps / 40)
TINY_MODEL = {"inter_channels": 32, "hidden_channels": 32, "filter_channels": 64, "upsample_initial_channel": 64,
              "gin_channels": 32, "n_layers": 2}
TINY_TRAIN = {"segment_size": 8 * 512, "crop_frames": 128}
TINY_D_DIVISOR = 16  # the discriminator (not released) at 1/16 of its channels
RESULT_LOG, RESULT_VOICE = "train.log", "voice.json"
WORLD_LR = 1e-3  # train-world's default peak learning rate
WORLD_SIZES = {"starter": {}, "full": {}, "tiny": {"hidden": 32, "layers": 3, "crop_frames": 128}}  # WorldTrainSettings


class TrainingCancelled(Exception):
    """Raised between steps when the job is cancelled (or out of time)."""


@dataclass
class _Update:
    """What runner._Run._write_progress reads."""

    stage: str
    fraction: float
    eta: float | None
    log: str


@dataclass
class TrainingJob:
    """The control side of one running training: `cancel(reason)` (called by the runner's monitor thread) makes
    the run stop at its next check."""

    max_seconds: float = DEFAULT_MAX_SECONDS
    stop: threading.Event = field(default_factory=threading.Event)
    reason: str = ""
    started: float = field(default_factory=time.monotonic)

    def cancel(self, reason: str = "") -> None:
        self.reason = reason
        self.stop.set()

    def check(self) -> None:
        if self.stop.is_set():
            raise TrainingCancelled(self.reason or "cancelled")
        if time.monotonic() - self.started > self.max_seconds:
            raise errors.JobError(f"The training ran past its time budget of {self.max_seconds / 3600:g} h; ask "
                                  "for fewer steps.", errors.TIME_LIMIT)


class _LogCapture(logging.Handler):
    """The trainer's log lines (logger svc_core.train) of this thread -> the job's log and train.log."""

    def __init__(self, sink) -> None:
        super().__init__(logging.INFO)
        self.thread = threading.get_ident()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.sink(record.getMessage())


class _JobTrainer(Trainer):
    """Trainer calling `after_step(step, result)` after every optimizer step (progress, cancel, time budget)."""

    after_step: Any = None

    def train_step(self, batch):
        result = super().train_step(batch)
        if self.after_step is not None:
            self.after_step(self.step, result)
        return result


class TrainingRun:
    """One training job's work in `run.folder` (scratch/<job id>/), reported through `run` (runner._Run)."""

    def __init__(self, run: Any, archive: Path) -> None:
        self.run, self.archive = run, archive
        self.params = run.record.params
        self.folder: Path = run.folder
        self.lines: list[str] = []
        self.log_path = self.folder / RESULT_LOG
        self.control = TrainingJob(float(os.environ.get(ENV_MAX_SECONDS) or DEFAULT_MAX_SECONDS))
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------ reporting
    def say(self, line: str) -> None:
        self.lines = (self.lines + [line])[-LOG_LINES:]
        with open(self.log_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def report(self, stage: str, fraction: float, eta: float | None = None) -> None:
        self.run._write_progress(_Update(stage, fraction, eta, "\n".join(self.lines)))

    # ------------------------------------------------------------------ stages
    def preprocess(self) -> Path:
        from ..preprocess.runner import prepare_dataset
        from ..preprocess.settings import PreprocessSettings

        self.report("preprocessing: unpacking", 0.0)
        summary = extract_dataset(self.archive, self.folder / "recordings")
        self.say(f"dataset: {len(summary.speakers)} speaker(s) ({', '.join(summary.speakers)}), {summary.files} "
                 f"file(s), {summary.seconds:.1f} s of audio")
        weights = {"clips": 0.3, "features": 0.7}

        def progress(stage: str, done: int, total: int, item: str) -> None:
            self.control.check()
            before = 0.0 if stage == "clips" else weights["clips"]
            share = before + weights.get(stage, 0.0) * done / max(total, 1)
            self.report(f"preprocessing: {stage} {done}/{total}", PREPROCESS_SHARE * min(share, 1.0))

        settings = PreprocessSettings(self.folder / "recordings", self.folder / "dataset", encoder=ENCODER,
                                      f0=self.params["f0_predictor"], val_per_speaker=VAL_PER_SPEAKER, jobs=1)
        result = prepare_dataset(settings, progress)
        for line in result.text.splitlines():
            if line.strip():
                self.say(line)
        if result.report.get("cache_errors"):
            first = result.report["cache_errors"][0]
            raise errors.JobError(f"Preprocessing failed on {first['clip']}: {first['error']}",
                                  errors.INVALID_DATASET)
        if self.params["arch"] == "world":
            self._prepare_world(settings.output_dir)
        else:
            self._size_model(settings.output_dir)
        return settings.output_dir

    def _prepare_world(self, dataset: Path) -> None:
        """WORLD targets + perturbed content features of every clip (`python -m svc_core prepare-world`)."""
        from ..config import load_config
        from ..train.dataset import read_filelist
        from ..worldvoice.prepare import prepare_clips

        config = load_config(dataset / "config.json")
        clips = [c for name in ("train.txt", "val.txt") for c in read_filelist(dataset / "filelists" / name, dataset)]

        def progress(done: int, total: int) -> None:
            self.control.check()
            self.report(f"preprocessing: world features {done}/{total}", PREPROCESS_SHARE * done / max(total, 1))

        prepare_clips(clips, config.speech_encoder, None, jobs=1, progress=progress)
        self.say(f"WORLD features of {len(clips)} clip(s)")

    def _size_model(self, dataset: Path) -> None:
        size = self.params["model_size"]
        if size == "starter":
            from ..starter.model_config import apply_to_dataset

            apply_to_dataset(dataset)
        elif size == "tiny":
            path = dataset / "config.json"
            doc = json.loads(path.read_text(encoding="utf-8"))
            doc["model"].update(TINY_MODEL)
            doc["train"].update(TINY_TRAIN)
            path.write_text(json.dumps(doc, indent=2), encoding="utf-8")

    def train_world(self, dataset: Path) -> Path:
        """`python -m svc_core train-world` with a per-step progress report and cancel check."""
        from ..worldvoice.train import WorldTrainSettings, train_world

        p = self.params
        steps, out = p["steps"], self.folder / "run"
        size = WORLD_SIZES[p["model_size"]]
        settings = WorldTrainSettings(data=str(dataset), out=str(out), steps=steps, batch_size=p["batch_size"],
                                      learning_rate=p["learning_rate"] or WORLD_LR, eval_interval=p["eval_interval"],
                                      threads=0, **size)
        start = time.monotonic()

        def on_step(step: int) -> None:
            self.control.check()
            rate = step / max(time.monotonic() - start, 1e-6)
            self.report(f"training: step {step}/{steps}", PREPROCESS_SHARE + TRAIN_SHARE * step / steps,
                        (steps - step) / rate if rate > 0 else None)

        self.report("training: starting", PREPROCESS_SHARE)
        train_world(settings, self.say, on_step)
        return out

    def train(self, dataset: Path) -> Path:
        from ..config import load_config

        if self.params["arch"] == "world":
            return self.train_world(dataset)
        from ..train.settings import TrainSettings

        p = self.params
        steps = p["steps"]
        settings = TrainSettings.from_config(
            load_config(dataset / "config.json"), steps=steps, batch_size=p["batch_size"],
            learning_rate=p["learning_rate"], eval_interval=p["eval_interval"],
            log_interval=max(1, steps // MAX_LOG_LINES_PER_RUN), keep_best=KEEP_CHECKPOINTS, num_workers=0,
            max_eval_clips=1, d_width_divisor=TINY_D_DIVISOR if p["model_size"] == "tiny" else None)
        out = self.folder / "run"
        capture = _LogCapture(self.say)
        train_log = logging.getLogger("svc_core.train")
        train_log.addHandler(capture)
        if train_log.getEffectiveLevel() > logging.INFO:
            train_log.setLevel(logging.INFO)
        try:
            self.report("training: starting", PREPROCESS_SHARE)
            trainer = _JobTrainer(dataset, out, settings)
            start = {"t": time.monotonic(), "step": trainer.step}

            def after_step(step: int, result: Any) -> None:
                self.control.check()
                done = step - start["step"]
                rate = done / max(time.monotonic() - start["t"], 1e-6)
                eta = (steps - step) / rate if rate > 0 else None
                self.report(f"training: step {step}/{steps}", PREPROCESS_SHARE + TRAIN_SHARE * step / steps, eta)

            trainer.after_step = after_step
            summary = trainer.fit()
        finally:
            train_log.removeHandler(capture)
        self.say(f"trained {summary.step} step(s)" + (f", validation mel L1 {summary.val_mel:.4f}"
                                                      if summary.val_mel is not None else ""))
        return out

    def package(self, out: Path) -> tuple[list[Path], dict[str, Any]]:
        from ..release import write_release

        self.report("packaging", PREPROCESS_SHARE + TRAIN_SHARE)
        if self.params["arch"] == "world":
            return self._package_world(out)
        generators = sorted(out.glob("G_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
        if not generators:
            raise errors.JobError("The training wrote no checkpoint.", errors.INTERNAL, 500)
        release = self.folder / "release"
        release.mkdir()
        dst = release / generators[-1].name
        config = release / "config.json"
        config.write_bytes((out / "config.json").read_bytes())
        info = write_release(generators[-1], dst, config, half=True)
        self.say(f"release file {dst.name}: {info['bytes_out'] / 2**20:.1f} MB")
        voice = self._register([dst, config])
        return [dst, config], voice

    def _package_world(self, out: Path) -> tuple[list[Path], dict[str, Any]]:
        """The newest W_<step>.pth and its config.json, as train-world wrote them."""
        checkpoints = sorted(out.glob("W_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
        if not checkpoints:
            raise errors.JobError("The training wrote no checkpoint.", errors.INTERNAL, 500)
        release = self.folder / "release"
        release.mkdir()
        files = [release / checkpoints[-1].name, release / "config.json"]
        files[0].write_bytes(checkpoints[-1].read_bytes())
        files[1].write_bytes((out / "config.json").read_bytes())
        self.say(f"release file {files[0].name}: {files[0].stat().st_size / 2**20:.1f} MB")
        return files, self._register(files)

    def _register(self, files: list[Path]) -> dict[str, Any]:
        """The voice as an upload of the job's owner (published for remote workers on the broker)."""
        env = self.run.env
        library = env.jobs.library
        entry = library.add_upload(files, owner=self.run.record.owner, name=self.params["name"] or "trained voice")
        if type(env.store).__name__ == "RedisJobStore":  # broker mode: workers elsewhere fetch it from the blobs
            from .voice_sync import publish_voice

            try:
                publish_voice(env.blobs, entry)
            except BaseException:
                library.remove_upload(entry.key)
                raise
        self.say(f"voice registered: {entry.key} ({entry.label})")
        return {"voice": entry.key, "label": entry.label, "speakers": list(entry.speakers),
                "step": int(files[0].stem.split("_")[1])}

    # ------------------------------------------------------------------ the whole job
    def execute(self) -> Any:
        from .runner import _Monitor, media_type

        monitor = _Monitor(self.run.env, self.run.record.id, self.control)
        monitor.start()
        stage_start = time.monotonic()
        try:
            dataset = self.preprocess()
            self.timings["preprocessing"] = time.monotonic() - stage_start
            stage_start = time.monotonic()
            out = self.train(dataset)
            self.timings["training"] = time.monotonic() - stage_start
            self.control.check()
            stage_start = time.monotonic()
            files, voice = self.package(out)
            self.timings["packaging"] = time.monotonic() - stage_start
        except TrainingCancelled:
            shutil.rmtree(self.folder, ignore_errors=True)  # before the record says so: nothing is kept
            return self.run._fail(errors.CANCELLED, "The job was cancelled.", "\n".join(self.lines))
        except errors.JobError as err:
            if err.code == errors.TIME_LIMIT:
                shutil.rmtree(self.folder, ignore_errors=True)
                return self.run._fail(err.code, str(err), "\n".join(self.lines))
            raise
        finally:
            monitor.done.set()
        job_id = self.run.record.id
        results = []
        for path in files:
            key = f"results/{job_id}/{path.name}"
            results.append(ResultFile(path.name, key, self.run.env.blobs.put_file(key, path), media_type(path.name)))
        extra = {RESULT_LOG: self.log_path.read_bytes(), RESULT_VOICE: json.dumps(voice, indent=1).encode()}
        for name, data in extra.items():
            key = f"results/{job_id}/{name}"
            results.append(ResultFile(name, key, self.run.env.blobs.put_bytes(key, data), media_type(name)))
        return self.run._finish(DONE, "\n".join(self.lines[-20:]), stage="done", progress=1.0, results=results,
                                timings=self.timings, error=None)


def run_training(run: Any, paths: dict[str, Path]) -> Any:
    """Run the claimed training job of `run` (runner._Run) on its fetched dataset archive -> its final record."""
    return TrainingRun(run, paths["dataset"]).execute()
