"""Export the shallow-diffusion stage's two networks to ONNX: the WaveNet denoiser and the NSF-HiFiGAN mel vocoder's
generator, each with a manifest (kind "diffusion-denoiser" / "mel-vocoder", source sha256, config) and a check
against torch at export.

What stays outside the graphs (torch, exact): the Unit2Mel condition, the sampler loop and schedule, mel extraction,
and the vocoder's harmonic source (its NoiseSource draws and float64 phase), so recorded noise reproduces runs.

| file | inputs (all float32) | output |
|---|---|---|
| denoiser, condition "projected" | x [B, 1, M, T], t [B], proj [B, L*2C, T] | eps [B, 1, M, T] |
| denoiser, condition "cond" | x [B, 1, M, T], t [B], cond [B, H, T] | eps [B, 1, M, T] |
| mel vocoder | mel [B, M, T] (scaled for the kind), har_source [B, 1, T*hop] | audio [B, 1, T*hop] |

`proj` = every residual layer's conditioner projection of cond, stacked on channels (layer 0 first): it does not
depend on x or t, so the runtime computes it once per sampling run (`stacked_projection`) instead of at every step.
Steps are float32 (DPM-Solver / UniPC pass fractional steps; integer steps up to 2^24 are exact in float32 and the
step embedding multiplies them in float32 either way).
"""
from __future__ import annotations

import datetime
import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ModelError, OptionError
from .export import MANIFEST_FORMAT, OPSET, _store_manifest, sha256_file

DENOISER_KIND = "diffusion-denoiser"
VOCODER_KIND = "mel-vocoder"
CONDITIONS = ("projected", "cond")  # what the denoiser graph takes besides x and t
DEFAULT_CONDITION = "projected"  # measured faster (docs: onnx-and-precision)
TRACE_FRAMES = 48  # frames of the trace inputs; the graphs work for any T >= 1
VERIFY_FRAMES = 77  # frames of the export check (untraced: the dynamic axis really is dynamic)
VERIFY_TOL = 1e-3  # max abs difference ORT vs torch that fails an export (measured ~1e-6; tests hold 1e-5)
VERIFY_STEPS = (99.0, 12.0, 0.0)  # steps of the denoiser check (float; integer values as DDIM/PNDM pass them)
VERIFY_F0 = 220.0  # Hz, the vocoder check's excitation is random noise: only the graph is checked


class DenoiserGraph(nn.Module):
    """WaveNet with float32 steps and either cond [B, H, T] or the stacked projections [B, L*2C, T]."""

    def __init__(self, wavenet: nn.Module, condition: str = DEFAULT_CONDITION) -> None:
        super().__init__()
        if condition not in CONDITIONS:
            raise OptionError(f"Unknown denoiser condition input '{condition}'; choose {' or '.join(CONDITIONS)}.")
        self.wavenet = wavenet
        self.condition = condition

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        if self.condition == "cond":
            return self.wavenet(x, t, c)
        parts = list(torch.split(c, 2 * self.wavenet.n_chans, dim=1))
        return self.wavenet._run(x, t, None, parts)


def stacked_projection(wavenet: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight [L*2C, H, 1], bias [L*2C]): every layer's conditioner_projection as one 1x1 convolution."""
    convs = [layer.conditioner_projection for layer in wavenet.residual_layers]
    return (torch.cat([c.weight.detach() for c in convs], 0).contiguous(),
            torch.cat([c.bias.detach() for c in convs], 0).contiguous())


