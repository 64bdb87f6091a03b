"""WORLD voices: analysis/synthesis on the frame grid, perturbed training inputs, training, and loading through Svc."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from train_factories import HOP, SR, _clip, build_dataset
from svc_core.errors import ModelError
from svc_core.f0 import get_predictor
from svc_core.worldvoice import features
from svc_core.worldvoice.prepare import perturbed_path, prepare_clip, world_path

REPO = Path(__file__).resolve().parents[2]
PHONEVEC = REPO / "voices" / "starter" / "phonevec256.pt"  # the shipped encoder: real weights


def _pitch(wav: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f0, uv = get_predictor("pm", hop_length=HOP, sampling_rate=SR).compute_f0_uv(wav.astype(np.float32))
    return np.asarray(f0), np.asarray(uv) > 0.5


def _cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.log2(a / b)


def test_synthesis_follows_the_f0_it_is_given():
    wav, f0, uv = _clip(1.5, 150.0, seed=1)
    frames = features.analyse(wav, f0, uv)
    assert frames.coded.shape == (len(f0), features.SP_DIMS + features.n_aperiodicity())
    for factor in (1.0, 1.5, 0.75):
        out = features.synthesize(frames.coded, frames.f0 * factor)
        assert out.shape == (len(f0) * HOP,) and out.dtype == np.float32
        got, voiced = _pitch(out)
        both = voiced[: len(f0)] & (uv > 0.5)
        both[:4] = both[-4:] = False
        assert both.mean() > 0.6
        err = np.abs(_cents(got[: len(f0)][both], f0[both] * factor))
        assert np.median(err) < 15, (factor, np.median(err))


def _vowel(seconds: float, f0_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A voiced vowel: harmonics up to 10 kHz shaped by three formants, a little breath noise."""
    n = int(seconds * SR) // HOP * HOP
    t = np.arange(n) / SR
    f0 = f0_hz * 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = np.zeros(n)
    for k in range(1, int(10000 / f0_hz)):
        freq = k * f0_hz
        amp = sum(1.0 / (1 + ((freq - fc) / bw) ** 2) for fc, bw in ((700, 120), (1200, 150), (2600, 250)))
        wav += (amp + 0.01) * np.sin(k * phase)
    wav = 0.3 * wav / np.abs(wav).max() + 1e-3 * np.random.default_rng(0).standard_normal(n)
    frames = n // HOP
    return wav.astype(np.float32), f0[::HOP][:frames].astype(np.float32), np.ones(frames, np.float32)


def test_resynthesis_keeps_the_envelope():
    """Round trip: the coded envelope of the output is close to the input's (same f0), far closer than to
    the envelope of another vowel."""
    wav, f0, uv = _vowel(1.2, 140.0)
    frames = features.analyse(wav, f0, uv)
    again = features.analyse(features.synthesize(frames.coded, frames.f0), f0, uv)
    sp = slice(1, features.SP_DIMS)
    mid = slice(8, len(f0) - 8)
    diff = np.sqrt(((frames.coded[mid, sp] - again.coded[mid, sp]) ** 2).sum(1))
    other = features.analyse(*_clip(1.2, 140.0, seed=2))
    apart = np.sqrt(((frames.coded[mid, sp] - other.coded[mid, sp]) ** 2).sum(1))
    assert np.median(diff) < 0.25 * np.median(apart), (np.median(diff), np.median(apart))


def test_perturb_moves_pitch_and_keeps_length():
    wav, f0, uv = _clip(1.2, 160.0, seed=3)
    frames = features.analyse(wav, f0, uv)
    moved = features.perturb(wav, frames, formant=1.2, semitones=4.0)
    assert len(moved) <= len(wav) and len(moved) >= len(wav) - HOP
    got, voiced = _pitch(np.pad(moved, (0, len(wav) - len(moved))))
    both = voiced[: len(f0)] & (uv > 0.5)
    both[:4] = both[-4:] = False
    assert abs(np.median(_cents(got[: len(f0)][both], f0[both])) - 400) < 30


