"""JobService end to end with the real engine and the starter voice: a conversion through the embedded pool, its
progress, timings and result file; owner checks; a bad request refused before anything is stored; a running job
cancelled; a cover; a restarted server resuming a job its dead predecessor left running."""
from __future__ import annotations

import time

import pytest
import soundfile as sf

from svc_core.errors import OptionError, SpeakerError
from svc_core.jobs import errors
from svc_core.jobs.errors import JobNotFound, NotFinished, ResultNotFound, UnknownField, VoiceNotFound
from svc_core.jobs.model import CANCELLED, DONE, QUEUED, RUNNING
from jobs.conftest import FAST, VOICE

TIMEOUT = 600.0  # seconds a test waits for a job at most (a loaded CI box); never asserted on


def stored_files(root):
    return sorted(p.relative_to(root) for p in (root / "blobs").rglob("*") if p.is_file())


def test_a_conversion_runs_through_the_pool_with_progress_timings_and_its_result(jobs, clip, tmp_path):
    service = jobs.service
    record = service.submit("convert", "alice", dict(FAST, transpose=2), {"audio": clip})
    assert record.status == QUEUED and record.params["speaker"] == "fest_ked"  # "" -> the voice's first speaker
    assert record.params["transpose"] == 2.0 and record.inputs == {"audio": f"inputs/{record.id}/speech_slt.flac"}
    done = service.wait(record.id, TIMEOUT)
    assert done.status == DONE, done.error
    assert done.progress == 1.0 and done.stage == "done" and done.error is None and done.attempts == 1
    assert done.started_at >= done.created_at and done.finished_at >= done.started_at
    assert {"queue_wait", "total", "f0", "synthesizer"} <= set(done.timings)
    assert all(seconds >= 0 for seconds in done.timings.values())
    assert any("converting" in line for line in done.log) and done.message
    assert [r.name for r in done.results] == [f"speech_slt_{VOICE}_fest_ked_+2.wav"]
    result, blobs = service.result(record.id, done.results[0].name, owner="alice")
    assert result.media_type == "audio/wav" and result.size == blobs.size(result.key)
    out = blobs.get_file(result.key, tmp_path / "out.wav")
    info = sf.info(str(out))
    assert abs(info.duration - sf.info(str(clip)).duration) < 0.1
    assert not any((jobs.root / "work" / "job-scratch").glob(f"{record.id}*"))  # scratch cleaned up
    with pytest.raises(ResultNotFound):
        service.result(record.id, "other.wav", owner="alice")


def test_other_owners_do_not_see_a_job(jobs, clip):
    record = jobs.service.submit("convert", "alice", dict(FAST), {"audio": clip})
    for call in (lambda: jobs.service.get(record.id, owner="bob"), lambda: jobs.service.cancel(record.id, "bob"),
                 lambda: jobs.service.result(record.id, "x.wav", owner="bob")):
        with pytest.raises(JobNotFound):
            call()
    assert record.id not in {r.id for r in jobs.service.list(owner="bob")}
    assert record.id in {r.id for r in jobs.service.list(owner="alice")}
    assert jobs.service.wait(record.id, TIMEOUT).status == DONE


@pytest.mark.parametrize("params, files, error, code", [
    (dict(FAST, transpose=99), None, OptionError, errors.INVALID_OPTION),
    (dict(FAST, bogus=1), None, UnknownField, errors.UNKNOWN_FIELD),
    (dict(FAST, model="no-such-voice"), None, VoiceNotFound, errors.VOICE_NOT_FOUND),
    (dict(FAST, speaker="nobody"), None, SpeakerError, errors.SPEAKER_NOT_FOUND),
    (dict(FAST, noise_scale="loud"), None, OptionError, errors.INVALID_OPTION),
    (dict(FAST), {"song": None}, UnknownField, errors.UNKNOWN_FIELD),
])
def test_a_bad_request_is_refused_before_anything_is_stored(jobs, clip, params, files, error, code):
    before_jobs = [r.id for r in jobs.service.list()]
    before_files = stored_files(jobs.root)
    with pytest.raises(error) as caught:
        jobs.service.submit("convert", "carol", params, {"audio": clip} if files is None else {"song": clip})
    assert errors.error_code(caught.value) == code
    if error is UnknownField:
        assert "bogus" in str(caught.value) or "song" in str(caught.value)  # the field is named
    assert [r.id for r in jobs.service.list()] == before_jobs and stored_files(jobs.root) == before_files


def test_an_idempotency_key_gives_the_same_job_once(jobs, clip):
    first = jobs.service.submit("convert", "dave", dict(FAST), {"audio": clip}, idempotency_key="req-1")
    again = jobs.service.submit("convert", "dave", dict(FAST), {"audio": clip}, idempotency_key="req-1")
    assert again.id == first.id
    known = {r.id for r in jobs.service.list()}
    assert {p.name for p in (jobs.root / "blobs" / "inputs").iterdir()} <= known  # the second upload is gone
    assert jobs.service.wait(first.id, TIMEOUT).status == DONE
    assert len(jobs.service.list(owner="dave")) == 1


def test_a_result_of_an_unfinished_job_is_refused_and_a_queued_job_is_cancelled_at_once(make_jobs_at, clip,
                                                                                          tmp_path):
    idle = make_jobs_at(tmp_path, start=False)  # no worker: the job stays queued
    record = idle.service.submit("convert", "erin", dict(FAST), {"audio": clip})
    with pytest.raises(NotFinished) as caught:
        idle.service.result(record.id, "x.wav")
    assert caught.value.code == errors.NOT_FINISHED
    cancelled = idle.service.cancel(record.id, owner="erin")
    assert cancelled.status == CANCELLED and cancelled.error["code"] == errors.CANCELLED
    idle.pool.start()  # a pool that starts later does not run it
    assert idle.service.list() and idle.pool.env.store.unfinished() == []
    idle.pool.stop()


def long_clip(clip, folder, seconds: float = 60.0):
    """The example clip repeated to `seconds` (a conversion long enough to be caught running)."""
    import numpy as np

    wav, sr = sf.read(str(clip), dtype="float32")
    path = folder / "long_clip.wav"
    sf.write(str(path), np.tile(wav, int(np.ceil(seconds * sr / len(wav))))[:int(seconds * sr)], sr)
    return path


def wait_running(service, job_id):
    """Poll until the job converts (progress above 0) or ends."""
    while True:
        current = service.get(job_id)
        if current.status == RUNNING and current.progress > 0.0 or current.finished:
            return current
        time.sleep(0.05)


def test_a_running_conversion_is_cancelled(jobs, clip, tmp_path):
    record = jobs.service.submit("convert", "frank", dict(FAST), {"audio": long_clip(clip, tmp_path)})
    current = wait_running(jobs.service, record.id)
    assert current.status == RUNNING, "the conversion finished before it could be cancelled"
    flagged = jobs.service.cancel(record.id, owner="frank")
    assert flagged.cancel_requested and flagged.status == RUNNING
    final = jobs.service.wait(record.id, TIMEOUT)
    assert final.status == CANCELLED and final.error["code"] == errors.CANCELLED and not final.results
    assert final.finished_at is not None and not jobs.env.blobs.exists(f"results/{record.id}/x")
    assert not any((jobs.root / "work" / "job-scratch").glob(f"{record.id}*"))
