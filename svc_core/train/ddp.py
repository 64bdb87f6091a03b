"""Multi-process training (DDP) helpers: torchrun environment, process group, model wrapping, rank-0 gating.

Launch on N GPUs:   torchrun --nproc_per_node N -m svc_core train --data DIR --out logs/NAME --device cuda
Each process trains on its share of every epoch (DistributedSampler); only rank 0 logs, evaluates and saves.
Without torchrun (WORLD_SIZE unset or 1) everything runs as a single plain process. `spawn_cpu_group` starts a
local gloo group of CPU processes (used by the tests; also a way to check a setup without GPUs).
"""
from __future__ import annotations

import json
import os
import socket
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """Rank / local rank / world size from torchrun's environment variables (defaults: one process)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
                    int(os.environ.get("WORLD_SIZE", 1)))


def device_for(info: DistInfo, requested: str) -> torch.device:
    """cuda -> cuda:{local_rank} in a group; cpu stays cpu."""
    device = torch.device(requested)
    if device.type == "cuda" and info.distributed and device.index is None:
        device = torch.device("cuda", info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_group(info: DistInfo, device: torch.device) -> None:
    """Join the process group (nccl on CUDA, gloo on CPU); MASTER_ADDR/MASTER_PORT come from the environment."""
    if info.distributed and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def wrap(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.distributed:
        return model
    ids = [device.index] if device.type == "cuda" else None
    # the relative-attention embeddings get non-contiguous gradients: a harmless, noisy performance note
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when `flag` is True on at least one rank (so every rank takes the same branch)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------- local CPU process group


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, data_dir: str, out_dir: str, settings: dict[str, Any],
            report_dir: str | None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    from .trainer import Trainer, TrainSettings  # deferred: trainer imports this module

    trainer = Trainer(data_dir, out_dir, TrainSettings(**settings))
    try:
        summary = trainer.fit()
        if report_dir:
            params = unwrap(trainer.net_g).upstream_state_dict()
            checksum = float(sum(v.double().sum() for v in params.values()))
            report = {"rank": rank, "world_size": trainer.dist.world_size, "step": summary.step,
                      "saved": [str(p) for p in summary.saved], "ddp": isinstance(trainer.net_g,
                                                                                   DistributedDataParallel),
                      "checksum": checksum, "train_items": len(trainer.train_loader.sampler)}
            Path(report_dir, f"rank{rank}.json").write_text(json.dumps(report), encoding="utf-8")
    finally:
        shutdown(trainer.dist)


def spawn_cpu_group(world_size: int, data_dir: str | os.PathLike, out_dir: str | os.PathLike, settings,
                    report_dir: str | os.PathLike | None = None) -> None:
    """Train with `world_size` CPU processes joined by gloo on this machine (torch.multiprocessing.spawn).

    With report_dir, each rank writes rank{r}.json (step, files it saved, parameter checksum).
    """
    import torch.multiprocessing as mp

    values = asdict(settings) if not isinstance(settings, dict) else dict(settings)
    values["device"] = "cpu"
    mp.spawn(_worker, args=(world_size, free_port(), os.fspath(data_dir), os.fspath(out_dir), values,
                            os.fspath(report_dir) if report_dir else None), nprocs=world_size, join=True)