@pytest.fixture(scope="module")
def world_data(tmp_path_factory) -> Path:
    """A 2-speaker dataset (phonevec256 features) with its WORLD files, made with the shipped encoder."""
    from svc_core.phonevec.encoder import PhoneVecEncoder
    from svc_core.resample import sinc_resample

    root = build_dataset(tmp_path_factory.mktemp("world") / "dataset", speech_encoder="phonevec256",
                         clips_per_speaker=3, seconds=(1.0, 1.4))
    encoder = PhoneVecEncoder(str(PHONEVEC))

    def encode(w: np.ndarray) -> torch.Tensor:
        return encoder.encode(sinc_resample(torch.from_numpy(w), SR, 16000)).float()

    for wav in sorted(root.glob("spk*/*.wav")):
        torch.save(encode(sf.read(str(wav), dtype="float32")[0]), f"{wav}.soft.pt")
        assert prepare_clip(wav, encode, n_perturbed=2)
    return root


def test_prepare_writes_targets_and_perturbed_features(world_data):
    wav = world_data / "spk0" / "clip1.wav"
    coded = np.load(world_path(wav))
    f0_uv = np.load(f"{wav}.f0.npy")
    assert coded.dtype == np.float16 and coded.shape == (f0_uv.shape[1], features.SP_DIMS + 5)
    pert = torch.load(perturbed_path(wav))
    soft = torch.load(f"{wav}.soft.pt")
    assert pert.shape[0] == 2 and pert.shape[1] == 256 and abs(pert.shape[2] - soft.shape[2]) <= 2
    assert not torch.allclose(pert[0, :, :10], soft[0, :, :10])  # the encoder saw a different voice
    before = world_path(wav).stat().st_mtime_ns
    assert prepare_clip(wav, lambda w: torch.zeros(1, 256, 10)) is False  # fresh files are kept
    assert world_path(wav).stat().st_mtime_ns == before


@pytest.fixture(scope="module")
def world_run(world_data, tmp_path_factory):
    from svc_core.worldvoice.train import WorldTrainSettings, train_world

    out = tmp_path_factory.mktemp("world_run") / "run"
    lines: list[str] = []
    settings = WorldTrainSettings(data=str(world_data), out=str(out), steps=200, batch_size=4, crop_frames=48,
                                  learning_rate=1e-2, eval_interval=100, threads=1, hidden=48, layers=3)
    last = train_world(settings, lines.append)
    return {"out": out, "last": last, "lines": lines, "settings": settings}


def _logged(lines: list[str], key: str) -> list[float]:
    return [float(l.split(key)[1].split()[0]) for l in lines if key in l]


def test_training_lowers_loss_and_writes_checkpoints(world_run):
    out, lines = world_run["out"], world_run["lines"]
    assert sorted(p.name for p in out.glob("W_*.pth")) == ["W_100.pth", "W_200.pth"]
    losses = _logged(lines, " loss ")
    assert losses[-1] < 0.9 * losses[0], losses
    mcd = _logged(lines, "validation MCD ")
    assert len(mcd) == 2 and mcd[1] < mcd[0]
    doc = json.loads((out / "config.json").read_text())
    assert doc["worldvoice"]["format"] == "svc-studio-worldvoice-1" and doc["model"]["speech_encoder"] == "phonevec256"


def test_resume_continues_and_refuses_to_overwrite(world_run, tmp_path):
    from svc_core.train.dataset import DatasetError
    from svc_core.worldvoice.train import train_world

    out = tmp_path / "run"
    shutil.copytree(world_run["out"], out)
    (out / "W_200.pth").unlink()
    s = world_run["settings"]
    s2 = type(s)(**{**s.__dict__, "out": str(out), "steps": 120, "resume": False})
    with pytest.raises(DatasetError, match="--resume"):
        train_world(s2, lambda m: None)
    lines: list[str] = []
    s2.resume = True
    train_world(s2, lines.append)
    assert any("resumed from W_100.pth (step 100)" in l for l in lines)
    assert not any(l.startswith("step 50") for l in lines)
    assert any(l.startswith("step 120: validation") for l in lines)
    assert (out / "W_120.pth").is_file()


