"""Refusing the worst crafted files costs little memory and reads little: measured in a fresh subprocess (so
nothing else in the test process counts), peak RSS growth (Linux VmHWM, reset before each file) stays under
200 MB, and the 4 GiB zip bomb is refused after reading a few KiB of its 4 MiB. Times are printed, not asserted."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from safety import bombs
from svc_core import file_limits as limits

MAX_GROWTH_BYTES = 200 * 1000 * 1000  # the bound for any crafted file
MAX_ZIP_BOMB_READ_BYTES = 256 * 1024  # the end records and the directory, not the member

PROBE = r"""
import json, os, sys, time
from svc_core.errors import FileLimitError, SvcError
from svc_core.checkpoint import read_generator_state
from svc_core.retrieval import load_retrieval
from svc_core.safe_load import load_npz
from svc_core.onnx.runtime import make_session

LOADERS = {"pth": read_generator_state, "retrieval": load_retrieval, "npz": load_npz,
           "onnx": lambda path: make_session(path, "cpu", 1)}

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

def read_bytes():
    for line in open("/proc/self/io"):
        if line.startswith("rchar"):
            return int(line.split()[1])

results = {}
for name, kind, path in json.loads(sys.argv[1]):
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak (VmHWM) to the current RSS
    before, read_before, start = status("VmRSS"), read_bytes(), time.perf_counter()
    try:
        LOADERS[kind](path)
        message = kind = None
    except SvcError as err:
        message = str(err)
        kind = type(err).__name__
    results[name] = {"growth": status("VmHWM") - before, "read": read_bytes() - read_before,
                     "ms": 1000 * (time.perf_counter() - start), "message": message, "error": kind}
print(json.dumps(results))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc to measure peak RSS")
def test_refusing_the_worst_bombs_stays_under_200_mb(tmp_path):
    onnx_dir = tmp_path / "onnx"
    onnx_dir.mkdir()
    files = [
        ("warm-up zip bomb", "pth", bombs.torch_with_pickle(tmp_path / "G_0.pth", inflates_to=4 * bombs.GiB)),
        ("warm-up ONNX", "onnx", bombs.onnx_empty_nodes(onnx_dir / "warm.onnx", limits.MAX_ONNX_NODES + 1)),
        ("data.pkl 4 GiB zip bomb", "pth", bombs.torch_with_pickle(tmp_path / "G_1000.pth",
                                                                  inflates_to=4 * bombs.GiB)),
        ("20,001-member zip", "pth", bombs.many_members(tmp_path / "G_2.pth", limits.MAX_ZIP_MEMBERS + 1)),
        ("pickle instruction bomb", "pth", bombs.torch_with_pickle(tmp_path / "G_3.pth",
                                                                  bombs.instruction_bomb(400_000))),
        ("bytearray(4 GiB) pickle", "pth", bombs.torch_with_pickle(tmp_path / "G_4.pth", bombs.call_pickle(
            "builtins", "bytearray", 4 * bombs.GiB))),
        ("npz 4 GiB zip bomb", "npz", bombs.npz_bomb(tmp_path / "f0.npz", 4 * bombs.GiB)),
        ("faiss blob claiming 16 GiB", "retrieval", bombs.feature_index_pickle(
            tmp_path / "feature_and_index.pkl", bombs.faiss_blob_claiming(1 << 32))),
        ("ONNX 50,001 empty nodes", "onnx", bombs.onnx_empty_nodes(onnx_dir / "nodes.onnx",
                                                                  limits.MAX_ONNX_NODES + 1)),
        ("ONNX initializer [2^20, 2^20]", "onnx", bombs.onnx_model(
            onnx_dir / "dims.onnx", bombs.raw_tensor([1 << 20, 1 << 20], bytes(16)))),
        # just inside the pickle limits: scanned, then really unpickled by torch, then refused as no checkpoint
        ("largest pickle let through", "pth", bombs.torch_with_pickle(tmp_path / "G_5.pth",
                                                                     bombs.instruction_bomb(240_000, numbered=True))),
    ]
    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", PROBE, json.dumps([(n, k, str(p)) for n, k, p in files])],
                         capture_output=True, text=True, cwd=repo, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(run.stdout.strip().splitlines()[-1])
    for name, row in results.items():
        print(f"{name:32s} {row['ms']:8.1f} ms  peak RSS +{row['growth'] / 1e6:6.1f} MB  read {row['read']:>9,} B")
        assert row["error"] == ("ModelError" if name == "largest pickle let through" else "FileLimitError"), row
        assert row["growth"] < MAX_GROWTH_BYTES, (name, row)
    assert results["data.pkl 4 GiB zip bomb"]["read"] < MAX_ZIP_BOMB_READ_BYTES
    assert results["npz 4 GiB zip bomb"]["read"] < MAX_ZIP_BOMB_READ_BYTES
