"""`python -m svc_core worker`: bad options and an unreachable Redis are one readable line and exit status 2; the
process is the worker itself (SIGTERM stops it cleanly, no child processes)."""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app_process import free_port
from redis_support import redis_server  # noqa: F401 - the fixture
from svc_core.jobs.worker_cli import (WorkerSettingsError, add_arguments, check_device, parse_queues,
                                      settings_from_args)

REPO = Path(__file__).resolve().parents[2]
CLI_GUARD_SECONDS = 120  # imports torch on a busy box; a guard, not a timing assertion


def run_worker(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SVC_THREADS="1", OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "svc_core", "worker", *args], capture_output=True, text=True,
                          timeout=CLI_GUARD_SECONDS, cwd=REPO, env=env)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_queue_names_are_checked():
    assert parse_queues("cpu") == ("cpu",) and parse_queues("cpu, gpu") == ("cpu", "gpu")
    assert parse_queues("gpu,gpu") == ("gpu",)
    for bad in ("tpu", "cpu,", ""):
        with pytest.raises(WorkerSettingsError, match="cpu, gpu"):
            parse_queues(bad)


def test_unreachable_redis_is_one_line(tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    result = run_worker("--redis", url, "--store", str(tmp_path / "blobs"), "--work-dir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert error_lines(result) == [error_lines(result)[0]] and error_lines(result)[0].startswith("error: ")
    assert f"cannot reach Redis at {url}" in result.stderr


def settings(tmp_path: Path, *extra: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--redis", "redis://127.0.0.1:6379/0", "--store", str(tmp_path / "blobs"),
                              "--work-dir", str(tmp_path / "w"), *extra])
    checked = settings_from_args(args)
    check_device(checked.device)
    return checked


def test_bad_options_name_themselves(tmp_path):
    for extra, says in ((("--queues", "tpu"), "unknown queue 'tpu'"),
                        (("--worker-threads", "0"), "--worker-threads must be 1 or more"),
                        (("--heartbeat-seconds", "0"), "--heartbeat-seconds must be more than 0"),
                        (("--maintenance-chance", "2000000"), "--maintenance-chance must be 0..1000000"),
                        (("--queues", "gpu"), "torch sees no CUDA device"),  # a GPU worker on this CPU-only box
                        (("--device", "tpu"), "--device 'tpu'"),
                        (("--threads", "many"), "--threads")):
        with pytest.raises(WorkerSettingsError, match=re.escape(says)):
            settings(tmp_path, *extra)
    with pytest.raises(WorkerSettingsError, match="redis://host:port/db"):
        settings_from_args(_namespace(tmp_path, redis="http://example.org"))


def _namespace(tmp_path: Path, **overrides) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--redis", "redis://127.0.0.1:6379/0", "--store", "x", "--work-dir", str(tmp_path)])
    for key, value in overrides.items():
        setattr(args, key, value)
    return args


def test_a_gpu_worker_takes_the_gpu_queue(tmp_path):
    gpu = settings(tmp_path, "--queues", "gpu", "--device", "cpu")  # the gpu queue on the CPU (tests, no CUDA)
    assert gpu.queues == ("gpu",) and gpu.device == "cpu"
    both = settings(tmp_path, "--queues", "cpu,gpu", "--device", "cpu")
    assert both.queues == ("cpu", "gpu")
    plain = settings(tmp_path)
    assert plain.queues == ("cpu",) and plain.device == "cpu" and plain.job_store == plain.redis_url
    with pytest.raises(WorkerSettingsError, match="CUDA"):
        settings(tmp_path, "--device", "cuda")  # --device cuda alone: the gpu queue, and it needs CUDA


def test_a_bad_option_on_the_command_line_is_one_line_and_status_2(tmp_path, redis_server):  # noqa: F811
    result = run_worker("--redis", redis_server.url, "--store", str(tmp_path / "blobs"),
                        "--work-dir", str(tmp_path / "w"), "--queues", "tpu")
    assert result.returncode == 2 and error_lines(result) == ["error: --queues: unknown queue 'tpu'; choose from "
                                                              "cpu, gpu"]


def test_the_worker_is_this_process_and_sigterm_stops_it(tmp_path, redis_server):  # noqa: F811
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "svc_core", "worker", "--redis", redis_server.url, "--store",
                                 str(tmp_path / "blobs"), "--work-dir", str(tmp_path / "w"), "--threads", "1"],
                                stdout=out, stderr=subprocess.STDOUT, cwd=REPO,
                                env=dict(os.environ, SVC_THREADS="1", OMP_NUM_THREADS="1"))
    try:
        import time

        deadline = time.monotonic() + CLI_GUARD_SECONDS
        while "worker " not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert f":{proc.pid}:" in log.read_text() or f":{proc.pid}" in log.read_text()  # its name has its PID
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        if children.exists():
            assert children.read_text().split() == []  # no forked worker processes
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        assert "stopping" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