def test_svc_loads_a_world_voice_and_sings_the_transposed_f0(world_data, world_run, tmp_path):
    from svc_core.encoders import get_encoder
    from svc_core.pipeline import Svc
    from svc_core.ui.models import describe_folder

    voice = tmp_path / "voice"
    voice.mkdir()
    shutil.copy(world_run["last"], voice / "W_200.pth")
    shutil.copy(world_run["out"] / "config.json", voice / "config.json")
    entry = describe_folder(voice, "voice")
    assert entry.model_path.name == "W_200.pth" and entry.speakers == ("spk0", "spk1")
    svc = Svc(entry.model_path, entry.config_path, encoder=get_encoder("phonevec256", str(PHONEVEC)))
    wav, f0, _ = _clip(2.0, 200.0, seed=9)
    for transpose in (0, 5):
        out = svc.slice_inference(wav, SR, "spk1", transpose=transpose, f0_predictor="pm")
        assert abs(len(out) - len(wav)) <= 2 * HOP and np.isfinite(out).all() and np.abs(out).max() > 1e-3
        got, voiced = _pitch(out[: len(wav)])
        n = min(len(got), len(f0))
        keep = voiced[:n].copy()
        keep[:6] = keep[-6:] = False
        assert keep.mean() > 0.5
        err = _cents(got[:n][keep], f0[:n][keep] * 2 ** (transpose / 12))
        assert np.median(np.abs(err)) < 25, (transpose, np.median(np.abs(err)))
    mixed = svc.slice_inference(wav, SR, {"spk0": 0.5, "spk1": 0.5}, f0_predictor="pm")
    assert np.isfinite(mixed).all() and len(mixed) == len(out)
    with pytest.raises(ModelError, match="WORLD voice"):
        svc.slice_inference(wav, SR, "spk1", f0_predictor="pm", auto_predict_f0=True)


def test_mismatched_files_are_clear_errors(world_run, tmp_path):
    from svc_core.checkpoint import load_synthesizer

    cfg = world_run["out"] / "config.json"
    bad = tmp_path / "W_1.pth"
    torch.save({"model": {"x": torch.zeros(2)}, "iteration": 1}, bad)
    with pytest.raises(ModelError, match="not a WORLD voice checkpoint"):
        load_synthesizer(bad, cfg)
    doc = json.loads(cfg.read_text())
    doc["worldvoice"]["net"]["hidden"] = 64
    other = tmp_path / "config.json"
    other.write_text(json.dumps(doc))
    with pytest.raises(ModelError, match="does not match the network"):
        load_synthesizer(world_run["last"], other)


def test_cli_converts_with_a_world_voice_and_onnx_export_refuses(world_data, world_run, tmp_path, capsys):
    from svc_core.cli import main

    src = tmp_path / "in.wav"
    wav, _, _ = _clip(1.5, 190.0, seed=4)
    sf.write(str(src), wav, SR)
    out = tmp_path / "out.wav"
    code = main(["infer", "-m", str(world_run["last"]), "-c", str(world_run["out"] / "config.json"),
                 "--encoder", str(PHONEVEC), "-i", str(src), "-o", str(out), "-s", "spk0", "--f0", "pm", "-t", "2"])
    assert code == 0 and out.is_file()
    converted, rate = sf.read(str(out))
    assert rate == SR and abs(len(converted) - len(wav)) <= 2 * HOP
    code = main(["export-onnx", "-m", str(world_run["last"]), "-c", str(world_run["out"] / "config.json"),
                 "-o", str(tmp_path / "w.onnx")])
    assert code == 2 and "WORLD voice" in capsys.readouterr().err


