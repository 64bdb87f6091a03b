"""A tiny real training run lowers the CTC loss and resumes; the probes run on tiny data and give numbers."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from svc_core.phonevec.__main__ import main
from svc_core.phonevec.checkpoint import load_encoder
from svc_core.phonevec.data import OnlineAugment, iterate
from svc_core.phonevec.probe import ProbeSettings, run_probe
from svc_core.phonevec.train import TrainSettings, train

from .conftest import TINY_MODEL


def _settings(corpus, out: Path, **kw) -> TrainSettings:
    base = dict(corpus=corpus.root, out=str(out), model=TINY_MODEL, augment=OnlineAugment(enabled=False),
                epochs=1000, lr=3e-3, warmup_steps=2, batch_seconds=8.0, val_sentences=2, val_every=1000,
                log_every=1000, threads=1, adv_weight=0.1)
    base.update(kw)
    return TrainSettings(**base)


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("phonevec_run")
    return out, train(_settings(tiny_corpus, out, max_steps=40))


def test_tiny_training_lowers_ctc_loss(trained) -> None:
    out, result = trained
    losses = result["losses"]
    assert result["step"] == 40 and len(losses) == 40 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])
    assert (out / "state.pt").is_file() and (out / "phonevec256.pt").is_file()
    model = load_encoder(out / "phonevec256.pt")
    assert model.cfg == TINY_MODEL and float(model.mel_std.min()) > 0 and float(model.mel_mean.abs().sum()) > 0
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 40 and 0 <= log[-1]["val_per"]


def test_training_resumes_where_it_stopped(tiny_corpus, trained, tmp_path) -> None:
    out, _ = trained
    resumed = train(_settings(tiny_corpus, out, max_steps=43))
    assert resumed["step"] == 43 and len(resumed["losses"]) == 3


def test_batches_are_deterministic_and_augmented(tiny_corpus) -> None:
    clips = tiny_corpus.select("train")
    aug = OnlineAugment(p_speed=1.0, p_noise=1.0, p_vtlp=1.0)
    a = [b for _, _, b in iterate(tiny_corpus, clips, 8.0, aug, seed=3, epoch=1)]
    b = [b for _, _, b in iterate(tiny_corpus, clips, 8.0, aug, seed=3, epoch=1)]
    assert len(a) == len(b) > 1
    for x, y in zip(a, b):
        assert x.wav.equal(y.wav) and x.targets.equal(y.targets) and x.warp == y.warp != 1.0
        assert int(x.target_lengths.sum()) == len(x.targets) and x.speakers.max() < 15
    plain = [b for _, _, b in iterate(tiny_corpus, clips, 8.0, None, seed=3, epoch=1)]
    assert sum(int(p.n_samples.sum()) for p in plain) == sum(c["n_samples"] for c in clips)


def test_probe_runs_on_tiny_data(tiny_corpus, trained) -> None:
    out, _ = trained
    report = run_probe(ProbeSettings(corpus=tiny_corpus.root, encoder=str(out / "phonevec256.pt"), layers=(1, 2),
                                     frames_per_clip=20))
    assert report.n_voices == 2 and report.n_sentences == 2 and report.chance_pct == 50.0
    assert set(report.per_by_voice) == {"esp_m3", "flite_slt"}
    values = [report.per_clean, report.per_strong_augment, report.per_world_variants, *report.per_by_voice.values()]
    for value in values:
        assert value is not None and 0.0 <= value <= 200.0
    assert set(report.speaker_id) == {"logmel", "layer1", "layer2", "ppg"}  # ppg: the phoneppg42 posteriorgram
    for accs in report.speaker_id.values():
        assert 0.0 <= accs["frame_acc_pct"] <= 100.0 and 0.0 <= accs["utt_acc_pct"] <= 100.0


def test_cli_probe_writes_json(tiny_corpus, trained, tmp_path, capsys) -> None:
    out, _ = trained
    target = tmp_path / "probe.json"
    assert main(["probe", "--corpus", tiny_corpus.root, "--encoder", str(out / "phonevec256.pt"),
                 "--json", str(target), "--threads", "1"]) == 0
    data = json.loads(target.read_text())
    assert "per_clean" in data and "layer2" in data["speaker_id"]
