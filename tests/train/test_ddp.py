"""The world_size > 1 code path: 2 CPU processes joined by gloo (torch.multiprocessing.spawn), a tiny model."""
from __future__ import annotations

import json

from train_factories import tiny_settings

from svc_core.train.ddp import DistInfo, env_info, spawn_cpu_group


def test_two_process_gloo_run_trains_in_sync_and_only_rank0_saves(tiny_data, tmp_path):
    out, reports = tmp_path / "run", tmp_path / "reports"
    reports.mkdir()
    settings = tiny_settings(steps=2, eval_interval=2, batch_size=1)
    spawn_cpu_group(2, tiny_data, out, settings, report_dir=reports)
    r0, r1 = (json.loads((reports / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2 and r0["ddp"] and r1["ddp"]
    assert r0["step"] == r1["step"] == 2
    assert r0["train_items"] == r1["train_items"] == 2  # DistributedSampler: 4 clips split over 2 ranks
    assert r0["checksum"] == r1["checksum"]  # gradients all-reduced: identical weights on both ranks
    assert sorted(p.rsplit("/", 1)[1] for p in r0["saved"]) == ["D_2.pth", "G_2.pth"]
    assert r1["saved"] == []
    assert (out / "G_2.pth").is_file() and (out / "D_2.pth").is_file()
    assert not list(out.glob("*.tmp"))
    log = (out / "train.log").read_text()
    assert "2 processes" in log


def test_single_process_without_torchrun(monkeypatch):
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    info = env_info()
    assert info == DistInfo(0, 0, 1) and info.is_main and not info.distributed
