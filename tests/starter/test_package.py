"""Packaging a (tiny, random) trained model into a release folder the web demo's scanner accepts."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import torch

from factories import make_upstream_checkpoint
from svc_core.safe_load import load_torch
from svc_core.starter.model_config import starter_config
from svc_core.starter.package import PackageSettings, package_voices, verify_package
from svc_core.ui.models import scan_models_dir

SPEAKERS = {"fest_ked": 0, "flite_awb": 1, "flite_rms": 2, "flite_slt": 3}


def _run(tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    g, _ = make_upstream_checkpoint(run, speech_encoder="phonevec256", n_speakers=4, speakers=SPEAKERS)
    shutil.copyfile(g, run / "G_1200.pth")
    g.unlink()
    encoder = tmp_path / "phonevec256.pt"
    torch.save({"weights": torch.zeros(3)}, encoder)
    return run, encoder


def test_package_manifest_and_scanner(tmp_path):
    run, encoder = _run(tmp_path)
    out = tmp_path / "voices" / "starter"
    doc = package_voices(PackageSettings(run_dir=str(run), out_dir=str(out), encoder=str(encoder)), log=lambda m: 0)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["G_1200.pth", "config.json", "manifest.json", "phonevec256.pt"]
    assert set(doc["files"]) == set(files) - {"manifest.json"}
    for name, info in doc["files"].items():
        data = (out / name).read_bytes()
        assert info == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    assert json.loads((out / "manifest.json").read_text()) == doc
    assert doc["step"] == 1200 and doc["speakers"] == list(SPEAKERS) and doc["speech_encoder"] == "phonevec256"
    state = load_torch(out / "G_1200.pth", what="generator")["model"]
    assert not any("enc_q" in k for k in state)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    scan = scan_models_dir(out.parent)
    assert not scan.problems and [e.key for e in scan.entries] == ["starter"]
    entry = scan.entries[0]
    assert entry.model_path.name == "G_1200.pth" and entry.cluster_path is None
    assert entry.speakers == tuple(SPEAKERS) and entry.speech_encoder == "phonevec256"
    assert verify_package(out) == []


def test_package_is_skipped_when_current_and_redone_when_damaged(tmp_path):
    run, encoder = _run(tmp_path)
    out = tmp_path / "starter"
    settings = PackageSettings(run_dir=str(run), out_dir=str(out), encoder=str(encoder))
    first = package_voices(settings, log=lambda m: 0)
    stamp = (out / "G_1200.pth").stat().st_mtime_ns
    assert package_voices(settings, log=lambda m: 0) == first
    assert (out / "G_1200.pth").stat().st_mtime_ns == stamp
    (out / "config.json").write_text("{}")
    assert verify_package(out) == ["config.json: sha256 or size differs from manifest.json"]
    assert package_voices(settings, log=lambda m: 0) == first and verify_package(out) == []


def test_starter_config_is_small():
    from factories import make_config_dict
    from svc_core.checkpoint import build_synthesizer
    from svc_core.config import config_from_dict

    doc = starter_config(make_config_dict(speech_encoder="phonevec256", n_speakers=4, small=False))
    model = build_synthesizer(config_from_dict(doc))
    release = sum(p.numel() for k, p in model.named_parameters() if not k.startswith("enc_q"))
    assert release * 2 <= 45e6  # fp16 release file within the ~45 MB budget
    assert doc["train"]["batch_size"] == 4 and doc["model"]["upsample_initial_channel"] == 256
    from svc_core.train.settings import TrainSettings

    assert TrainSettings.from_config(config_from_dict(doc)).posterior_input == "envelope"
