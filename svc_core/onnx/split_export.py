"""The split export for chunked decoding: `<name>.prior.onnx` (everything before the vocoder) and
`<name>.dec.onnx` (the NSF-HiFiGAN vocoder for one chunk), written beside the upstream-interface `<name>.onnx`.

The upstream file runs the vocoder over a whole slice at once, so ONNX Runtime's working memory grows with the
slice (and its arena keeps the largest size). With the split pair, `OnnxSvc` decodes `decoder_chunk_frames`
frames at a time plus the vocoder's receptive field on each side, as the torch backend does; the samples equal
the one-shot graph's up to float rounding (checked at export, 1e-3).

| file | inputs | outputs |
|---|---|---|
| prior | the upstream inputs (c, f0, mel2ph, uv, noise, sid[, vol]) | z float32 [1, Z, T], g float32 [1, G, 1 or T] |
| dec | z [1, Z, T_chunk], f0 [1, T_chunk], g [1, G, 1 or T_chunk], phase0 float32 [1], offset int64 [1] | audio [1, 1, T_chunk * hop] |

`phase0` is the NSF source's accumulated phase at the chunk's first frame (`graph.phase_at`), `offset` that
frame's first sample index (it selects the fixed source-noise rows), so every chunk continues the same source.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import cancel
from ..errors import ModelError
from ..models.nsf_hifigan import chunk_spans
from .graph import DecoderGraph, PriorGraph, SynthesizerGraph, phase_at

PRIOR_SUFFIX = ".prior.onnx"
DECODER_SUFFIX = ".dec.onnx"
INT8_DECODER_SUFFIX = ".dec.int8.onnx"  # the opt-in int8 vocoder (vocoder_int8.py)
VERIFY_FRAMES = 301  # frames of the export check (not a multiple of the chunk, several chunks)
VERIFY_CHUNK = 64  # frames per chunk in the export check

DECODER_INPUTS = ("z", "f0", "g", "phase0", "offset")  # .dec.onnx's inputs, in DecodeFn's argument order
DecodeFn = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def split_paths(onnx_path: str | os.PathLike) -> dict[str, Path]:
    """model.onnx -> {"prior": model.prior.onnx, "decoder": model.dec.onnx}."""
    path = Path(onnx_path)
    stem = path.name[:-5] if path.name.endswith(".onnx") else path.name
    return {"prior": path.with_name(stem + PRIOR_SUFFIX), "decoder": path.with_name(stem + DECODER_SUFFIX)}


def int8_decoder_path(onnx_path: str | os.PathLike) -> Path:
    """model.onnx -> model.dec.int8.onnx (the int8 vocoder beside the float pair)."""
    decoder = split_paths(onnx_path)["decoder"]
    return decoder.with_name(decoder.name[: -len(DECODER_SUFFIX)] + INT8_DECODER_SUFFIX)


def decode_in_chunks(decode: DecodeFn, z: np.ndarray, f0: np.ndarray, g: np.ndarray, hop: int,
                     sampling_rate: float, context: int, chunk_frames: int,
                     span: tuple[int, int] | None = None) -> np.ndarray:
    """z [1, Z, T], f0 [1, T], g [1, G, 1|T] -> audio [1, 1, T * hop] (or [1, 1, (stop - start) * hop] for the
    frames span = (start, stop) only), decoding chunk by chunk with `decode(z, f0, g, phase0 [1], offset [1] int64)`
    (an ONNX session or the torch DecoderGraph)."""
    frames = z.shape[-1]
    start, stop = span if span is not None else (0, frames)
    spans = chunk_spans(frames, chunk_frames, context, start, stop)
    phases = phase_at(f0[0], [lo for _, _, lo, _ in spans], hop, sampling_rate)
    out = np.empty((1, 1, (stop - start) * hop), dtype=np.float32)
    for k, ((first, last, lo, hi), phase) in enumerate(zip(spans, phases)):
        cancel.checkpoint("vocoder", k / len(spans))  # a conversion can stop here (svc_core.cancel)
        g_part = g if g.shape[-1] == 1 else g[..., lo:hi]
        audio = decode(np.ascontiguousarray(z[..., lo:hi]), np.ascontiguousarray(f0[:, lo:hi]),
                       np.ascontiguousarray(g_part), np.array([phase], dtype=np.float32),
                       np.array([lo * hop], dtype=np.int64))
        out[..., (first - start) * hop:(last - start) * hop] = audio[..., (first - lo) * hop:(last - lo) * hop]
    return out


def torch_decoder(graph: SynthesizerGraph) -> DecodeFn:
    """The chunk decoder in torch eager (the reference of the ONNX `.dec.onnx`)."""
    def decode(z, f0, g, phase0, offset):
        with torch.inference_mode():
            return graph.decode(*(torch.from_numpy(a) for a in (z, f0, g, phase0, offset))).numpy()
    return decode


def session_decoder(session) -> DecodeFn:
    """The chunk decoder on an ONNX Runtime session of `.dec.onnx`."""
    def decode(z, f0, g, phase0, offset):
        return session.run(["audio"], dict(zip(DECODER_INPUTS, (z, f0, g, phase0, offset))))[0]
    return decode


def export_split(graph: SynthesizerGraph, out_path: str | os.PathLike, names: list[str],
                 inputs: dict[str, torch.Tensor], dynamic_axes: dict[str, dict[int, str]], opset: int,
                 verify: bool = True) -> dict[str, Any]:
    """Write the prior and decoder files for `graph` beside out_path; returns the manifest's "split" entry.

    names / inputs / dynamic_axes: the upstream interface's input names, trace inputs and dynamic axes."""
    paths = split_paths(out_path)
    int8_decoder_path(out_path).unlink(missing_ok=True)  # calibrated for the previous export at this path
    with torch.no_grad():
        z, g = graph.prior(*(inputs[n] for n in names))
    prior_axes = {k: v for k, v in dynamic_axes.items() if k in names}
    prior_axes.update({"z": {2: "frames"}, "g": {2: "g_frames"}})
    dec_inputs = (z, inputs["f0"], g, torch.zeros(1), torch.zeros(1, dtype=torch.int64))
    dec_names = list(DECODER_INPUTS)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(PriorGraph(graph).eval(), tuple(inputs[n] for n in names), os.fspath(paths["prior"]),
                          dynamo=False, opset_version=int(opset), input_names=names, output_names=["z", "g"],
                          dynamic_axes=prior_axes, do_constant_folding=True)
        torch.onnx.export(DecoderGraph(graph).eval(), dec_inputs, os.fspath(paths["decoder"]), dynamo=False,
                          opset_version=int(opset), input_names=dec_names, output_names=["audio"],
                          dynamic_axes={"z": {2: "frames"}, "f0": {1: "frames"}, "g": {2: "g_frames"},
                                        "audio": {2: "samples"}}, do_constant_folding=True)
    entry: dict[str, Any] = {"prior": paths["prior"].name, "decoder": paths["decoder"].name,
                             "context_frames": int(graph.model.dec.context_frames()),
                             "prior_outputs": {"z": "float32 [1, inter_channels, T]",
                                               "g": "float32 [1, gin_channels, 1 or T]"},
                             "decoder_inputs": {"z": "float32 [1, inter_channels, T]", "f0": "float32 [1, T]",
                                                "g": "float32 [1, gin_channels, 1 or T]", "phase0": "float32 [1]",
                                                "offset": "int64 [1]"}}
    if verify:
        entry["parity"] = _verify_split(graph, paths, names, entry["context_frames"])
    return entry


