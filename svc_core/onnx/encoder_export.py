"""Content encoders to ONNX (optionally int8), and `OnnxEncoder`, which runs such a file behind ContentEncoder.

    manifest = export_encoder("vec768l12", "pretrain/checkpoint_best_legacy_500.pt", "vec768l12.onnx", int8=True)
    enc = OnnxEncoder("vec768l12.onnx")              # or "vec768l12.int8.onnx"
    feats = enc.encode(wav16k)                       # [1, C, T] float32, like the torch encoder

Graph: input `wav` float32 [1, N] (16 kHz; dynamic N), output `features` float32 [1, C, T] (dynamic T). The
manifest (sidecar `<file>.json` and ONNX metadata, as for synthesizers) records the encoder name, dim, the source
weights' sha256, and the measured export check: ONNX Runtime vs torch max abs difference and, for int8, the
feature error of the quantised file (max abs, relative RMS, mean cosine similarity per frame).

int8 is ONNX Runtime's dynamic quantisation of the MatMul/Gemm weights (activations stay float): the file shrinks
about 4x and the transformer layers run faster on CPUs with int8 dot products; the report says what it does to
the features, so owners can decide.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch import nn

from ..constants import ENCODER_SAMPLE_RATE
from ..encoders.base import ContentEncoder
from ..errors import ModelError
from .export import MANIFEST_FORMAT, OPSET, _store_manifest, find_manifest, read_manifest, sha256_file

CHECK_SECONDS = (1.37, 3.1)  # lengths of the export check clips (neither is the traced length)
TRACE_SECONDS = 2.0


class EncoderGraph(nn.Module):
    """wav [1, N] -> features [1, C, T]: the torch encoder's `_encode`, as one module for the exporter."""

    def __init__(self, encoder: ContentEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.model = getattr(encoder, "model", None)  # registers the weights as this module's parameters

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.encoder._encode(wav)


def _mha_forward(mha: nn.MultiheadAttention):
    """A drop-in forward for a self-attention `nn.MultiheadAttention` (no attn_mask) written with shape-agnostic
    ops: torch's own traces with the trace length frozen into its reshapes."""

    def forward(query, key, value, key_padding_mask=None, need_weights=False, attn_mask=None, **_):
        if attn_mask is not None:
            raise ModelError("Exporting attention with an attn_mask is not supported.")
        x = query if mha.batch_first else query.transpose(0, 1)  # [B, T, D]
        q, k, v = torch.nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.unflatten(-1, (mha.num_heads, -1)).transpose(1, 2)

        mask = None if key_padding_mask is None else ~key_padding_mask.bool()[:, None, None, :]
        out = torch.nn.functional.scaled_dot_product_attention(heads(q), heads(k), heads(v), attn_mask=mask)
        out = mha.out_proj(out.transpose(1, 2).flatten(2))
        return (out if mha.batch_first else out.transpose(0, 1)), None

    return forward


@contextlib.contextmanager
def _exportable(encoder: ContentEncoder) -> Iterator[None]:
    """Switch the model to its exportable form for the duration of the export:
    * HuBERT pads T to a multiple (required_seq_len_multiple) and masks the padded keys; masked keys change
      nothing, so the export runs without padding (a Python branch on T would be frozen by tracing);
    * phonevec's log-mel computes its STFT as a strided convolution with a DFT basis (ONNX has no complex
      tensors);
    * torch's nn.MultiheadAttention (hubert-soft) runs through `_mha_forward`, its fused fast path is off."""
    model = getattr(encoder, "model", None)
    inner = getattr(model, "encoder", None)
    logmel = getattr(model, "logmel", None)
    old = getattr(inner, "seq_multiple", None)
    if old is not None:
        inner.seq_multiple = 1
    if logmel is not None:
        logmel.export_mode = True
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    attentions = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)] if model is not None else []
    for mha in attentions:
        mha.forward = _mha_forward(mha)
    try:
        yield
    finally:
        for mha in attentions:
            del mha.forward
        torch.backends.mha.set_fastpath_enabled(fastpath)
        if old is not None:
            inner.seq_multiple = old
        if logmel is not None:
            logmel.export_mode = False


