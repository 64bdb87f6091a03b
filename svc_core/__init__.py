"""so-vits-svc 4.x compatible voice conversion engine.

Public entry points: `load_synthesizer(checkpoint_path, config_path)` and `Svc(model_path, config_path, ...)`.
They are imported lazily so that `import svc_core.<module>` stays cheap.
"""
from __future__ import annotations

from typing import Any

from .memory import limit_malloc_arenas
from .threads import apply_forced_count, apply_wait_policy

limit_malloc_arenas()  # fewer glibc heaps for the convolution threads: ~110 MB less peak RSS (svc_core.memory)
apply_wait_policy()  # waiting OpenMP threads sleep, not spin: set before torch loads libgomp (svc_core.threads)
apply_forced_count()  # $SVC_THREADS=N: torch's default count for the Python API too

__all__ = ["Svc", "load_synthesizer", "SvcError", "use_threads", "SvcClient", "ApiError"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Svc":
        from .pipeline import Svc

        return Svc
    if name == "load_synthesizer":
        from .checkpoint import load_synthesizer

        return load_synthesizer
    if name == "use_threads":  # svc_core.use_threads("auto" | N): this thread's torch threads for the next job
        from .threads import use_threads

        return use_threads
    if name == "SvcError":
        from .errors import SvcError

        return SvcError
    if name in ("SvcClient", "ApiError"):  # the REST API's HTTP client (svc_core.client; httpx only)
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'svc_core' has no attribute {name!r}")