def _verify_split(graph: SynthesizerGraph, paths: dict[str, Path], names: list[str], context: int) -> dict:
    """Chunked decoding through both ONNX files vs the one-shot torch graph, at an untraced length."""
    from .export import dummy_inputs
    from .runtime import make_session

    inputs = dummy_inputs(graph.model, graph.speaker_mix, frames=VERIFY_FRAMES, seed=2)
    with torch.no_grad():
        ref = graph(*(inputs[n] for n in names)).numpy()
    prior, info = make_session(paths["prior"], device="cpu")
    dec, _ = make_session(paths["decoder"], device="cpu")
    z, g = prior.run(["z", "g"], {n: inputs[n].numpy() for n in names})
    got = decode_in_chunks(session_decoder(dec), z, inputs["f0"].numpy(), g, graph.hop,
                           graph.source.sampling_rate, context, VERIFY_CHUNK)
    diff = float(np.abs(got - ref).max())
    if got.shape != ref.shape or diff > 1e-3:
        raise ModelError(f"The split export (chunked decoding) does not reproduce the one-shot graph (max abs "
                         f"difference {diff:.2e}); export without --split and please report this model's config.")
    return {"frames": VERIFY_FRAMES, "chunk_frames": VERIFY_CHUNK, "max_abs_diff": diff, "provider": info.provider}
