"""Training runs through the real REST server (tests/api_support.py): a tiny 2-speaker dataset zipped in the test,
a few steps of a tiny so-vits model end to end (preprocessing with the shipped phonevec256 encoder, training,
packaging), the new voice converting a clip through /conversions; bad archives refused with their codes and
nothing stored; a cancelled run ends cancelled and keeps nothing."""
from __future__ import annotations

import io
import json
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from api_support import JOB_GUARD_SECONDS
from train_job_factories import CLIP_SECONDS, SPEAKERS, SR, TINY, make_dataset, wav_bytes
from svc_core.client import SvcClient

@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("trainsets") / "voices.zip")


def stored_inputs(api) -> list[Path]:
    folder = api.work_dir / "blobs" / "inputs"
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def test_training_end_to_end_then_the_new_voice_converts(api, dataset, clip, tmp_path):
    with SvcClient(api.url) as client:
        job = client.submit_training(dataset, name="test choir", steps=4, eval_interval=2, **TINY)
        assert job["kind"] == "train" and job["status"] in ("queued", "running")
        stages = set()
        for event in client.events(job["id"], read_timeout=JOB_GUARD_SECONDS):
            if event.job:
                stages.add(event.job["stage"].split(":")[0])
        done = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
        assert done["status"] == "done", done.get("error") or done["log"][-10:]
        assert {"preprocessing", "training"} <= stages
        names = {r["name"] for r in done["results"]}
        assert {"config.json", "train.log", "voice.json", "G_4.pth"} <= names, names
        assert set(done["timings"]) >= {"preprocessing", "training", "packaging"}
        voice = json.loads(client.download(job["id"], "voice.json", tmp_path / "voice.json").read_text())
        assert voice["step"] == 4 and sorted(voice["speakers"]) == list(SPEAKERS)
        log_text = client.download(job["id"], "train.log", tmp_path / "train.log").read_text()
        assert "loss" in log_text or "mel" in log_text
        config = json.loads(client.download(job["id"], "config.json", tmp_path / "config.json").read_text())
        assert sorted(config["spk"]) == list(SPEAKERS)

        listed = {v["key"] for v in client.voices()}
        assert voice["voice"] in listed
        converted = client.convert(clip, tmp_path / "converted.wav", model=voice["voice"], speaker="bass")
        assert converted["status"] == "done"
        audio, rate = sf.read(tmp_path / "converted.wav")
        assert rate > 0 and len(audio) > 0 and np.isfinite(audio).all()


def test_world_training_gives_a_world_voice_that_converts(api, dataset, clip, tmp_path):
    with SvcClient(api.url) as client:
        job = client.submit_training(dataset, arch="world", name="world choir", steps=3, eval_interval=3, **TINY)
        done = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
        assert done["status"] == "done", done.get("error") or done["log"][-10:]
        assert {"W_3.pth", "config.json", "train.log", "voice.json"} <= {r["name"] for r in done["results"]}
        voice = json.loads(client.download(job["id"], "voice.json", tmp_path / "voice.json").read_text())
        assert client.voice(voice["voice"])["family"] == "world"
        converted = client.convert(clip, tmp_path / "world.wav", model=voice["voice"], speaker=SPEAKERS[1])
        assert converted["status"] == "done"
        audio, _ = sf.read(tmp_path / "world.wav")
        assert len(audio) > 0 and np.isfinite(audio).all()


def _bad_members() -> dict[str, tuple[dict[str, bytes], str]]:
    good = wav_bytes(CLIP_SECONDS, 1)
    return {
        "path escape": ({"alto/clip0.wav": good, "../evil.wav": good}, "unsafe_file"),
        "not audio": ({"alto/clip0.wav": good, "alto/notes.txt": b"hello"}, "unsupported_audio"),
        "audio suffix, not audio": ({"alto/clip0.wav": good, "alto/fake.wav": b"RIFF nonsense" * 10},
                                    "unsupported_audio"),
        "too deep": ({"voices/alto/clip0.wav": good}, "invalid_dataset"),
        "too short": ({"alto/clip0.wav": good}, "invalid_dataset"),
        "empty": ({}, "invalid_dataset"),
    }


