"""Which engine runs a voice in the web demo: torch eager (`Svc`) or ONNX Runtime (`OnnxSvc`).

The ONNX backend exports the voice's generator once (`svc_core.onnx.export_synthesizer`) into the server's work
folder, keyed by the sha256 of the checkpoint and config, and reuses the file for later loads and restarts that
keep the work folder; its content encoder is exported the same way (float32, keyed by the weights' sha256) and runs
on ONNX Runtime too, falling back to torch when an encoder cannot be exported. `describe(svc)` is the line the page
shows for "which backend / execution provider ran". A voice that is only an ONNX file (upstream's
`<name>_SoVits.onnx`) runs on ONNX Runtime whichever backend is asked for (`backend_for`). Which engine a voice
file needs is its family's (svc_core.families); RVC voices run in torch unless this install can export them to ONNX
(`rvc_onnx_available`: svc_core.onnx.rvc_export), then the same export-once path applies.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .. import families
from ..errors import OptionError
from .models import ModelEntry

TORCH = "torch"
ONNX = "onnx"
BACKENDS = (TORCH, ONNX)
BACKEND_LABELS = {TORCH: "torch (eager)", ONNX: "ONNX Runtime (exported on first use)"}

_export_lock = threading.Lock()  # two voices exporting at once would only double the memory peak


def check_backend(name: str | None) -> str:
    """'' / None -> torch; otherwise one of BACKENDS (else an error naming the choices)."""
    name = (name or TORCH).strip().lower()
    if name in ("onnxruntime", "ort"):
        name = ONNX
    if name not in BACKENDS:
        raise OptionError(f"Unknown backend '{name}'; choose one of: {', '.join(BACKENDS)}.")
    return name


def rvc_onnx_available() -> bool:
    """This install can export RVC voices to ONNX and run them there (svc_core.onnx.rvc_export / rvc_runtime)."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(f"svc_core.onnx.{name}") is not None
                   for name in ("rvc_export", "rvc_runtime"))
    except ImportError:  # svc_core.onnx itself cannot be imported (ONNX Runtime missing)
        return False


def backend_for(entry: ModelEntry, name: str | None) -> str:
    """The backend that runs `entry` when `name` is asked for: the family's engine for a voice that is only an
    ONNX file, torch for a diffusion model alone (there is no synthesizer to export) and for an RVC voice when RVC's
    ONNX export is not available."""
    backend = check_backend(name)
    if entry.diffusion_only:
        return TORCH
    kind = families.family(entry.family)
    if kind.engine == families.ONNX:
        return ONNX
    if kind.is_rvc and not rvc_onnx_available():
        return TORCH
    return backend


def diffusion_kwargs(entry: ModelEntry) -> dict[str, Any]:
    """Svc / OnnxSvc keywords for the voice's diffusion model and its own mel vocoder (none when it has neither;
    without its own vocoder the engine finds one: svc_core.diffusion.stage.find_vocoder)."""
    out: dict[str, Any] = {}
    if entry.diffusion is not None:
        out.update(diffusion_model_path=entry.diffusion.model, diffusion_config_path=entry.diffusion.config)
    if entry.vocoder_path is not None:
        out["vocoder_path"] = entry.vocoder_path
    return out


def _export_once(target: Path, extra: list[Path], export) -> Path:
    """Run `export(path)` into a private folder and move its files to `target` (+ `extra`) unless they exist: the
    main file moves last, so its presence means the export is complete (a crash leaves no half file)."""
    import shutil

    with _export_lock:
        if not (target.is_file() and all(f.is_file() for f in extra)):
            partial_dir = target.parent / f".partial-{target.stem}"
            shutil.rmtree(partial_dir, ignore_errors=True)
            partial_dir.mkdir(parents=True)
            export(partial_dir / target.name)
            for f in extra:
                (partial_dir / f.name).replace(f)
            (partial_dir / target.name).replace(target)
            shutil.rmtree(partial_dir, ignore_errors=True)
    return target


