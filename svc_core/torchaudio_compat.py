"""Make torchcrepe and torchfcpe importable when the installed torchaudio cannot load.

Both packages import torchaudio at module level, but neither needs its compiled extension for what we use:
torchcrepe only calls torchaudio for file loading (we pass arrays), torchfcpe only uses `transforms.Resample`.
torchaudio wheels are built for one torch release; with any other torch its C extension fails to load and the
import raises. In that case we register a small pure-Python stand-in that offers exactly those entry points,
backed by our own resampler (`svc_core.resample`), and leave everything else raising a clear error.
"""
from __future__ import annotations

import sys
import types

from .resample import Resample, sinc_resample

_STATE: dict[str, str] = {}


def _unavailable(name: str):
    def call(*args, **kwargs):
        raise RuntimeError(
            f"torchaudio.{name} is not available: the installed torchaudio does not match torch "
            f"({_STATE.get('reason', 'unknown reason')}). svc_core reads audio with soundfile instead."
        )

    return call


def _install_stand_in(reason: str) -> None:
    for key in [k for k in sys.modules if k == "torchaudio" or k.startswith("torchaudio.")]:
        del sys.modules[key]
    root = types.ModuleType("torchaudio")
    root.__doc__ = "svc_core stand-in for a torchaudio build that does not match the installed torch."
    root.__version__ = "0+svc_core_stand_in"
    transforms = types.ModuleType("torchaudio.transforms")
    transforms.Resample = Resample
    functional = types.ModuleType("torchaudio.functional")
    functional.resample = lambda waveform, orig_freq, new_freq, *a, **k: sinc_resample(waveform, orig_freq, new_freq)
    root.transforms, root.functional = transforms, functional
    root.load = _unavailable("load")
    root.save = _unavailable("save")
    sys.modules.update({"torchaudio": root, "torchaudio.transforms": transforms, "torchaudio.functional": functional})
    _STATE["reason"] = reason


def ensure_torchaudio() -> str:
    """Import torchaudio, or install the stand-in. Returns "native" or "stand-in"."""
    if "mode" in _STATE:
        return _STATE["mode"]
    try:
        import torchaudio  # noqa: F401

        _STATE["mode"] = "native"
    except (ImportError, OSError, RuntimeError) as err:
        _install_stand_in(f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
        _STATE["mode"] = "stand-in"
    return _STATE["mode"]
