"""A server shutdown with a running embedded job (real engine, starter voice): stop() asks the job to stop, waits
only a bounded time, and the job goes back to the queue without using an attempt; the next start runs it."""
from __future__ import annotations

import threading
import time

import soundfile as sf

from svc_core.jobs.model import DONE, QUEUED, RUNNING
from svc_core.jobs.runner import INTERRUPTED
from jobs.conftest import FAST

GUARD_SECONDS = 600.0  # hang guard of a real job on a loaded box; never asserted on


def long_clip(clip, folder, seconds: float = 60.0):
    """The example clip repeated to `seconds` (a conversion long enough to be caught running)."""
    import numpy as np

    wav, sr = sf.read(str(clip), dtype="float32")
    path = folder / "long_clip.wav"
    sf.write(str(path), np.tile(wav, int(np.ceil(seconds * sr / len(wav))))[:int(seconds * sr)], sr)
    return path


def poll(service, job_id, until, what: str):
    deadline = time.monotonic() + GUARD_SECONDS
    while True:
        record = service.get(job_id)
        if until(record):
            return record
        assert time.monotonic() < deadline, f"{what}: {record.status} {record.stage}"
        time.sleep(0.05)


def test_stop_returns_within_its_bound_although_a_step_ignores_it_and_the_job_is_requeued(make_jobs_at, clip,
                                                                                           tmp_path, monkeypatch):
    from svc_core.jobs import runner

    entered, release = threading.Event(), threading.Event()
    real = runner.ensure_voice

    def slow_step(*args, **kwargs):  # a step that cannot be interrupted (as a voice download could be)
        entered.set()
        release.wait(GUARD_SECONDS)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "ensure_voice", slow_step)
    server = make_jobs_at(tmp_path)
    record = server.service.submit("convert", "ann", dict(FAST), {"audio": clip})
    assert entered.wait(GUARD_SECONDS)
    still = server.service.close(wait_seconds=0.5)  # the bound: returns while the step still blocks
    assert still == [record.id] and server.service.get(record.id).status == RUNNING
    release.set()  # the step ends; the runner sees the stop before it starts converting
    back = poll(server.service, record.id, lambda r: r.status != RUNNING, "not requeued")
    assert back.status == QUEUED and back.attempts == 0 and back.worker is None and back.message == INTERRUPTED
    assert server.env.blobs.list_keys(f"inputs/{record.id}/")  # kept: it runs again
    monkeypatch.setattr(runner, "ensure_voice", real)

    restarted = make_jobs_at(tmp_path)
    done = restarted.service.wait(record.id, GUARD_SECONDS)
    restarted.pool.stop()
    assert done.status == DONE and done.attempts == 1, done.error
    assert INTERRUPTED in done.log


def test_a_converting_job_is_interrupted_at_shutdown_and_runs_again_at_the_next_start(make_jobs_at, clip,
                                                                                       tmp_path):
    from svc_core.api.setup import JobsSetup

    server = make_jobs_at(tmp_path)
    record = server.service.submit("convert", "bo", dict(FAST), {"audio": long_clip(clip, tmp_path)})
    running = poll(server.service, record.id, lambda r: r.finished or r.status == RUNNING and r.progress > 0,
                   "never ran")
    assert running.status == RUNNING, "the conversion finished before the shutdown"
    still = JobsSetup(server.service, "embedded").stop(wait_seconds=GUARD_SECONDS)  # the server exits
    assert still == []  # it stopped when asked (the engine checks between layers)
    back = server.service.get(record.id)
    assert back.status == QUEUED and back.attempts == 0 and back.progress == 0.0 and back.results == []
    assert back.log[-1] == INTERRUPTED and back.error is None

    restarted = make_jobs_at(tmp_path)
    done = restarted.service.wait(record.id, GUARD_SECONDS)
    restarted.pool.stop()
    assert done.status == DONE and done.attempts == 1 and done.results, done.error
    assert any(line.startswith("attempt 1 of 3") for line in done.log)