def project(cond: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """cond [B, H, T] -> stacked projections [B, L*2C, T] (the denoiser graph's `proj`)."""
    return F.conv1d(cond, weight, bias)


def weights_sha256(module: nn.Module) -> str:
    """sha256 over a module's state-dict names, shapes and float32 bytes (a cache key independent of the file)."""
    digest = hashlib.sha256()
    for name, value in module.state_dict().items():
        digest.update(f"{name}{list(value.shape)}".encode())
        digest.update(value.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _export(module: nn.Module, inputs: tuple[torch.Tensor, ...], names: list[str], out_path: Path,
            axes: dict[str, dict[int, str]], opset: int) -> None:
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings (python ints from shapes)
        torch.onnx.export(module, inputs, os.fspath(out_path), dynamo=False, opset_version=int(opset),
                          input_names=names, output_names=[list(axes)[-1]], dynamic_axes=axes,
                          do_constant_folding=True)


def _denoiser_inputs(wavenet: nn.Module, condition: str, frames: int, batch: int = 1,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 1, wavenet.in_dims, frames, generator=gen)
    cond = torch.randn(batch, wavenet.n_hidden, frames, generator=gen)
    c = cond if condition == "cond" else project(cond, *stacked_projection(wavenet))
    return {"x": x, "t": torch.full((batch,), 50.0), "c": c}


def export_denoiser_module(wavenet: nn.Module, out_path: str | os.PathLike, source: dict[str, Any],
                           condition: str = DEFAULT_CONDITION, opset: int = OPSET,
                           verify: bool = True) -> dict[str, Any]:
    """A loaded WaveNet -> ONNX at out_path (+ manifest). source: what it came from (files, sha256, config)."""
    import onnx

    graph = DenoiserGraph(wavenet.eval(), condition).eval()
    c_name = "proj" if condition == "projected" else "cond"
    inputs = _denoiser_inputs(wavenet, condition, TRACE_FRAMES)
    out_path = Path(out_path)
    axes = {"x": {0: "batch", 3: "frames"}, "t": {0: "batch"}, c_name: {0: "batch", 2: "frames"},
            "eps": {0: "batch", 3: "frames"}}
    _export(graph, (inputs["x"], inputs["t"], inputs["c"]), ["x", "t", c_name], out_path, axes, opset)
    layers, chans = wavenet.n_layers, wavenet.n_chans
    manifest = {
        "format": MANIFEST_FORMAT, "kind": DENOISER_KIND, "file": out_path.name, **source,
        "condition": condition, "in_dims": int(wavenet.in_dims), "n_layers": int(layers), "n_chans": int(chans),
        "n_hidden": int(wavenet.n_hidden), "opset": int(opset),
        "inputs": {"x": {"dtype": "float32", "shape": ["B", 1, int(wavenet.in_dims), "T"]},
                   "t": {"dtype": "float32", "shape": ["B"]},
                   c_name: {"dtype": "float32", "shape": ["B", int(layers * 2 * chans) if condition == "projected"
                                                          else int(wavenet.n_hidden), "T"]}},
        "outputs": {"eps": {"dtype": "float32", "shape": ["B", 1, int(wavenet.in_dims), "T"]}},
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if verify:
        manifest["parity"] = _verify_denoiser(graph, out_path, c_name)
    _store_manifest(out_path, manifest)
    return manifest


def _verify_denoiser(graph: DenoiserGraph, path: Path, c_name: str) -> dict[str, Any]:
    from .runtime import make_session

    session, info = make_session(path, device="cpu")
    inputs = _denoiser_inputs(graph.wavenet, graph.condition, VERIFY_FRAMES, batch=2, seed=1)
    worst = 0.0
    for step in VERIFY_STEPS:
        t = torch.tensor([step, step + 1.5], dtype=torch.float32)
        with torch.no_grad():
            ref = graph(inputs["x"], t, inputs["c"]).numpy()
        got = session.run(["eps"], {"x": inputs["x"].numpy(), "t": t.numpy(), c_name: inputs["c"].numpy()})[0]
        worst = max(worst, _check(got, ref, "denoiser"))
    return {"frames": VERIFY_FRAMES, "batch": 2, "steps": list(VERIFY_STEPS), "max_abs_diff": worst,
            "provider": info.provider}


def _check(got: np.ndarray, ref: np.ndarray, what: str) -> float:
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    if diff > VERIFY_TOL:
        raise ModelError(f"The exported {what} does not reproduce the torch model (shape {got.shape} vs {ref.shape}, "
                         f"max abs difference {diff:.2e}); please report this model's config.")
    return diff


def export_vocoder_module(vocoder: nn.Module, out_path: str | os.PathLike, source: dict[str, Any],
                          opset: int = OPSET, verify: bool = True) -> dict[str, Any]:
    """A loaded NsfHifiGAN (svc_core.vocoders) -> its generator (mel + excitation -> audio) as ONNX + manifest."""
    import dataclasses

    import onnx

    generator = vocoder.generator.eval()
    out_path = Path(out_path)
    inputs = _vocoder_inputs(vocoder, TRACE_FRAMES)
    axes = {"mel": {0: "batch", 2: "frames"}, "har_source": {0: "batch", 2: "samples"},
            "audio": {0: "batch", 2: "samples"}}
    _export(generator, inputs, ["mel", "har_source"], out_path, axes, opset)
    cfg = vocoder.config
    manifest = {
        "format": MANIFEST_FORMAT, "kind": VOCODER_KIND, "file": out_path.name, **source,
        "vocoder_type": vocoder.kind, "mel_scale": float(vocoder.mel_scale),
        "sample_rate": int(vocoder.sample_rate), "hop_size": int(vocoder.hop_size), "n_mels": int(vocoder.n_mels),
        "context_frames": int(vocoder.context_frames()), "config": _jsonable(dataclasses.asdict(cfg)),
        "opset": int(opset),
        "inputs": {"mel": {"dtype": "float32", "shape": ["B", int(vocoder.n_mels), "T"]},
                   "har_source": {"dtype": "float32", "shape": ["B", 1, f"T*{vocoder.hop_size}"]}},
        "outputs": {"audio": {"dtype": "float32", "shape": ["B", 1, f"T*{vocoder.hop_size}"]}},
        "excitation": "svc_core.vocoders.source.HarmonicSource in torch (its NoiseSource draws, float64 phase)",
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if verify:
        manifest["parity"] = _verify_vocoder(generator, vocoder, out_path)
    _store_manifest(out_path, manifest)
    return manifest


def _vocoder_inputs(vocoder: nn.Module, frames: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A plausible log-mel [1, M, T] and a real excitation [1, 1, T*hop] from a steady f0."""
    from ..noise import TorchNoise

    gen = torch.Generator().manual_seed(seed)
    mel = -6.0 + 2.0 * torch.randn(1, int(vocoder.n_mels), frames, generator=gen)
    har = vocoder.generator.m_source(torch.full((1, frames), VERIFY_F0), TorchNoise(gen))
    return mel, har


def _verify_vocoder(generator: nn.Module, vocoder: nn.Module, path: Path) -> dict[str, Any]:
    from .runtime import make_session

    session, info = make_session(path, device="cpu")
    mel, har = _vocoder_inputs(vocoder, VERIFY_FRAMES, seed=1)
    with torch.no_grad():
        ref = generator(mel, har).numpy()
    got = session.run(["audio"], {"mel": mel.numpy(), "har_source": har.numpy()})[0]
    return {"frames": VERIFY_FRAMES, "max_abs_diff": _check(got, ref, "mel vocoder"), "provider": info.provider}


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------------------------- from files
def export_diffusion(model_path: str | os.PathLike, config_path: str | os.PathLike, out_path: str | os.PathLike,
                     condition: str = DEFAULT_CONDITION, opset: int = OPSET, verify: bool = True) -> dict[str, Any]:
    """model_*.pt + config.yaml -> the denoiser as ONNX at out_path (+ out_path.json). Returns the manifest."""
    from ..diffusion.loader import load_diffusion

    model = load_diffusion(model_path, config_path)
    return export_denoiser_module(model.decoder.denoise_fn, out_path, denoiser_source(model, model_path, config_path),
                                  condition, opset, verify)


def denoiser_source(model: nn.Module, model_path: str | os.PathLike, config_path: str | os.PathLike) -> dict:
    """The manifest fields naming a denoiser's checkpoint and config (sha256, the yaml's fields)."""
    return {"source_checkpoint": {"file": os.path.basename(os.fspath(model_path)), "sha256": sha256_file(model_path)},
            "config_sha256": sha256_file(config_path), "config": _jsonable(model.config.to_dict()),
            "timesteps": int(model.decoder.timesteps), "k_step_max": int(model.decoder.k_step_max)}


def export_mel_vocoder(vocoder_path: str | os.PathLike, out_path: str | os.PathLike, kind: str = "nsf-hifigan",
                       opset: int = OPSET, verify: bool = True) -> dict[str, Any]:
    """An openvpi NSF-HiFiGAN (`model` file or its folder, config.json beside it) -> ONNX generator + manifest."""
    from ..vocoders import load_mel_vocoder
    from ..vocoders.loader import resolve_model_file

    vocoder = load_mel_vocoder(vocoder_path, kind=kind)
    return export_vocoder_module(vocoder, out_path, vocoder_source(vocoder, resolve_model_file(vocoder_path)),
                                 opset, verify)


def vocoder_source(vocoder: nn.Module, model_file: Optional[str | os.PathLike]) -> dict[str, Any]:
    """The manifest fields naming a vocoder's weights (file sha256 when the file is known, weights sha256 always)."""
    out: dict[str, Any] = {"weights_sha256": weights_sha256(vocoder.generator)}
    if model_file is not None:
        out["source_checkpoint"] = {"file": os.path.basename(os.fspath(model_file)),
                                    "sha256": sha256_file(model_file)}
    return out
