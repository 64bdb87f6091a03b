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


def test_a_running_conversion_is_cancelled(jobs, clip, tmp_path, monkeypatch):
    from svc_core.jobs import runner

    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.3)  # the heartbeat is seen within this test
    record = jobs.service.submit("convert", "frank", dict(FAST), {"audio": long_clip(clip, tmp_path, 120.0)})
    current = wait_running(jobs.service, record.id)
    while current.status == RUNNING and current.heartbeat_at <= current.started_at:
        time.sleep(0.05)
        current = jobs.service.get(record.id)
    assert current.status == RUNNING, "the conversion finished before it could be cancelled"
    assert current.worker.startswith(jobs.env.name) and current.heartbeat_at > current.started_at
    flagged = jobs.service.cancel(record.id, owner="frank")
    assert flagged.cancel_requested and flagged.status == RUNNING
    final = jobs.service.wait(record.id, TIMEOUT)
    assert final.status == CANCELLED and final.error["code"] == errors.CANCELLED and not final.results
    assert final.finished_at is not None and final.progress < 1.0
    assert not jobs.env.blobs.exists(f"results/{record.id}/long_clip_starter_fest_ked_+0.wav")
    assert not any((jobs.root / "work" / "job-scratch").glob(f"{record.id}*"))


def test_an_unreadable_clip_fails_with_its_code_and_the_pool_goes_on(jobs, clip, tmp_path):
    bad = tmp_path / "noise.wav"
    bad.write_bytes(b"RIFF not really a wave file" * 50)
    failed = jobs.service.wait(jobs.service.submit("convert", "gina", dict(FAST), {"audio": bad}).id, TIMEOUT)
    assert failed.status == "failed" and failed.error["code"] == errors.UNSUPPORTED_AUDIO, failed.error
    assert failed.error["message"] and str(tmp_path) not in failed.error["message"]  # no server paths
    assert failed.log[-1].startswith("failed (unsupported_audio)")
    after = jobs.service.submit("convert", "gina", dict(FAST), {"audio": clip})
    assert jobs.service.wait(after.id, TIMEOUT).status == DONE


def test_a_job_over_its_time_budget_fails_as_time_limit(make_jobs_at, clip, tmp_path):
    from svc_core.ui.limits import JobLimits

    limits = JobLimits(seconds_per_audio_second=0.01, allowance_seconds=1.0, per_client=0)  # 2.2 s for 120 s
    tight = make_jobs_at(tmp_path / "tight", limits=limits)
    record = tight.service.submit("convert", "kim", dict(FAST), {"audio": long_clip(clip, tmp_path, 120.0)})
    final = tight.service.wait(record.id, TIMEOUT)
    tight.pool.stop()
    assert final.status == "failed" and final.error["code"] == errors.TIME_LIMIT, final.error
    assert "budget" in final.error["message"] or "time" in final.error["message"]


def test_a_cover_runs_with_every_stem_the_zip_and_a_summary(jobs, tmp_path):
    import json
    import zipfile

    from web.cover_songs import SEPARATOR, SPEAKER, write_song

    song = write_song(tmp_path / "my song.wav", seconds=2.0, seed=1)
    params = {"model": VOICE, "voice": {"speaker": SPEAKER, "f0_predictor": "pm"}, "separator": SEPARATOR,
              "formats": ["wav", "mp3"], "key": "manual", "transpose": 2}
    record = jobs.service.submit("cover", "hank", params, {"song": song})
    assert record.params["speaker"] == SPEAKER and record.params["formats"] == ["wav", "mp3"]
    assert record.inputs == {"song": f"inputs/{record.id}/my_song.wav"}  # the name made safe
    done = jobs.service.wait(record.id, TIMEOUT)
    assert done.status == DONE, done.error
    names = sorted(r.name for r in done.results)
    stems = [f"my_song_{s}.{f}" for s in ("original_vocals", "converted_vocals", "accompaniment", "mix")
             for f in ("wav", "mp3")]
    assert names == sorted(stems + ["my_song_cover.zip", "summary.json"])
    assert {"separate", "convert", "remix", "export", "queue_wait", "total"} <= set(done.timings)
    zipped, blobs = jobs.service.result(record.id, "my_song_cover.zip", owner="hank")
    with zipfile.ZipFile(blobs.get_file(zipped.key, tmp_path / "cover.zip")) as z:
        assert len(z.namelist()) == 8
    summary_file, _ = jobs.service.result(record.id, "summary.json", owner="hank")
    with blobs.open(summary_file.key) as handle:
        summary = json.load(handle)
    assert summary["transpose"] == 2 and summary["voice"] == VOICE and summary["speaker"] == SPEAKER
    assert summary["files"]["mix"] == {"wav": "my_song_mix.wav", "mp3": "my_song_mix.mp3"}
    mix, _ = jobs.service.result(record.id, "my_song_mix.wav", owner="hank")
    assert sf.info(str(blobs.get_file(mix.key, tmp_path / "mix.wav"))).frames == sf.info(str(song)).frames


def test_a_bad_cover_option_is_refused_before_anything_is_stored(jobs, tmp_path):
    from web.cover_songs import write_song

    song = write_song(tmp_path / "song.wav", seconds=1.0)
    before = stored_files(jobs.root)
    for params, error in (({"model": VOICE, "key": "sideways"}, OptionError),
                          ({"model": VOICE, "formats": ["wav", "exe"]}, OptionError),
                          ({"model": VOICE, "reverb": 7}, OptionError),
                          ({"model": VOICE, "voice": {"pitch": 1}}, UnknownField)):
        with pytest.raises(error):
            jobs.service.submit("cover", "ivy", params, {"song": song})
    assert stored_files(jobs.root) == before and not jobs.service.list(owner="ivy")