@pytest.mark.parametrize("case", sorted(_bad_members()))
def test_bad_archives_are_refused_and_nothing_is_stored(api, case, tmp_path):
    members, code = _bad_members()[case]
    archive = make_dataset(tmp_path / "bad.zip", members)
    before = stored_inputs(api)
    with api.client() as http:
        jobs_before = http.get("/jobs").json()["jobs"]
        response = http.post("/trainings", files={"dataset": ("bad.zip", archive.read_bytes())},
                             data={"options": json.dumps(TINY)})
        assert response.status_code in (400, 413), response.text
        assert response.json()["error"]["code"] == code, response.text
        assert http.get("/jobs").json()["jobs"] == jobs_before
    assert stored_inputs(api) == before


def test_symlink_member_is_refused(api, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("alto/clip0.wav", wav_bytes(CLIP_SECONDS, 1))
        info = zipfile.ZipInfo("alto/clip1.wav")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with api.client() as http:
        response = http.post("/trainings", files={"dataset": ("link.zip", archive.read_bytes())})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unsafe_file", response.text


def test_archive_unpacking_past_the_limit_is_refused(api, tmp_path, monkeypatch):
    monkeypatch.setenv("SVC_TRAIN_MAX_DATASET_MB", "0.5")  # a zip bomb in small: 1 MB of silence packs to ~1 KB
    silence = io.BytesIO()
    sf.write(silence, np.zeros(SR * 12, dtype=np.float32), SR, format="WAV", subtype="PCM_16")
    archive = make_dataset(tmp_path / "bomb.zip", {"alto/silence.wav": silence.getvalue()})
    assert archive.stat().st_size < 100_000
    before = stored_inputs(api)
    with api.client() as http:
        response = http.post("/trainings", files={"dataset": ("bomb.zip", archive.read_bytes())})
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large", response.text
    assert stored_inputs(api) == before


def test_unknown_and_bad_options_are_refused(api, dataset):
    with api.client() as http:
        for options, code in (({"steps": 4, "epochs": 3}, "unknown_field"), ({"steps": 0}, "invalid_option"),
                              ({"model_size": "huge"}, "invalid_option"), ({"arch": "rvc"}, "invalid_option")):
            response = http.post("/trainings", files={"dataset": ("d.zip", dataset.read_bytes())},
                                 data={"options": json.dumps(options)})
            assert response.status_code == 400 and response.json()["error"]["code"] == code, response.text


def test_cancel_mid_training_ends_cancelled_and_keeps_nothing(api, dataset):
    with SvcClient(api.url) as client:
        voices_before = {v["key"] for v in client.voices()}
        job = client.submit_training(dataset, "train-once", steps=100_000, eval_interval=100_000, **TINY)
        assert client.submit_training(dataset, "train-once", steps=100_000, **TINY)["id"] == job["id"]
        for event in client.events(job["id"], read_timeout=JOB_GUARD_SECONDS):
            if event.job and event.job["stage"].startswith("training: step"):
                client.cancel(job["id"])
                break
        end = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
        assert end["status"] == "cancelled", end
        assert end["error"]["code"] == "cancelled" and end["results"] == []
        assert {v["key"] for v in client.voices()} == voices_before
    scratch = api.work_dir / "job-scratch" / job["id"]
    assert not scratch.exists()
    assert not (api.work_dir / "blobs" / "results" / job["id"]).exists()


def test_a_run_past_its_time_budget_fails_with_time_limit(api, dataset, monkeypatch):
    monkeypatch.setenv("SVC_TRAIN_MAX_SECONDS", "0.001")  # read by the worker thread when the run starts
    with SvcClient(api.url) as client:
        voices_before = {v["key"] for v in client.voices()}
        job = client.submit_training(dataset, steps=100_000, **TINY)
        end = client.wait(job["id"], timeout=JOB_GUARD_SECONDS)
    assert end["status"] == "failed" and end["error"]["code"] == "time_limit", end
    assert end["results"] == [] and {v["key"] for v in SvcClient(api.url).voices()} == voices_before