def onnx_encoder_for(name: str, weights: str | None, export_dir: Path, device: str = "cpu") -> Any:
    """The content encoder `name` exported to ONNX (float32: the same features within 5e-6) and loaded on ONNX
    Runtime; exported once per weights file (keyed by its sha256) into export_dir."""
    from ..encoders import find_weights
    from ..onnx import OnnxEncoder, export_encoder
    from ..onnx.export import sha256_file

    path = find_weights(name, weights)
    target = export_dir / f"encoder-{name}-{sha256_file(path)[:16]}.onnx"
    _export_once(target, [Path(str(target) + ".json")], lambda out: export_encoder(name, path, out))
    return OnnxEncoder(target, device="cuda" if str(device).startswith("cuda") else "auto")


def onnx_file_for(entry: ModelEntry, export_dir: Path) -> Path:
    """The exported ONNX file of a voice (exported now if this checkpoint + config was not exported before, or
    was exported without the split pair that chunked decoding needs)."""
    from ..onnx import export_synthesizer
    from ..onnx.export import sha256_file
    from ..onnx.split_export import split_paths

    if families.family(entry.family).is_rvc:
        from ..onnx.rvc_export import export_rvc

        target = export_dir / f"rvc-{sha256_file(entry.model_path)[:16]}.onnx"
        files = [Path(str(target) + ".json"), *split_paths(target).values()]
        return _export_once(target, files, lambda out: export_rvc(entry.model_path, out,
                                                                       config_path=entry.config_path))
    key = sha256_file(entry.model_path)[:16] + "-" + sha256_file(entry.config_path)[:8]
    target = export_dir / f"{key}.onnx"
    files = [Path(str(target) + ".json"), *split_paths(target).values()]
    return _export_once(target, files, lambda out: export_synthesizer(entry.model_path, entry.config_path, out))


def load_voice(entry: ModelEntry, backend: str, encoder: Any, device: str, export_dir: Path,
               onnx_path: Path | None = None) -> Any:
    """A ready engine for `entry` on `backend` (Svc or OnnxSvc), sharing the given content encoder. onnx_path: the
    voice's export when the caller already has it (else `onnx_file_for`)."""
    from ..pipeline import Svc

    diffusion = diffusion_kwargs(entry)
    if entry.diffusion_only:  # Svc(None, None, diffusion_model_path=...): the diffusion model renders everything
        return Svc(None, None, cluster_path=entry.cluster_path, device=device, encoder=encoder, **diffusion)
    if backend_for(entry, backend) == TORCH:
        return Svc(entry.model_path, entry.config_path, cluster_path=entry.cluster_path, device=device,
                   encoder=encoder, **diffusion)
    path = onnx_path or (entry.model_path if entry.onnx_only else onnx_file_for(entry, export_dir))
    if families.family(entry.family).is_rvc:  # the family table loads the export as an RvcOnnxVoice
        return Svc(path, None, cluster_path=entry.cluster_path, device=device, encoder=encoder)
    from ..onnx import OnnxSvc

    return OnnxSvc(path, entry.config_path, cluster_path=entry.cluster_path, encoder=encoder,
                   device="cuda" if str(device).startswith("cuda") else "auto", **diffusion)


def describe(svc: Any) -> str:
    """'torch eager on cpu (2 threads)' or 'onnxruntime CPUExecutionProvider (intra-op threads 2, inter-op 1);
    encoder on ONNX Runtime'."""
    info = getattr(svc, "session_info", None) or getattr(getattr(svc, "model", None), "session_info", None)
    if info is not None:  # OnnxSvc, or Svc running an RVC voice's export (RvcOnnxVoice)
        on_onnx = getattr(getattr(svc, "encoder", None), "session_info", None) is not None
        stage = getattr(svc, "diffusion", None)
        diffusion = "" if stage is None else "; diffusion model and mel vocoder " + (
            "on ONNX Runtime" if getattr(stage, "session_info", None) is not None else "in torch")
        return info.describe() + ("; encoder on ONNX Runtime" if on_onnx else "; encoder in torch") + diffusion
    import torch

    return f"torch eager on {getattr(svc, 'device', 'cpu')} ({torch.get_num_threads()} threads)"


__all__ = ["BACKENDS", "BACKEND_LABELS", "ONNX", "TORCH", "backend_for", "check_backend", "describe",
           "diffusion_kwargs", "load_voice", "onnx_encoder_for", "onnx_file_for", "rvc_onnx_available"]
