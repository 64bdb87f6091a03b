"""`python -m svc_core infer ... --server URL` and `python -m svc_core jobs ...` against a real API server on the
starter voice (tests/api_support.py start_api): the local batch's inputs, names and checks, run as jobs; a bad voice
key, an unreadable input, the jobs command's round trip, a server that needs a token, and Ctrl-C cancelling the
jobs a run submitted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from api_support import JOB_GUARD_SECONDS, ROOT, SPEAKER, STARTER_KEY, start_api

from svc_core.api.tokens import TokenStore
from svc_core.cli import main
from svc_core.client import SvcClient

LENGTH_TOLERANCE = 0.05  # seconds: a converted file's length against its clip's
CLIP_LENGTHS = {"alpha": 1.0, "bravo": 1.5, "charlie": 2.0}  # seconds; distinct so a mixed-up result shows
TRANSPOSES = ("+0", "+2")


def seconds_of(path: Path) -> float:
    info = sf.info(str(path))
    return info.frames / info.samplerate


def write_clip(path: Path, seconds: float) -> Path:
    """The first `seconds` of examples/singing_slt.flac as a mono 16-bit wav at its own rate."""
    audio, rate = sf.read(ROOT / "examples" / "singing_slt.flac", dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)[: int(seconds * rate)]
    assert len(mono) == int(seconds * rate), "the example is shorter than the clip"
    sf.write(path, np.ascontiguousarray(mono), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch-in")
    for name, seconds in CLIP_LENGTHS.items():
        write_clip(folder / f"{name}.wav", seconds)
    return folder


def job_ids(api_url: str) -> set[str]:
    with SvcClient(api_url) as client:
        return {job["id"] for job in client.jobs(limit=200)}


def infer(api_url: str, *args: str) -> int:
    return main(["infer", "-m", STARTER_KEY, "-s", SPEAKER, "--server", api_url, *args])


def test_batch_of_three_clips_and_two_transposes(api_url, clips, tmp_path, capsys):
    before = job_ids(api_url)
    out = tmp_path / "out"
    # one transpose per -i item (the local batch's rule): the folder twice, +0 and +2
    status = infer(api_url, "-i", str(clips), str(clips), "-t", "0", "2", "-o", f"{out}/", "--parallel", "2")
    err = capsys.readouterr()
    assert status == 0, err.err
    expected = {f"{name}_{SPEAKER}_{t}.wav": seconds for name, seconds in CLIP_LENGTHS.items() for t in TRANSPOSES}
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, seconds in expected.items():
        assert abs(seconds_of(out / name) - seconds) < LENGTH_TOLERANCE, name
    assert "converted 6 of 6" in err.out
    assert "[6/6]" in err.err
    assert "running" in err.err or "queued" in err.err  # progress lines from the job records

    new = job_ids(api_url) - before
    assert len(new) == 6
    with SvcClient(api_url) as client:
        params = [client.job(job_id)["params"] for job_id in new]
    assert sorted(p["transpose"] for p in params) == [0, 0, 0, 2, 2, 2]
    assert {(p["model"], p["speaker"]) for p in params} == {(STARTER_KEY, SPEAKER)}


def test_flac_output_speaker_id_and_options(api_url, clips, tmp_path, capsys):
    out = tmp_path / "one.flac"
    status = main(["infer", "-m", STARTER_KEY, "-s", "3", "--server", api_url, "-i", str(clips / "alpha.wav"),
                   "-o", str(out), "-t", "1", "--noise-scale", "0.5", "--slice-db", "-35"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert sf.info(str(out)).format == "FLAC"
    assert abs(seconds_of(out) - CLIP_LENGTHS["alpha"]) < LENGTH_TOLERANCE
    job_id = captured.out.split("job ")[1].split(",")[0]
    with SvcClient(api_url) as client:
        params = client.job(job_id)["params"]
    assert params["speaker"] == "flite_slt"  # id 3 of the starter voice
    assert (params["transpose"], params["noise_scale"], params["slice_db"]) == (1, 0.5, -35)


def test_bad_voice_key_lists_voices_and_submits_nothing(api_url, clips, tmp_path, capsys):
    before = job_ids(api_url)
    status = main(["infer", "-m", "no-such-voice", "--server", api_url, "-i", str(clips), "-o", f"{tmp_path}/"])
    err = capsys.readouterr().err
    assert status == 2
    assert "no-such-voice" in err and STARTER_KEY in err and "voices" in err

    local = tmp_path / "G_100.pth"
    local.write_bytes(b"not a model")
    status = main(["infer", "-m", str(local), "--server", api_url, "-i", str(clips), "-o", f"{tmp_path}/"])
    err = capsys.readouterr().err
    assert status == 2 and "not a local file" in err and STARTER_KEY in err

    status = main(["infer", "-m", STARTER_KEY, "-s", "nobody", "--server", api_url, "-i", str(clips),
                   "-o", f"{tmp_path}/"])
    err = capsys.readouterr().err
    assert status == 2 and "nobody" in err and SPEAKER in err

    status = infer(api_url, "-i", str(clips), "-o", f"{tmp_path}/", "--encoder", "enc.pt")
    assert status == 2 and "--encoder is a local option" in capsys.readouterr().err
    assert job_ids(api_url) == before
    assert not list(tmp_path.glob("*.wav"))


def test_unreadable_input_is_reported_and_the_rest_converted(api_url, clips, tmp_path, capsys):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for name in ("alpha", "bravo"):
        (folder / f"{name}.wav").write_bytes((clips / f"{name}.wav").read_bytes())
    (folder / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    out = tmp_path / "out"
    status = infer(api_url, "-i", str(folder), "-o", f"{out}/")
    captured = capsys.readouterr()
    assert status == 2
    assert "broken.wav" in captured.err and "unsupported_audio" in captured.err
    assert "1 of 3 conversions failed: broken.wav" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [f"alpha_{SPEAKER}_+0.wav", f"bravo_{SPEAKER}_+0.wav"]
    assert "converted 2 of 3" in captured.out


def test_jobs_list_show_download(api_url, clips, tmp_path, capsys):
    out = tmp_path / "conv.wav"
    assert infer(api_url, "-i", str(clips / "bravo.wav"), "-o", str(out)) == 0
    wrote = capsys.readouterr().out
    job_id = wrote.split("job ")[1].split(",")[0]
    assert len(job_id) == 32

    assert main(["jobs", "list", "--server", api_url]) == 0
    listing = capsys.readouterr().out
    assert job_id in listing and "done" in listing

    assert main(["jobs", "show", job_id, "--server", api_url]) == 0
    shown = capsys.readouterr().out
    assert f"job {job_id}" in shown and "done" in shown and "result:" in shown and "transpose=0" in shown

    target = tmp_path / "fetched"
    assert main(["jobs", "download", job_id, "--out", str(target), "--server", api_url]) == 0
    files = list(target.iterdir())
    assert len(files) == 1 and files[0].read_bytes() == out.read_bytes()

    assert main(["jobs", "cancel", job_id, "--server", api_url]) == 0  # finished: stays done
    assert "done" in capsys.readouterr().out
    assert main(["jobs", "show", "0" * 32, "--server", api_url]) == 2
    assert "job_not_found" in capsys.readouterr().err


def test_server_with_a_token(tmp_path, clips, monkeypatch, capsys):
    monkeypatch.delenv("SVC_API_TOKEN", raising=False)
    server = start_api(tmp_path / "work")
    try:
        token = TokenStore.in_work_dir(server.work_dir).create("robot", ["read", "convert"])
        url = server.url
        assert main(["jobs", "list", "--server", url]) == 2
        err = capsys.readouterr().err
        assert "--token" in err and "SVC_API_TOKEN" in err

        status = main(["infer", "-m", STARTER_KEY, "-s", SPEAKER, "--server", url, "-i", str(clips / "alpha.wav"),
                       "-o", str(tmp_path / "a.wav")])
        assert status == 2 and "--token" in capsys.readouterr().err
        assert not (tmp_path / "a.wav").exists()

        assert main(["jobs", "list", "--server", url, "--token", "svc_" + "x" * 40]) == 2
        assert "refused the token" in capsys.readouterr().err

        monkeypatch.setenv("SVC_API_TOKEN", token)
        assert main(["infer", "-m", STARTER_KEY, "-s", SPEAKER, "--server", url, "-i", str(clips / "alpha.wav"),
                     "-o", str(tmp_path / "a.wav")]) == 0
        assert (tmp_path / "a.wav").is_file()
        assert main(["jobs", "list", "--server", url]) == 0
        assert "done" in capsys.readouterr().out
    finally:
        server.stop()


def test_ctrl_c_cancels_the_submitted_jobs(api_url, long_clip, tmp_path):
    """SIGINT to a running `infer --server` (a real process): the job running and the one queued are cancelled."""
    inputs = [tmp_path / "first.wav", tmp_path / "second.wav"]
    for path in inputs:
        path.write_bytes(long_clip.read_bytes())
    before = job_ids(api_url)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SVC_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "svc_core", "infer", "-m", STARTER_KEY, "-s", SPEAKER,
                             "--server", api_url, "-i", *map(str, inputs), "-o", f"{tmp_path / 'out'}/",
                             "--parallel", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + JOB_GUARD_SECONDS
        with SvcClient(api_url) as client:
            while True:  # until both are submitted and one runs
                mine = [job for job in client.jobs(limit=200) if job["id"] not in before]
                if len(mine) == 2 and any(job["status"] == "running" for job in mine):
                    break
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, mine
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=JOB_GUARD_SECONDS)
            assert proc.returncode == 130, err
            assert err.count("cancelled") == 2 and "interrupted" in err
            for job in mine:
                final = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
                assert final["status"] == "cancelled", final
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_batch_rides_through_a_server_restart(long_clip, tmp_path):
    """`python -m svc_core api` (a real process) stopped while a batch job runs and started again on the same work
    folder and port: the batch waits for it and writes its output (the job finished before the stop, or was re-run
    by the new server's pool)."""
    from app_process import app_env, free_port, wait_until_serving

    work, models, port = tmp_path / "work", tmp_path / "models", free_port()
    url = f"http://127.0.0.1:{port}"

    def start() -> subprocess.Popen:
        server = subprocess.Popen([sys.executable, "-m", "svc_core", "api", "--port", str(port), "--work-dir",
                                   str(work), "--models-dir", str(models), "--threads", "1"], cwd=ROOT,
                                  env=app_env(SVC_THREADS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        wait_until_serving(server, f"{url}/api/v1/health")
        return server

    server = start()
    out = tmp_path / "out.wav"
    cli = subprocess.Popen([sys.executable, "-m", "svc_core", "infer", "-m", STARTER_KEY, "-s", SPEAKER, "--server",
                            url, "-i", str(long_clip), "-o", str(out)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT), "SVC_THREADS": "1"},
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + JOB_GUARD_SECONDS
        with SvcClient(url) as client:
            while not any(job["status"] == "running" for job in client.jobs()):
                assert cli.poll() is None, cli.communicate()
                assert time.monotonic() < deadline, "the job did not start"
                time.sleep(0.1)
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=JOB_GUARD_SECONDS)
        server = start()
        _, err = cli.communicate(timeout=JOB_GUARD_SECONDS)
        assert cli.returncode == 0, err
        assert "does not answer" in err
        assert abs(seconds_of(out) - seconds_of(long_clip)) < LENGTH_TOLERANCE
    finally:
        for proc in (cli, server):
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
