"""ONNX Runtime sessions: provider choice (CUDA when present, else CPU), thread settings for small machines.

Every file is held to the limits of svc_core/file_limits.py (proto_scan.check_onnx_file) before ONNX Runtime
parses it."""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from ..errors import MissingWeightsError, ModelError, OptionError
from .proto_scan import check_onnx_file

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def _ort():
    try:
        import onnxruntime
    except ImportError as err:  # pragma: no cover - onnxruntime is a requirement of this backend
        raise OptionError("The ONNX backend needs the 'onnxruntime' package (pip install onnxruntime==1.31.1).") \
            from err
    return onnxruntime


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads do not help these convolution-heavy graphs)."""
    try:
        import psutil

        physical = psutil.cpu_count(logical=False)
    except ImportError:  # pragma: no cover
        physical = None
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(physical or available, available))


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """What a session runs on: the provider ORT actually uses, and its intra-/inter-op threads."""

    provider: str
    intra_op_threads: int
    inter_op_threads: int

    def describe(self) -> str:
        return f"onnxruntime {self.provider} (intra-op threads {self.intra_op_threads}, inter-op " \
               f"{self.inter_op_threads})"


def pick_providers(device: str = "auto") -> list[str]:
    """device "auto": CUDA when ORT has it, else CPU; "cuda" requires CUDA; "cpu" forces CPU."""
    available = _ort().get_available_providers()
    device = (device or "auto").lower()
    if device.startswith("cuda"):
        if CUDA not in available:
            raise OptionError(f"device 'cuda' was asked for but this onnxruntime has only {available}; install "
                              "onnxruntime-gpu or use device 'cpu'.")
        return [CUDA, CPU]
    if device == "cpu":
        return [CPU]
    if device != "auto":
        raise OptionError(f"Unknown ONNX device '{device}'; use auto, cpu or cuda.")
    return [CUDA, CPU] if CUDA in available else [CPU]


def make_session(path: str | os.PathLike, device: str = "auto", threads: Optional[int] = None,
                 inter_op_threads: int = 1, model_bytes: Optional[bytes] = None, memory_arena: bool = True):
    """(onnxruntime.InferenceSession, SessionInfo). threads None/0 = physical cores; sequential execution.
    model_bytes: run this serialized model instead of the file's (a graph rewritten from the checked file at
    `path`, e.g. rvc_layout.with_noise_inputs). memory_arena False: no CPU arena (ORT then frees what a run used
    instead of keeping its largest size; for graphs run once per input whose working memory grows with it)."""
    ort = _ort()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingWeightsError("The ONNX backend", path, "Export one with `python -m svc_core export-onnx`.")
    check_onnx_file(path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads or physical_cores())
    opts.inter_op_num_threads = int(inter_op_threads)
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.enable_cpu_mem_arena = bool(memory_arena)
    opts.log_severity_level = 3  # errors only: shape-merge warnings of dynamic axes are noise
    from ..threads import spinning_wanted

    if not spinning_wanted():  # idle pool threads sleep: on a busy box spinning takes the CPU others need
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(path if model_bytes is None else model_bytes, sess_options=opts,
                                       providers=pick_providers(device))
    except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
        raise ModelError(f"ONNX Runtime cannot load '{os.path.basename(path)}': {err}") from err
    return session, SessionInfo(session.get_providers()[0], opts.intra_op_num_threads, opts.inter_op_num_threads)
