"""ONNX files made outside svc-studio, which carry no manifest of ours:

* synthesizers exported by upstream so-vits-svc 4.x (`onnx_export.py` -> `checkpoints/{name}/{name}_SoVits.onnx`), or
  by any tool with its interface: `OnnxSvc` derives a manifest from the graph's inputs and the model's config.json;
* the content encoders upstream's `*-onnx` speech encoders load (MoeSS's `vec-768-layer-12.onnx`,
  `vec-256-layer-9.onnx`, `hubert-soft.onnx`, ...: wav [1, 1, N] at 16 kHz -> features [1, T, C]): `OnnxEncoder`
  takes the encoder from the file name and the width from the graph.

    svc = OnnxSvc("checkpoints/nyaru/nyaru_SoVits.onnx", "checkpoints/nyaru/config.json",
                  encoder_path="pretrain/checkpoint_best_legacy_500.pt")

Without -c, a config.json beside the file is used, else its MoeVoiceStudio descriptor (moevs.py). Such a file
runs in one call per slice (no split pair, so no chunked vocoder and no int8 vocoder): re-export the G_*.pth with
`export-onnx` for those.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelError
from .export import load_proto
from .moevs import descriptor_candidates, find_descriptor, load_voice_config

UPSTREAM_INPUTS = ("c", "f0", "mel2ph", "uv", "noise", "sid")  # spec h; "vol" only for vol_embedding models
UPSTREAM_OUTPUT = "audio"
UPSTREAM_FORMAT = "upstream-onnx"  # the derived manifest's "format"
_ONNX_FLOAT, _ONNX_INT64 = 1, 7  # onnx.TensorProto element types


Signature = dict[str, tuple[int, list]]  # tensor name -> (onnx element type, dims with None for dynamic axes)


def _io(onnx_path: Path) -> tuple[Signature, Signature]:
    """(inputs, outputs) of an ONNX file's graph."""
    graph = load_proto(onnx_path).graph

    def signature(values) -> Signature:
        return {v.name: (v.type.tensor_type.elem_type, [d.dim_value if d.HasField("dim_value") else None
                                                        for d in v.type.tensor_type.shape.dim]) for v in values}

    return signature(graph.input), signature(graph.output)


def find_config(onnx_path: Path, config_path: Optional[str | os.PathLike]) -> Path:
    """The config to use with an upstream file: the one given, else config.json beside it, else its
    MoeVoiceStudio descriptor (moevs.py)."""
    if config_path:
        return Path(config_path)
    beside = onnx_path.with_name("config.json")
    if beside.is_file():
        return beside
    descriptor = find_descriptor(onnx_path)
    if descriptor is not None:
        return descriptor
    raise ModelError(f"'{onnx_path.name}' has no svc-studio manifest, so it needs the config.json of the model it "
                     f"was exported from (upstream keeps it beside the export: checkpoints/<name>/config.json) or "
                     f"its MoeVoiceStudio descriptor ({' or '.join(p.name for p in descriptor_candidates(onnx_path))}"
                     "). Give it with -c / config_path, or re-export the G_*.pth with `python -m svc_core "
                     "export-onnx`.")


def upstream_manifest(onnx_path: str | os.PathLike, config_path: Optional[str | os.PathLike]) -> dict[str, Any]:
    """A manifest for an upstream-exported synthesizer, from its graph inputs and config.json; ModelError when the
    file does not have upstream's interface or does not match the config."""
    path = Path(onnx_path)
    inputs, outputs = _io(path)
    missing = [n for n in UPSTREAM_INPUTS if n not in inputs]
    if missing or UPSTREAM_OUTPUT not in outputs:
        raise ModelError(f"'{path.name}' is not a so-vits-svc synthesizer export: it has inputs "
                         f"{', '.join(inputs) or 'none'} and outputs {', '.join(outputs) or 'none'}, but upstream's "
                         f"interface is inputs {', '.join(UPSTREAM_INPUTS)} (+ vol) and output '{UPSTREAM_OUTPUT}'.")
    config_file = find_config(path, config_path)
    config, config_doc = load_voice_config(config_file)
    ssl_dim = inputs["c"][1][-1] if len(inputs["c"][1]) == 3 else None
    if ssl_dim and ssl_dim != config.model.ssl_dim:
        raise ModelError(f"'{path.name}' takes {ssl_dim}-dim content units but {config_file.name} says ssl_dim "
                         f"{config.model.ssl_dim} ({config.speech_encoder}): use the config.json of the model this "
                         "file was exported from.")
    sid_type, sid_dims = inputs["sid"]
    speaker_mix = sid_type == _ONNX_FLOAT
    if not speaker_mix and sid_type != _ONNX_INT64:
        raise ModelError(f"'{path.name}': input 'sid' is neither int64 (a speaker id) nor float32 (speaker-mix "
                         "weights), as upstream's exports have it.")
    n_speakers = (sid_dims[-1] if speaker_mix and len(sid_dims) == 2 and sid_dims[-1] else config.model.n_speakers)
    if speaker_mix and n_speakers != config.model.n_speakers:
        raise ModelError(f"'{path.name}' mixes {n_speakers} speakers but {config_file.name} has "
                         f"{config.model.n_speakers}: use the config.json this file was exported from.")
    noise_dims = inputs["noise"][1]
    inter = noise_dims[1] if len(noise_dims) == 3 and noise_dims[1] else config.model.inter_channels
    return {
        "format": UPSTREAM_FORMAT, "kind": "synthesizer", "file": path.name,
        "config": config_doc, "config_file": str(config_file),
        "speech_encoder": config.speech_encoder, "sample_rate": int(config.sampling_rate),
        "hop_length": int(config.hop_length), "ssl_dim": int(config.model.ssl_dim), "inter_channels": int(inter),
        "n_speakers": int(n_speakers), "speakers": dict(config.spk), "speaker_mix": speaker_mix,
        "vol_embedding": "vol" in inputs, "split": None,
    }


STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})  # operator sets ORT ships


def check_self_contained(onnx_path: str | os.PathLike) -> None:
    """ModelError unless the file keeps every weight inside itself (external-data tensors name other files on disk
    by path) and uses only operator sets ONNX Runtime ships (no custom-op libraries). For files from strangers,
    such as web uploads."""
    path = Path(onnx_path)
    proto = load_proto(path)
    external, domains = [], {op.domain for op in proto.opset_import}

    def walk(graph) -> None:
        tensors = list(graph.initializer) + [s.values for s in graph.sparse_initializer]
        for node in graph.node:
            domains.add(node.domain)
            for attr in node.attribute:
                tensors += ([attr.t] if attr.HasField("t") else []) + list(attr.tensors)
                tensors += ([attr.sparse_tensor.values] if attr.HasField("sparse_tensor") else []) + [
                    sparse.values for sparse in attr.sparse_tensors]
                for sub in ([attr.g] if attr.HasField("g") else []) + list(attr.graphs):
                    walk(sub)
        external.extend(t.name or "(unnamed)" for t in tensors if t.data_location == 1)  # TensorProto.EXTERNAL

    walk(proto.graph)
    for function in proto.functions:
        domains.update(node.domain for node in function.node)
    if external:
        raise ModelError(f"'{path.name}' keeps weights in other files (external data: {', '.join(external[:3])}"
                         f"{', ...' if len(external) > 3 else ''}); only self-contained ONNX files are accepted here.")
    foreign = sorted(domains - STANDARD_DOMAINS - {f.domain for f in proto.functions})
    if foreign:
        raise ModelError(f"'{path.name}' uses operators outside ONNX Runtime's own sets ({', '.join(foreign)}); such "
                         "files need custom-op libraries and are not accepted here.")


ENCODER_NAMES = ((re.compile(r"vec-?(256|768)-?layer-?(9|12)", re.IGNORECASE), "vec{0}l{1}"),
                 (re.compile(r"hubert-?_?soft", re.IGNORECASE), "hubertsoft"))  # file name -> our encoder name


def encoder_name_of(path: str | os.PathLike) -> Optional[str]:
    """'vec-768-layer-12.onnx' -> 'vec768l12', 'hubert-soft.onnx' -> 'hubertsoft'; None for other names."""
    stem = Path(path).stem
    return next((template.format(*match.groups()) for pattern, template in ENCODER_NAMES
                 for match in [pattern.search(stem)] if match), None)


def upstream_encoder_manifest(onnx_path: str | os.PathLike) -> dict[str, Any]:
    """A manifest for an upstream-style ONNX content encoder (one input [1, 1, N], one output [1, T, C]); ModelError
    when the graph or the file name does not say which encoder it is."""
    from ..encoders import encoder_info

    path = Path(onnx_path)
    inputs, outputs = _io(path)
    dims = next(iter(outputs.values()))[1] if len(outputs) == 1 else []
    if len(inputs) != 1 or len(next(iter(inputs.values()))[1]) != 3 or len(dims) != 3:
        raise ModelError(f"'{path.name}' has no svc-studio manifest and is not an upstream-style content encoder "
                         f"(one input [1, 1, N] -> one output [1, T, C]): it has inputs {', '.join(inputs) or 'none'}"
                         f" and outputs {', '.join(outputs) or 'none'}. Export encoders with `python -m svc_core "
                         "export-onnx --encoder NAME`.")
    name = encoder_name_of(path)
    if name is None:
        raise ModelError(f"Which encoder is '{path.name}'? Upstream's ONNX encoders are named by what they give "
                         "(vec-768-layer-12.onnx, vec-256-layer-9.onnx, vec-768-layer-9.onnx, vec-256-layer-12.onnx, "
                         "hubert-soft.onnx): rename the file accordingly.")
    dim = encoder_info(name).dim
    if dims[2] and dims[2] != dim:
        raise ModelError(f"'{path.name}' gives {dims[2]}-dim features, but its name says {name} ({dim}).")
    return {"format": UPSTREAM_FORMAT, "kind": "encoder", "file": path.name, "encoder": name, "dim": dim,
            "layout": "upstream: wav [1, 1, N] -> features [1, T, C]",
            "input": next(iter(inputs)), "output": next(iter(outputs))}


__all__ = ["UPSTREAM_FORMAT", "UPSTREAM_INPUTS", "check_self_contained", "encoder_name_of", "find_config",
           "upstream_encoder_manifest", "upstream_manifest"]
