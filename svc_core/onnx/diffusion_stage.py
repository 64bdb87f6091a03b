"""Shallow diffusion / only-diffusion on ONNX Runtime: `OnnxDiffusionStage`, the torch `DiffusionStage` whose two
networks run as ONNX sessions (svc_core/onnx/diffusion_export.py).

    stage = OnnxDiffusionStage("diffusion/model_100000.pt", "diffusion/config.yaml")   # exports on first use
    svc = OnnxSvc("model.onnx", diffusion_model_path=..., diffusion_config_path=...)   # builds one itself
    svc = Svc(...); svc.diffusion = OnnxDiffusionStage.from_stage(svc.diffusion)       # torch voice, ORT diffusion

The denoiser (`decoder.denoise_fn`) and the vocoder's generator are swapped for modules calling ONNX Runtime, so
everything else is the torch stage's own code with the same numbers: Unit2Mel's condition, the sampler loop and its
schedule, mel extraction, the vocoder's chunk plan and its harmonic source (NoiseSource draws, float64 phase). The
torch weights of both networks are released; the stacked conditioner projections (L*2C x H) are kept to compute the
denoiser's `proj` input once per sampling run.

Exports are cached in `export_dir` (default: the per-user cache, e.g. ~/.cache/svc-studio/onnx), keyed by the
sha256 of the diffusion checkpoint + config and of the vocoder's weights; a file is moved into place only when
complete, so an interrupted export is redone.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from ..diffusion.stage import DiffusionStage
from ..errors import ModelError, OptionError
from .diffusion_export import (DEFAULT_CONDITION, DENOISER_KIND, VOCODER_KIND, denoiser_source,
                               export_denoiser_module, export_vocoder_module, project, stacked_projection,
                               vocoder_source, weights_sha256)
from .export import find_manifest, manifest_path, sha256_file
from .runtime import SessionInfo, make_session

APP_NAME = "svc-studio"
EXPORT_SUBDIR = "onnx"
_export_lock = threading.Lock()  # two stages exporting the same files at once would race on the move


def default_export_dir() -> Path:
    """The per-user cache folder's onnx/ (where the web demo keeps its exports too)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False)) / EXPORT_SUBDIR


def _numpy(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy())


class OnnxDenoiser(nn.Module):
    """Stands in for the WaveNet in GaussianDiffusion: forward(x [B,1,M,T], t [B] or 0-d, cond [B,H,T]) -> eps
    and cached(cond) -> eps_fn(x, t), both on an ONNX Runtime session of the exported denoiser. Each step is a call
    of this module, so svc_core.cancel's hooks still see every step."""

    def __init__(self, session, manifest: dict[str, Any], proj_weight: torch.Tensor, proj_bias: torch.Tensor):
        super().__init__()
        self.session = session
        self.condition = manifest["condition"]
        self.c_name = "proj" if self.condition == "projected" else "cond"
        self.in_dims, self.n_chans = int(manifest["in_dims"]), int(manifest["n_chans"])
        self.n_hidden, self._n_layers = int(manifest["n_hidden"]), int(manifest["n_layers"])
        if self.condition == "projected":  # [L*2C, H, 1] + [L*2C]; nothing is kept for a cond graph
            self.register_buffer("proj_weight", proj_weight.detach().clone())
            self.register_buffer("proj_bias", proj_bias.detach().clone())

    @property
    def n_layers(self) -> int:
        return self._n_layers

    def prepare(self, cond: torch.Tensor) -> np.ndarray:
        """cond [B, H, T] -> the graph's condition input (stacked projections [B, L*2C, T], or cond itself)."""
        if self.condition == "projected":
            with torch.no_grad():
                cond = project(cond.float(), self.proj_weight.to(cond.device), self.proj_bias.to(cond.device))
        return _numpy(cond)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: Optional[torch.Tensor],
                prepared: Optional[np.ndarray] = None) -> torch.Tensor:
        """x [B, 1, M, T], t [B] (int64 or float32) or 0-d, cond [B, H, T] (or `prepared`) -> eps [B, 1, M, T]."""
        c = self.prepare(cond) if prepared is None else prepared
        if t.dim() == 0:
            t = t.reshape(1).expand(x.shape[0])
        feed = {"x": _numpy(x), "t": _numpy(t.to(torch.float32)), self.c_name: c}
        eps = self.session.run(["eps"], feed)[0]
        return torch.from_numpy(eps).to(x.device)

    def cached(self, cond: torch.Tensor) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """eps_fn(x, t) for one sampling run on cond [B, H, T]: the condition input is made once here."""
        prepared = self.prepare(cond)

        def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return self(x, t, None, prepared)

        return eps_fn


