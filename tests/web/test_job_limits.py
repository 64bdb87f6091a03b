"""Job limits through gradio_client on a real server and engine: option ranges, inputs too short or truncated, the
time budget, the per-client fair share, and cancellation that frees the slot."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_factories import sung_phrase

API = "/convert"
SR = 44100


def convert(client, clip, **extra):
    from gradio_client import handle_file

    args = dict(audio=handle_file(str(clip)), model="demo-voice", speaker="alto", transpose=0, f0_predictor="pm")
    args.update(extra)
    return client.predict(**args, api_name=API)


def submit(client, clip, **extra):
    from gradio_client import handle_file

    args = dict(audio=handle_file(str(clip)), model="demo-voice", speaker="alto", transpose=0, f0_predictor="pm")
    args.update(extra)
    return client.submit(**args, api_name=API)


def new_client(srv):
    from gradio_client import Client

    return Client(srv.url, verbose=False, analytics_enabled=False,
                  download_files=str(Path(srv.state.work_dir) / "client-downloads"))


def wait_for(condition, limit: float = 120.0) -> None:
    """Poll until condition() holds (a guard against hanging, not a timing assertion)."""
    end = time.monotonic() + limit
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.05)


def app_error(call) -> str:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        call()
    return str(err.value)


def own_examples(tmp_path: Path) -> Path:
    """An empty examples folder: closing an own server deletes the files Gradio cached for it, which must not
    include the session server's copies (Gradio keeps files by content hash)."""
    folder = tmp_path / "no-examples"
    folder.mkdir()
    return folder


def test_clip_seconds_too_small_is_refused_with_its_range(client, web_voice):
    message = app_error(lambda: convert(client, web_voice.clip, clip_seconds=0.01))
    assert message == "clip_seconds is 0.01 s; it must be 0 (off) or 2 to 60 s."


def test_a_one_sample_wav_is_refused(client, tmp_path):
    path = tmp_path / "one_sample.wav"
    sf.write(path, np.array([0.5], np.float32), SR, subtype="PCM_16")
    message = app_error(lambda: convert(client, path))
    assert "one_sample.wav is only 1 sample" in message and "shortest clip we convert is 0.25 s" in message


def test_a_truncated_wav_converts_with_a_warning(client, tmp_path):
    whole = tmp_path / "whole.wav"
    sf.write(whole, 0.93 * sung_phrase(4.0, seed=5), SR, subtype="PCM_16")
    cut = tmp_path / "cut_short.wav"
    cut.write_bytes(whole.read_bytes()[:44 + int(1.5 * SR) * 2])  # the header still promises 4 s
    audio, log, *_ = convert(client, cut)
    assert "warning: 'cut_short.wav' ends early: 1.5 of 4.0 s could be read" in log
    assert abs(sf.info(audio).duration - 1.5) < 0.05


def test_a_job_over_its_budget_is_stopped_and_frees_its_slot(web_voice, make_server, tmp_path):
    clip = tmp_path / "budget.wav"
    sf.write(clip, 0.91 * sung_phrase(4.0, seed=21), SR, subtype="PCM_16")
    srv = make_server(web_voice, tmp_path / "work", examples_dir=own_examples(tmp_path),
                      job_time_allowance=0.05, job_time_factor=0.0)
    try:
        message = app_error(lambda: convert(new_client(srv), clip))
        assert message.startswith("Stopped after 0.05 s: this conversion used up its time budget (0.05 s + 0 s "
                                  "per second of audio for this 4.0 s clip), so that others get a turn.")
        wait_for(lambda: srv.state.jobs.slots.running == 0 and srv.state.jobs.slots.waiting == 0)
        assert not list((srv.state.work_dir / "results").glob("*/*.wav"))
    finally:
        srv.demo.close()


@pytest.fixture(scope="module")
def fair_server(web_voice, make_server, tmp_path_factory):
    """One slot, one job per client; a 40 s clip so a conversion is still running when the test acts."""
    root = tmp_path_factory.mktemp("fair")
    clip = root / "long_phrase.wav"
    sf.write(clip, 0.89 * sung_phrase(40.0, seed=33), SR, subtype="PCM_16")
    srv = make_server(web_voice, root / "work", examples_dir=own_examples(root), concurrency=1, queue_size=4,
                      max_jobs_per_client=1)
    srv.clip = clip
    yield srv
    srv.demo.close()


def _start_long_job(srv, client):
    job = submit(client, srv.clip, slice_db=-100)  # one long piece: the synthesis runs in many vocoder chunks
    wait_for(lambda: any("converting: vocoder" in str(out[-1]) for out in job.outputs()))
    return job


def test_one_client_cannot_queue_a_second_job(fair_server):
    client = new_client(fair_server)
    running = _start_long_job(fair_server, client)
    try:
        message = app_error(lambda: convert(client, fair_server.clip))
        assert message.startswith("You already have 1 conversion running or queued (1 running, 0 waiting); the "
                                  "limit is 1 per person")
        other = submit(new_client(fair_server), fair_server.clip)  # another person still gets in line
        wait_for(lambda: any("waiting for a free conversion slot (next in line)" in str(out[-1])
                             for out in other.outputs()))
        assert fair_server.state.jobs.slots.waiting == 1
        other.cancel()
    finally:
        running.cancel()
    wait_for(lambda: fair_server.state.jobs.slots.running == 0 and fair_server.state.jobs.slots.waiting == 0)


def test_gradio_client_cancel_stops_the_worker_and_frees_the_slot(fair_server):
    slots = fair_server.state.jobs.slots
    job = _start_long_job(fair_server, new_client(fair_server))
    assert slots.running == 1
    cancelled_at = time.monotonic()
    job.cancel()
    wait_for(lambda: slots.running == 0, limit=30.0)  # the worker let go of its slot
    stop_seconds = time.monotonic() - cancelled_at
    print(f"worker stopped {stop_seconds:.2f} s after job.cancel()")
    assert not list((fair_server.state.work_dir / "results").glob("*/*.wav"))  # it never finished
    # the slot is really free: the next conversion runs at once (no waiting in the log)
    audio, log, *_ = convert(new_client(fair_server), fair_server.clip, clip_seconds=10)
    assert "waited" not in log and "done:" in log
