"""The web server's thread setting: `--threads`, and each job choosing its torch thread count in its own worker
thread when it gets its voice (VoiceCache.get, svc_core.threads)."""
from __future__ import annotations

import threading

import pytest
import torch

from svc_core.ui.settings import SettingsError, parse_args


def test_threads_option(monkeypatch):
    monkeypatch.delenv("SVC_THREADS", raising=False)
    assert parse_args([]).threads is None  # $SVC_THREADS or auto, per job
    assert parse_args(["--threads", "auto"]).threads == "auto"
    assert parse_args(["--threads", "1"]).threads == "1"
    with pytest.raises(SettingsError, match="--threads: .*'auto' or a whole number"):
        parse_args(["--threads", "many"])
    monkeypatch.setenv("SVC_THREADS", "many")
    with pytest.raises(SettingsError, match=r"\$SVC_THREADS: .*'auto' or a whole number"):
        parse_args([])
    assert parse_args(["--threads", "2"]).threads == "2"  # the option wins over the environment


def test_a_job_gets_its_thread_count_in_its_own_thread(tmp_path, monkeypatch):
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint
    from svc_core.ui import backends
    from svc_core.ui.models import scan_models_dir
    from svc_core.ui.voice_cache import VoiceCache

    monkeypatch.setenv("SVC_PRETRAIN_DIR", str(tmp_path / "empty"))
    folder = tmp_path / "models" / "bundled"
    make_upstream_checkpoint(folder, speech_encoder="vec256l9", seed=2)
    make_contentvec_checkpoint(folder / "checkpoint_best_legacy_500.pt", final_dim=256, seed=2)
    entry = next(e for e in scan_models_dir(tmp_path / "models").entries if e.key == "bundled")
    cache, before, seen = VoiceCache(threads="1", export_dir=tmp_path / "onnx"), torch.get_num_threads(), {}

    def job():
        voice, _ = cache.get(entry)
        seen["threads"], seen["engine"] = torch.get_num_threads(), backends.describe(voice.svc)
        torch.set_num_threads(before)  # threads started later (other tests) keep the default

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen == {"threads": 1, "engine": "torch eager on cpu (1 threads)"}
    assert torch.get_num_threads() == before  # the server's other threads keep theirs
