"""`python -m svc_core doctor` names versions, threads and what is usable or missing, with where to get it."""
from __future__ import annotations

import json

import torch

from svc_core.cli import main
from svc_core.doctor import collect


def test_collect_reports_predictors_and_missing_files(monkeypatch, tmp_path):
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))
    info = collect()
    assert info["packages"]["torch"] == torch.__version__
    assert info["torch_threads"] == torch.get_num_threads()
    predictors = {row["name"]: row for row in info["f0_predictors"]}
    assert predictors["pm"]["usable"] and predictors["fcpe"]["usable"]
    assert not predictors["rmvpe"]["usable"] and "rmvpe.pt" in predictors["rmvpe"]["problem"]
    encoders = {row["name"]: row for row in info["encoders"]}
    assert not encoders["vec768l12"]["usable"] and "checkpoint_best_legacy_500.pt" in encoders["vec768l12"]["problem"]


def test_found_weights_are_reported(monkeypatch, tmp_path):
    (tmp_path / "rmvpe.pt").write_bytes(b"x")
    (tmp_path / "hubert-soft-0d54a1f4.pt").write_bytes(b"x")
    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))
    info = collect()
    assert {r["name"]: r["usable"] for r in info["f0_predictors"]}["rmvpe"]
    assert {r["name"]: r["found"] for r in info["encoders"]}["hubertsoft"].endswith("hubert-soft-0d54a1f4.pt")


def test_cli_text_and_json(capsys):
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert "f0 predictors:" in text and "content encoders:" in text and "torch threads" in text
    assert "CPU bf16 dot products: " in text and "int8 dot products: " in text
    assert main(["doctor", "--json"]) == 0
    assert "encoders" in json.loads(capsys.readouterr().out)


def test_doctor_checks_the_starter_voices(tmp_path, monkeypatch):
    """Missing, damaged (a file no longer matches its sha256) and ready are told apart."""
    import json

    from svc_core import doctor
    from svc_core.ui import settings

    folder = tmp_path / "voices" / "starter"
    monkeypatch.setattr(settings, "STARTER_VOICES", folder)
    monkeypatch.setattr(settings, "STARTER_SOVITS", tmp_path / "voices" / "starter-sovits")
    assert "starter voices: missing" in doctor.report()
    folder.mkdir(parents=True)
    (folder / "G_1.pth").write_bytes(b"weights")
    import hashlib

    digest = hashlib.sha256(b"weights").hexdigest()
    (folder / "manifest.json").write_text(json.dumps({"speakers": ["a", "b"], "step": 1,
                                                      "files": {"G_1.pth": {"sha256": digest, "bytes": 7}}}))
    assert "starter voices: ready (a, b; step 1; sha256 verified)" in doctor.report()
    (folder / "G_1.pth").write_bytes(b"weightz")
    assert "starter voices: DAMAGED (G_1.pth: sha256 or size differs" in doctor.report()


def test_ffmpeg_presence_is_reported(monkeypatch):
    """m4a / aac / wma / webm need ffmpeg (audioread): the report says whether it is there and what it is for."""
    import shutil

    from svc_core.doctor import report

    monkeypatch.setattr(shutil, "which", lambda name: None)
    missing = report(collect())
    assert "ffmpeg: not found; m4a, aac, wma, webm inputs cannot be read (apt-get install ffmpeg" in missing
    monkeypatch.setattr(shutil, "which", lambda name: f"/usr/bin/{name}")
    assert "ffmpeg: /usr/bin/ffmpeg (m4a, aac, wma, webm inputs)" in report(collect())


def test_doctor_finds_the_mel_vocoder(tmp_path, monkeypatch):
    from vocoder_factories import make_vocoder

    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    missing = collect()["mel_vocoder"]
    assert not missing["usable"] and "nsf_hifigan_20221211" in missing["problem"]
    make_vocoder(tmp_path / "nsf_hifigan")
    ready = collect()["mel_vocoder"]
    assert ready["usable"] and ready["found"].endswith("nsf_hifigan/model")


def test_doctor_lists_the_separators():
    from svc_core import doctor
    from svc_core.separation import list_separators

    info = doctor.collect()
    rows = {row["name"]: row for row in info["separators"]}
    assert list(rows) == list_separators()
    assert rows["mdx"]["needs_file"] == [".onnx"] and rows["repet-sim"]["needs_file"] == []
    text = doctor.report(info)
    assert "separators (covers" in text
    for name, row in rows.items():
        assert (f"  {name:<10} {row['label']}: " + ("ready" if row["usable"] else row["problem"])) in text
