"""svc_core.threads: the thread count per job from the load, a forced count, and the OpenMP wait policy set before
torch loads (checked in fresh interpreters started through `python -m svc_core`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from svc_core import threads
from svc_core.errors import OptionError, SvcError
from svc_core.threads import Load, parse_threads, pick_threads

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    count = torch.get_num_threads()
    yield
    torch.set_num_threads(count)


@pytest.mark.parametrize("cores, busy, expected", [
    (2, 0.0, 2), (2, 0.4, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 1.4, 1), (2, 2.0, 1),  # never fewer than 1
    (4, 1.0, 3), (4, 1.6, 2), (4, 3.9, 1), (1, 0.0, 1), (8, 0.49, 8),
])
def test_auto_with_spinning_threads_takes_the_cores_others_leave(cores, busy, expected):
    assert pick_threads("auto", Load(cores, busy), spinning=True) == expected
    assert pick_threads(None, Load(cores, busy), spinning=True) == expected
    assert pick_threads(0, Load(cores, busy), spinning=True) == expected


@pytest.mark.parametrize("cores, busy", [(2, 0.0), (2, 1.0), (2, 2.0), (4, 3.9), (1, 0.0)])
def test_auto_with_sleeping_threads_takes_every_core(cores, busy):
    """Beside a busy process a second sleeping-wait thread costs no extra CPU-seconds and shortens the wall time
    (bench/notes.md, "Threads under contention"), so the load does not lower the count."""
    assert pick_threads("auto", Load(cores, busy)) == cores


@pytest.mark.parametrize("setting", [2, "2", " 2 "])
def test_a_forced_count_wins_over_the_load(setting):
    for spinning in (False, True):
        assert pick_threads(setting, Load(2, 2.0), spinning) == 2
        assert pick_threads(setting, Load(8, 0.0), spinning) == 2


@pytest.mark.parametrize("bad", ["two", "-1", "1.5", "999", -3])
def test_bad_settings_are_refused_with_the_choices(bad):
    with pytest.raises(OptionError, match="'auto' or a whole number") as info:
        parse_threads(bad)
    assert isinstance(info.value, SvcError)


def test_the_environment_gives_the_default(monkeypatch):
    monkeypatch.delenv(threads.THREADS_ENV, raising=False)
    assert threads.default_setting() == "auto"
    monkeypatch.setenv(threads.THREADS_ENV, "1")
    assert threads.default_setting() == "1"
    choice = threads.use_threads(load=Load(2, 0.0))
    assert choice.count == 1 and torch.get_num_threads() == 1 and choice.describe() == "1 thread (forced)"
    monkeypatch.setenv(threads.THREADS_ENV, "auto")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(threads, "_policy_missed", False)
    choice = threads.use_threads(load=Load(2, 1.0))
    assert choice.count == 2 and torch.get_num_threads() == 2
    assert choice.describe() == "2 threads (auto: 2 CPUs, waiting threads sleep)"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    choice = threads.use_threads(load=Load(2, 1.0))
    assert choice.count == 1 and torch.get_num_threads() == 1
    assert choice.describe() == "1 thread (auto: 2 CPUs, others busy 1.00, waiting threads spin)"


def test_measure_load_leaves_out_this_process(monkeypatch):
    """Machine-wide busy jiffies and our own CPU time over the window, faked: 2 of 4 CPUs busy, 0.5 of it ours."""
    samples = iter([(1000.0, 4000.0), (1000.0 + 200.0, 4000.0 + 400.0)])  # 200 of 400 jiffies busy: 50 %
    own = iter([10.0, 10.0 + 0.25])  # 0.25 CPU-seconds over 0.5 s: half a core
    clock = iter([100.0, 100.5])
    monkeypatch.setattr(threads, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    monkeypatch.setattr(threads.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(threads.time, "sleep", lambda s: None)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    load = threads.measure_load(0.5)
    assert load == Load(2, 1.5)  # 4 CPUs x 50 % = 2 cores busy, minus our 0.5
    assert pick_threads("auto", load, spinning=True) == 1


def test_measure_load_on_this_machine():
    load = threads.measure_load(0.05)
    assert load.cores == threads.available_cores() >= 1
    assert 0.0 <= load.busy_cores <= load.cores


def test_a_job_thread_sets_its_own_count_only():
    """torch.set_num_threads is OpenMP's count of the calling thread: a web job in its worker thread does not
    change a job running in another one."""
    main_count, seen = torch.get_num_threads(), {}

    def job():
        seen["chosen"] = threads.use_threads("1").count
        seen["in job"] = torch.get_num_threads()
        torch.set_num_threads(main_count)  # leave the default for threads started later as it was

    worker = threading.Thread(target=job)
    worker.start()
    worker.join()
    assert seen == {"chosen": 1, "in job": 1}
    assert torch.get_num_threads() == main_count


def test_spinning_follows_the_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    assert not threads.spinning_wanted()
    monkeypatch.setenv("OMP_WAIT_POLICY", "passive")
    assert not threads.spinning_wanted()
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.spinning_wanted()
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    assert threads.spinning_wanted()


def test_too_late_once_torch_is_loaded(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setattr(threads, "_policy_missed", False)
    assert "torch" in sys.modules
    assert threads.apply_wait_policy() is False and "OMP_WAIT_POLICY" not in os.environ
    assert threads.torch_threads_spin() and not threads.spinning_wanted()  # torch spins, ONNX Runtime need not
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert threads.apply_wait_policy() is False and os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def _fresh(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """`python ARGS` in a fresh interpreter, libgomp printing the settings it read (OMP_DISPLAY_ENV)."""
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", threads.THREADS_ENV)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**base, "OMP_DISPLAY_ENV": "TRUE", **env}, timeout=300)


def _libgomp_setting(stderr: str, name: str) -> str:
    line = next(line for line in stderr.splitlines() if line.strip().startswith(f"{name} ="))
    return line.split("=", 1)[1].strip().strip("'")


def test_the_entry_point_sets_the_wait_policy_before_torch_loads():
    proc = _fresh(["-m", "svc_core", "doctor", "--json"])
    assert _libgomp_setting(proc.stderr, "OMP_WAIT_POLICY") == "PASSIVE"  # what libgomp itself read
    info = json.loads(proc.stdout)
    assert info["torch_threads"] == min(info["cpu_count"], threads.available_cores())


def test_the_web_entry_point_sets_it_too():
    proc = _fresh(["app.py", "--help"])
    assert _libgomp_setting(proc.stderr, "OMP_WAIT_POLICY") == "PASSIVE" and "--threads" in proc.stdout


def test_the_users_wait_policy_wins_in_a_fresh_process():
    proc = _fresh(["-c", "import svc_core, torch"], OMP_WAIT_POLICY="ACTIVE")
    assert _libgomp_setting(proc.stderr, "OMP_WAIT_POLICY") == "ACTIVE"


def test_a_count_forced_in_the_environment_holds_for_the_python_api():
    proc = _fresh(["-c", "import svc_core, torch; print(torch.get_num_threads())"], SVC_THREADS="1")
    assert proc.stdout.split() == ["1"]


def test_an_unusable_count_in_the_environment_is_ignored(monkeypatch, caplog):
    monkeypatch.setenv(threads.THREADS_ENV, "lots")
    assert threads.apply_forced_count() is None
    assert "$SVC_THREADS ignored" in caplog.text


def test_the_python_api_import_sets_it_too():
    code = "import os, svc_core, torch; print(os.environ['OMP_WAIT_POLICY'], torch.get_num_threads())"
    proc = _fresh(["-c", code])
    assert _libgomp_setting(proc.stderr, "OMP_WAIT_POLICY") == "PASSIVE"
    assert proc.stdout.split() == ["PASSIVE", str(threads.available_cores())]


def _tiny_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what every onnxruntime reads
    onnx.save(model, path)
    return path


def test_onnx_runtime_sessions_follow_the_wait_policy(tmp_path, monkeypatch):
    from svc_core.onnx.runtime import make_session

    path = _tiny_onnx(tmp_path / "relu.onnx")
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    session, info = make_session(path, device="cpu", threads=2)
    assert session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert info.intra_op_threads == 2
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    session, _ = make_session(path, device="cpu", threads=2)
    with pytest.raises(Exception, match="does not have configuration"):  # onnxruntime's default: spinning
        session.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")


def test_the_cli_refuses_a_bad_count_before_loading_anything(capsys):
    from svc_core.cli import main

    with pytest.raises(SystemExit) as info:
        main(["infer", "-m", "missing.pth", "-i", "missing.wav", "--threads", "two"])
    assert info.value.code == 2
    assert "--threads: threads must be 'auto' or a whole number" in capsys.readouterr().err