def test_a_world_run_packages_as_a_release_folder(world_run, tmp_path):
    from svc_core.starter.evaluation import load_voice
    from svc_core.starter.package import PackageSettings, package_voices, verify_package

    out = tmp_path / "starter"
    doc = package_voices(PackageSettings(run_dir=str(world_run["out"]), out_dir=str(out), encoder=str(PHONEVEC)),
                         log=lambda m: None)
    assert sorted(doc["files"]) == ["W_200.pth", "config.json", "phonevec256.pt"] and doc["step"] == 200
    assert verify_package(out) == []
    state = torch.load(out / "W_200.pth")["model"]
    assert state["head.3.weight"].dtype == torch.float16 and state["mean"].dtype == torch.float32
    svc = load_voice(out)
    wav, _, _ = _clip(1.0, 200.0, seed=5)
    full = load_voice(world_run["out"]).slice_inference(wav, SR, "spk0", f0_predictor="pm")
    half = svc.slice_inference(wav, SR, "spk0", f0_predictor="pm")
    assert half.shape == full.shape and np.abs(half - full).max() < 0.05


def test_a_voice_on_the_posteriorgram_encoder(world_data, tmp_path):
    """prepare-world/train-world with another encoder than the dataset's (phoneppg42 on a phonevec256 dataset)."""
    from svc_core.phonevec.encoder import PhoneVecEncoder
    from svc_core.resample import sinc_resample
    from svc_core.starter.evaluation import load_voice
    from svc_core.train.dataset import DatasetError
    from svc_core.worldvoice.prepare import units_path
    from svc_core.worldvoice.train import WorldTrainSettings, train_world

    data = world_data  # the filelists hold absolute paths; the files written here have their own names
    settings = WorldTrainSettings(data=str(data), out=str(tmp_path / "run"), steps=40, batch_size=4, crop_frames=48,
                                  learning_rate=1e-2, eval_interval=40, threads=1, hidden=32, layers=2,
                                  encoder="phoneppg42")
    with pytest.raises(DatasetError, match="--encoder phoneppg42"):
        train_world(settings, lambda m: None)  # nothing prepared for that encoder yet
    encoder = PhoneVecEncoder(str(PHONEVEC), name="phoneppg42", tap="ppg")

    def encode(w: np.ndarray) -> torch.Tensor:
        return encoder.encode(sinc_resample(torch.from_numpy(w), SR, 16000)).float()

    wav = data / "spk0" / "clip1.wav"
    world_before = world_path(wav).stat().st_mtime_ns
    for clip in sorted(data.glob("spk*/*.wav")):
        assert prepare_clip(clip, encode, n_perturbed=1, encoder="phoneppg42")
    own, pert = torch.load(units_path(wav, "phoneppg42")), torch.load(perturbed_path(wav, "phoneppg42"))
    assert own.shape[:2] == (1, 42) and pert.shape[:2] == (1, 42)
    assert torch.allclose(own[0, 1:].sum(0), torch.ones(own.shape[2]), atol=1e-4)  # phone distributions
    assert world_path(wav).stat().st_mtime_ns == world_before  # the fresh WORLD target was kept
    assert torch.load(perturbed_path(wav)).shape[1] == 256  # the dataset encoder's files are untouched

    train_world(settings, lambda m: None)
    doc = json.loads((tmp_path / "run" / "config.json").read_text())
    assert doc["model"]["speech_encoder"] == "phoneppg42" and doc["model"]["ssl_dim"] == 42
    assert doc["worldvoice"]["net"]["content_dim"] == 42
    voice = tmp_path / "voice"
    voice.mkdir()
    shutil.copy(tmp_path / "run" / "W_40.pth", voice / "W_40.pth")
    shutil.copy(tmp_path / "run" / "config.json", voice / "config.json")
    shutil.copy(PHONEVEC, voice / "phonevec256.pt")  # one weights file serves both phonevec encoders
    svc = load_voice(voice)
    assert svc.encoder.name == "phoneppg42"
    clip, _, _ = _clip(1.0, 200.0, seed=6)
    out = svc.slice_inference(clip, SR, "spk1", f0_predictor="pm")
    assert abs(len(out) - len(clip)) <= 2 * HOP and np.isfinite(out).all()