def test_a_restarted_server_resumes_a_job_its_dead_predecessor_was_running(make_jobs_at, clip, tmp_path):
    dead = make_jobs_at(tmp_path, start=False)
    record = dead.service.submit("convert", "jack", dict(FAST), {"audio": clip})
    lost = dead.service.submit("convert", "jack", dict(FAST), {"audio": clip})
    assert dead.env.store.claim(record.id, "gone:1:svc-job-0").status == RUNNING  # then the server died
    for attempt in range(3):  # this one was lost every time it ran
        dead.env.store.claim(lost.id, f"gone:{attempt}:svc-job-0", previous_dead=True)
    del dead

    fresh = make_jobs_at(tmp_path)  # new store, blob store and pool objects over the same folders
    done = fresh.service.wait(record.id, TIMEOUT)
    assert done.status == DONE and done.attempts == 2 and not done.worker.startswith("gone:")
    assert any(line.startswith("attempt 2 of 3") for line in done.log)
    given_up = fresh.service.wait(lost.id, TIMEOUT)
    assert given_up.status == "failed" and given_up.error["code"] == errors.WORKER_LOST
    fresh.pool.stop()

    later = make_jobs_at(tmp_path, start=False)  # restarted again: finished results are still served
    result, blobs = later.service.result(record.id, done.results[0].name, owner="jack")
    assert blobs.size(result.key) == result.size > 0


def test_two_pool_threads_run_jobs_of_several_owners_each_with_its_own_result(make_jobs_at, clip, tmp_path):
    pool2 = make_jobs_at(tmp_path, workers=2, start=False)
    submitted = [(owner, semitones, pool2.service.submit("convert", owner, dict(FAST, transpose=semitones),
                                                         {"audio": clip}))
                 for semitones, owner in enumerate(["lea", "max", "lea", "max"])]
    pool2.pool.submit(submitted[0][2])  # queued twice (and again by start): it still runs once
    pool2.pool.start()
    for owner, semitones, record in submitted:
        done = pool2.service.wait(record.id, TIMEOUT, owner=owner)
        assert done.status == DONE and done.attempts == 1 and done.owner == owner
        assert [r.name for r in done.results] == [f"speech_slt_{VOICE}_fest_ked_+{semitones}.wav"]
    workers = {pool2.service.get(r.id).worker for _, _, r in submitted}
    assert workers <= {f"{pool2.env.name}:svc-job-0", f"{pool2.env.name}:svc-job-1"}
    pool2.pool.stop()


def test_the_server_builds_its_embedded_service_from_its_settings(clip, tmp_path):
    from svc_core.jobs.blobs import LocalBlobStore
    from svc_core.jobs.embedded import EmbeddedPool
    from svc_core.jobs.service import service_from_settings
    from svc_core.jobs.store import FileJobStore
    from svc_core.ui.settings import STARTER_VOICES, AppSettings

    (tmp_path / "models").mkdir()
    settings = AppSettings(models_dir=tmp_path / "models", work_dir=tmp_path / "work", threads="1",
                           shipped_voices=(STARTER_VOICES,))
    service = service_from_settings(settings)
    try:
        assert isinstance(service.queue, EmbeddedPool) and service.queue.running
        assert isinstance(service.store, FileJobStore) and service.store.folder == tmp_path / "work" / "jobs"
        assert isinstance(service.blobs, LocalBlobStore) and service.blobs.root == tmp_path / "work" / "blobs"
        record = service.submit("convert", "local", dict(FAST), {"audio": clip})
        assert service.wait(record.id, TIMEOUT).status == DONE
    finally:
        service.close()


def test_inputs_and_results_can_live_in_s3(make_jobs_at, s3_server, clip, tmp_path):
    import boto3

    from svc_core.jobs.blobs import open_blob_store

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="svc-jobs")
    remote = make_jobs_at(tmp_path, start=False)
    remote.env.blobs = remote.service.blobs = open_blob_store("s3://svc-jobs/studio")
    remote.pool.start()
    record = remote.service.submit("convert", "olga", dict(FAST), {"audio": clip})
    done = remote.service.wait(record.id, TIMEOUT)
    remote.pool.stop()
    assert done.status == DONE, done.error
    result, blobs = remote.service.result(record.id, done.results[0].name, owner="olga")
    assert blobs.local_path(result.key) is None and blobs.size(result.key) == result.size
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=s3_server)
            .list_objects_v2(Bucket="svc-jobs")["Contents"]}
    assert keys == {f"studio/{result.key}"}  # the input went in too, and was removed when the job ended
    assert not (tmp_path / "blobs").exists() or not any((tmp_path / "blobs").rglob("*.wav"))


def test_a_worker_sees_a_voice_uploaded_after_it_started(make_jobs_at, clip, tmp_path):
    """The API server and a worker process share the work folder: an upload made through the server's library
    is found by the worker's own library (made before the upload) when a job asks for it."""
    from svc_core.jobs.service import JobService
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.settings import STARTER_VOICES

    worker = make_jobs_at(tmp_path)  # its library listed the (no) uploads at start
    server_library = ModelLibrary(tmp_path / "models", tmp_path / "work" / "uploads", shipped=(STARTER_VOICES,))
    voice = STARTER_VOICES
    entry = server_library.add_upload([voice / "W_5000.pth", voice / "config.json"],
                                      owner="pat")
    api = JobService(worker.env.store, worker.env.blobs, worker.pool, server_library)
    record = api.submit("convert", "pat", dict(FAST, model=entry.key), {"audio": clip})
    done = api.wait(record.id, TIMEOUT)
    worker.pool.stop()
    assert done.status == DONE, done.error
    assert done.results[0].name.startswith(f"speech_slt_{entry.key}_")