def _test_clip(seconds: float, seed: int) -> torch.Tensor:
    """A voiced-like test signal [1, N]: a few harmonics with vibrato plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * ENCODER_SAMPLE_RATE)) / ENCODER_SAMPLE_RATE
    f0 = 180 * 2 ** (0.3 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / ENCODER_SAMPLE_RATE
    wav = sum(np.sin(k * phase) / k for k in range(1, 8)) * 0.2 + rng.normal(0, 0.01, t.size)
    return torch.from_numpy(wav.astype(np.float32))[None]


def feature_error(reference: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """Differences of two feature arrays [1, C, T]: max abs, RMS relative to the reference RMS, and the mean
    cosine similarity of corresponding frames."""
    ref, got = reference[0].T.astype(np.float64), other[0].T.astype(np.float64)  # [T, C]
    cos = np.sum(ref * got, 1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    return {"max_abs": float(np.abs(ref - got).max()),
            "rel_rms": float(np.sqrt(np.mean((ref - got) ** 2)) / (np.sqrt(np.mean(ref ** 2)) + 1e-12)),
            "mean_cosine": float(cos.mean()), "min_cosine": float(cos.min())}


def _check(encoder: ContentEncoder, path: Path) -> dict[str, Any]:
    """Worst feature error of the ONNX file vs the torch encoder over the check clips."""
    from .runtime import make_session

    session, info = make_session(path, device="cpu")
    worst: dict[str, float] = {}
    for i, seconds in enumerate(CHECK_SECONDS):
        wav = _test_clip(seconds, seed=i)
        ref = encoder.encode(wav).numpy()
        got = session.run(["features"], {"wav": wav.numpy()})[0]
        if got.shape != ref.shape:
            raise ModelError(f"The exported {encoder.name} encoder gives {list(got.shape)} for a {seconds} s clip; "
                             f"torch gives {list(ref.shape)}.")
        err = feature_error(ref, got)
        worst = {k: (min if "cosine" in k else max)(worst.get(k, v), v) for k, v in err.items()}
    return {**worst, "clips_seconds": list(CHECK_SECONDS), "provider": info.provider}


def export_encoder(name: str, weights: Optional[str | os.PathLike], out_path: str | os.PathLike,
                   int8: bool = False, opset: int = OPSET) -> dict[str, Any]:
    """Registered encoder `name` with `weights` (None: the usual pretrain lookup) -> ONNX at out_path (+ .json).

    With int8=True a second file `<stem>.int8.onnx` is written too; its manifest carries the feature error.
    Returns the float file's manifest (with "int8": the quantised file's manifest when made).
    """
    import onnx

    from ..encoders import find_weights, get_encoder

    weights = find_weights(name, weights)
    encoder = get_encoder(name, weights)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    graph = EncoderGraph(encoder).eval()
    dummy = _test_clip(TRACE_SECONDS, seed=7)
    with _exportable(encoder), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, (dummy,), os.fspath(out_path), dynamo=False, opset_version=int(opset),
                          input_names=["wav"], output_names=["features"],
                          dynamic_axes={"wav": {1: "N"}, "features": {2: "T"}}, do_constant_folding=True)
    onnx.checker.check_model(os.fspath(out_path))
    manifest = {
        "format": MANIFEST_FORMAT, "kind": "encoder", "file": out_path.name, "encoder": encoder.name,
        "dim": int(encoder.dim), "sample_rate": ENCODER_SAMPLE_RATE, "hop_length": 320,
        "min_samples": int(encoder.min_samples), "int8": False,
        "source_weights": {"file": os.path.basename(weights), "sha256": sha256_file(weights)},
        "inputs": {"wav": {"dtype": "float32", "shape": [1, "N"], "dynamic_axes": [1]}},
        "outputs": {"features": {"dtype": "float32", "shape": [1, int(encoder.dim), "T"], "dynamic_axes": [2]}},
        "opset": int(opset), "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest["parity"] = _check(encoder, out_path)
    if manifest["parity"]["max_abs"] > 1e-3:
        raise ModelError(f"The exported {encoder.name} encoder differs from torch by "
                         f"{manifest['parity']['max_abs']:.2e} (max abs); please report this.")
    _store_manifest(out_path, manifest)
    if int8:
        manifest["int8"] = quantize_encoder(out_path, encoder)
    return manifest


def int8_path(float_path: str | os.PathLike) -> Path:
    """model.onnx -> model.int8.onnx."""
    p = Path(float_path)
    return p.with_name(p.stem + ".int8" + p.suffix)


def quantize_encoder(float_path: Path, encoder: ContentEncoder) -> dict[str, Any]:
    """Dynamic int8 quantisation of an exported encoder; returns (and stores) the int8 file's manifest."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = int8_path(float_path)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a generic "consider pre-processing" warning on root
    try:
        quantize_dynamic(os.fspath(float_path), os.fspath(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=["MatMul", "Gemm"])
    finally:
        root.setLevel(level)
    manifest = dict(read_manifest(float_path))
    manifest.update({"file": target.name, "int8": True, "quantization": "onnxruntime dynamic, QInt8 weights of "
                     "MatMul/Gemm, float activations"})
    manifest["parity"] = _check(encoder, target)
    manifest["feature_error_vs_float"] = manifest.pop("parity")
    manifest["size_bytes"] = {"float": os.path.getsize(float_path), "int8": os.path.getsize(target)}
    _store_manifest(target, manifest)
    return manifest


class OnnxEncoder(ContentEncoder):
    """An exported encoder file on ONNX Runtime: same name, dim and [1, C, T] output as the torch encoder."""

    runs_in_torch = False

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: Optional[int] = None) -> None:
        super().__init__()
        from .runtime import make_session

        manifest = find_manifest(path)
        if manifest is None:  # an upstream-style file (MoeSS's vec-768-layer-12.onnx, ...)
            from .upstream_file import upstream_encoder_manifest

            manifest = upstream_encoder_manifest(path)
        if manifest.get("kind") != "encoder":
            raise ModelError(f"'{os.path.basename(os.fspath(path))}' is an exported {manifest.get('kind')}, not a "
                             "content encoder.")
        self.manifest = manifest
        self._upstream_io = (manifest["input"], manifest["output"]) if "input" in manifest else None
        self.name = str(manifest["encoder"])
        self.dim = int(manifest["dim"])
        self.min_samples = int(manifest.get("min_samples", 400))
        self.session, self.session_info = make_session(path, device, threads)

    def to(self, device: str | torch.device) -> "OnnxEncoder":
        return self  # the session's provider is fixed when it is made

    def _encode(self, wav: torch.Tensor) -> torch.Tensor:
        wav = wav.detach().cpu().numpy().astype(np.float32)
        if self._upstream_io is not None:  # upstream layout: [1, 1, N] -> [1, T, C]
            name_in, name_out = self._upstream_io
            out = self.session.run([name_out], {name_in: wav[None]})[0]
            return torch.from_numpy(np.ascontiguousarray(out.transpose(0, 2, 1)))
        return torch.from_numpy(self.session.run(["features"], {"wav": wav})[0])


__all__ = ["EncoderGraph", "OnnxEncoder", "export_encoder", "feature_error", "int8_path", "quantize_encoder"]