class OnnxMelGenerator(nn.Module):
    """Stands in for MelGenerator in NsfHifiGAN: forward(mel [B, M, T], har_source [B, 1, T*upp]) -> audio
    [B, 1, T*upp] on ONNX Runtime; `m_source` (the harmonic source, torch) and the chunk arithmetic stay."""

    def __init__(self, session, m_source: nn.Module, upp: int, context: int) -> None:
        super().__init__()
        self.session = session
        self.m_source = m_source
        self.upp = int(upp)
        self._context = int(context)
        self.path: Optional[Path] = None  # the ONNX file (set by vocoder_to_onnx)

    def context_frames(self) -> int:
        return self._context

    def forward(self, x: torch.Tensor, har_source: torch.Tensor) -> torch.Tensor:
        audio = self.session.run(["audio"], {"mel": _numpy(x), "har_source": _numpy(har_source)})[0]
        return torch.from_numpy(audio).to(x.device)


def _export_once(target: Path, export: Callable[[Path], Any]) -> Path:
    """Run export(path) in a private folder and move the manifest, then the file, to target unless it exists."""
    side = manifest_path(target)
    with _export_lock:
        if target.is_file() and side.is_file():
            return target
        work = target.parent / f".partial-{target.stem}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            export(work / target.name)
            manifest_path(work / target.name).replace(side)
            (work / target.name).replace(target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


def _checked_manifest(path: Path, kind: str, key: str, value: str) -> dict[str, Any]:
    manifest = find_manifest(path) or {}
    if manifest.get("kind") != kind:
        raise ModelError(f"'{path}' is not an exported {kind} (manifest kind {manifest.get('kind')!r}); delete it "
                         "and it is exported again.")
    found = manifest
    for part in key.split("."):
        found = found.get(part, {}) if isinstance(found, dict) else {}
    if found != value:
        raise ModelError(f"'{path}' was exported from other weights ({key} {str(found)[:12]}..., expected "
                         f"{value[:12]}...); delete it and it is exported again.")
    return manifest


def vocoder_to_onnx(vocoder: nn.Module, export_dir: Optional[str | os.PathLike] = None, onnx_device: str = "auto",
                    threads: Optional[int] = None) -> Path:
    """Swap a loaded NsfHifiGAN's generator for its ONNX export (made once in export_dir, keyed by the weights'
    sha256): decode() then runs the generator on ONNX Runtime (the harmonic source stays in torch). Returns the
    file. A vocoder already on ONNX Runtime is left as it is."""
    generator = vocoder.generator
    if isinstance(generator, OnnxMelGenerator):
        return generator.path
    folder = Path(export_dir) if export_dir is not None else default_export_dir()
    folder.mkdir(parents=True, exist_ok=True)
    sha = weights_sha256(generator)
    path = folder / f"mel-vocoder-{sha[:16]}-{vocoder.kind}.onnx"
    _export_once(path, lambda out: export_vocoder_module(vocoder, out, vocoder_source(vocoder, None)))
    manifest = _checked_manifest(path, VOCODER_KIND, "weights_sha256", sha)
    session, _ = make_session(path, onnx_device, threads)
    vocoder.generator = OnnxMelGenerator(session, generator.m_source, generator.upp, manifest["context_frames"])
    vocoder.generator.path = path
    return path


class OnnxDiffusionStage(DiffusionStage):
    """DiffusionStage on ONNX Runtime (same constructor, plus where the exports go and the ORT settings).

    onnx_device: "auto" / "cpu" / "cuda" (svc_core.onnx.runtime); threads None = physical cores; condition:
    "projected" (default, measured faster) or "cond" (the graph projects the condition at every step)."""

    backend = "onnxruntime"

    def __init__(self, model_path: str | os.PathLike, config_path: str | os.PathLike,
                 vocoder_path: Optional[str] = None, device: str = "cpu", vocoder=None,
                 export_dir: Optional[str | os.PathLike] = None, onnx_device: str = "auto",
                 threads: Optional[int] = None, condition: str = DEFAULT_CONDITION) -> None:
        super().__init__(model_path, config_path, vocoder_path, device, vocoder)
        self._to_onnx(export_dir, onnx_device, threads, condition)

    @classmethod
    def from_stage(cls, stage: DiffusionStage, export_dir: Optional[str | os.PathLike] = None,
                   onnx_device: str = "auto", threads: Optional[int] = None,
                   condition: str = DEFAULT_CONDITION) -> "OnnxDiffusionStage":
        """A loaded torch stage moved to ONNX Runtime. Its model and vocoder are shared, not copied: their torch
        denoiser and generator are replaced by the ONNX ones (the old stage then runs on ORT too)."""
        if isinstance(stage, OnnxDiffusionStage):
            return stage
        new = cls.__new__(cls)
        new.__dict__.update(stage.__dict__)
        new._to_onnx(export_dir, onnx_device, threads, condition)
        return new

    def _to_onnx(self, export_dir: Optional[str | os.PathLike], onnx_device: str, threads: Optional[int],
                 condition: str) -> None:
        folder = Path(export_dir) if export_dir is not None else default_export_dir()
        folder.mkdir(parents=True, exist_ok=True)
        wavenet = self.model.decoder.denoise_fn
        model_sha = sha256_file(self.model_path)
        den_path = folder / f"diffusion-{model_sha[:16]}-{sha256_file(self.config_path)[:8]}-{condition}.onnx"
        _export_once(den_path, lambda out: export_denoiser_module(
            wavenet, out, denoiser_source(self.model, self.model_path, self.config_path), condition))
        den_manifest = _checked_manifest(den_path, DENOISER_KIND, "source_checkpoint.sha256", model_sha)
        den_session, info = make_session(den_path, onnx_device, threads)
        voc_path = vocoder_to_onnx(self.vocoder, folder, onnx_device, threads)
        self.model.decoder.denoise_fn = OnnxDenoiser(den_session, den_manifest, *stacked_projection(wavenet))
        self.session_info: SessionInfo = info
        self.onnx_files = {"denoiser": den_path, "vocoder": voc_path}

    def describe(self) -> str:
        return f"diffusion + mel vocoder on {self.session_info.describe()}"

    def dtypes(self, opts) -> tuple[None, None]:
        """The exported graphs run float32: diffusion_precision and a bf16 / fp16 vocoder_precision are the torch
        stage's (OptionError naming the way there); int8 (the so-vits vocoder's) leaves the mel vocoder float32."""
        for option in ("diffusion_precision", "vocoder_precision"):
            value = getattr(opts, option)
            if value not in ("fp32", "int8"):
                raise OptionError(f"{option} {value} is not available with diffusion on ONNX Runtime (float32 "
                                  "graphs); run diffusion in torch (diffusion_backend torch) or use fp32.")
        return None, None


__all__ = ["OnnxDenoiser", "OnnxDiffusionStage", "OnnxMelGenerator", "default_export_dir", "vocoder_to_onnx"]
