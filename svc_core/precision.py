"""Reduced precision (opt-in): the NSF-HiFiGAN's convolutions, or a torch content encoder's convolutions and matrix
products, in bfloat16 / float16 under torch autocast (`vocoder_precision`, `encoder_precision`).

The vocoder is ~90 % of a conversion's arithmetic (bench/README.md). On CPUs with native bfloat16 dot products
(AVX512-BF16 or AMX) oneDNN runs its convolutions about twice as fast in bf16; on CUDA, fp16 / bf16 use the tensor
cores. The output is not bit-equal to float32 (max abs 3e-3 on the trained starter voice, up to 2.5e-2 on random
full-size weights; see docs/onnx-and-precision.md, "Vocoder precision"), which is why float32 stays the default.
The ONNX backend refuses bf16 / fp16; its reduced-precision vocoder is int8 (svc_core.onnx.vocoder_int8). The NSF
source (phase accumulation) stays float32 in every mode. A torch content encoder in bf16 runs ~1.8x faster here,
its features within ~2 % relative RMS of float32 (docs/onnx-and-precision.md, "Encoder precision"); encoders on
ONNX Runtime refuse it.
"""
from __future__ import annotations

import contextlib
import functools
import os
from typing import ContextManager, Optional

import torch

from .errors import OptionError

PRECISIONS = ("fp32", "bf16", "fp16")  # the torch backend's
ONNX_PRECISIONS = ("fp32", "int8")  # the ONNX backend's (int8: an export with its int8 vocoder, onnx/vocoder_int8.py)
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bf16 dot products
CPU_INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")  # int8 dot products (x86 VNNI / AMX, ARM dotprod)


@functools.lru_cache(maxsize=None)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel lists (x86 "flags", ARM "Features"); empty when unknown."""
    if not os.path.exists(cpuinfo):
        return frozenset()
    with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(("flags", "Features")):
                return frozenset(line.split(":", 1)[-1].split())
    return frozenset()


def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU does bf16 dot products in hardware (without them oneDNN emulates bf16: slower)."""
    return bool(cpu_flags(cpuinfo) & set(CPU_BF16_FLAGS))


def cpu_has_int8_dot(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when the CPU has int8 dot-product instructions, which the int8 vocoder / encoder need to gain most."""
    return bool(cpu_flags(cpuinfo) & set(CPU_INT8_FLAGS))


def check_precision(precision: str, device: torch.device, option: str = "vocoder_precision") -> Optional[torch.dtype]:
    """'fp32' -> None; 'bf16'/'fp16' -> the autocast dtype when `device` runs it fast, else OptionError.
    `option` names the setting in the messages (vocoder_precision or encoder_precision)."""
    if precision == "int8":
        if option == "encoder_precision":
            raise OptionError("encoder_precision int8 is not a torch mode: the int8 content encoder is an ONNX file "
                              "(`export-onnx --encoder NAME --int8`, then --encoder NAME.int8.onnx).")
        raise OptionError("vocoder_precision int8 runs on the ONNX backend (an export made with --int8-vocoder); "
                          "the torch backend runs fp32, bf16 or fp16.")
    if precision not in PRECISIONS:
        raise OptionError(f"{option} must be one of {', '.join(PRECISIONS)}; got '{precision}'.")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if precision == "bf16" and not torch.cuda.is_bf16_supported():
            raise OptionError(f"This GPU has no bfloat16 support; use {option} fp16 (or fp32).")
        return DTYPES[precision]
    if precision == "fp16":
        raise OptionError(f"{option} fp16 is for CUDA GPUs; on the CPU use bf16 (needs AVX512-BF16 or AMX) or fp32.")
    if not cpu_has_native_bf16():
        raise OptionError(f"{option} bf16 needs a CPU with AVX512-BF16 or AMX (e.g. AMD Zen 4, Intel Sapphire "
                          "Rapids); this one would emulate it and run slower than fp32. Use fp32.")
    return DTYPES[precision]


def available_precisions(device: torch.device | str = "cpu") -> list[str]:
    """The vocoder precisions that run fast on `device`: always fp32, bf16 / fp16 where supported."""
    device = torch.device(device)
    found = ["fp32"]
    for name in PRECISIONS[1:]:
        try:
            check_precision(name, device)
        except OptionError:
            continue
        found.append(name)
    return found


def autocast(device: torch.device, dtype: Optional[torch.dtype]) -> ContextManager:
    """Autocast context for the vocoder's or a content encoder's matrix products (a no-op for float32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
