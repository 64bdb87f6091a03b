"""RVC's ONNX file layout: reading a file's interface, replacing its random nodes by inputs, probing what it is.

RVC's exporter (infer/modules/onnx/export.py, commit d60cd3d009b7) writes, at opset 18 then onnxsim:

| input | dtype | shape | dynamic axes |
|---|---|---|---|
| phone | float32 | [1, T, 768 (v2) or 256 (v1)] | 1 |
| phone_lengths | int64 | [1] | - |
| pitch | int64 | [1, T] (coarse pitch 1..255) | 1 |
| pitchf | float32 | [1, T] (Hz, 0 = unvoiced) | 1 |
| ds | int64 | [1] (speaker id) | - |
| rnd | float32 | [1, 192, T] (prior noise) | 2 |
| audio (output) | float32 | [1, 1, T * hop] | (inferred) |

Inside the graph the NSF source draws its own random numbers: a RandomUniform [1, 1, 1] (initial phase, zeroed
since harmonic_num is 0) and a RandomNormalLike [1, T * hop, 1] (additive noise). `with_noise_inputs` replaces
those nodes by graph inputs "phase_rand" and "nsf_noise", so a run is reproducible and takes its draws from a
NoiseSource like the torch voice. No-pitch models (RVC's *_nono classes; RVC's exporter itself always builds the
f0 class) have no pitch/pitchf and no random node.

What a file without our manifest cannot tell: the 18 constructor arguments beyond the widths read here (hidden
and filter channels, layer counts, kernel sizes are taken from RVC's preset for the probed version and rate, and
only describe, never change, the run), the speakers' names, and the sample rate when the hop is not RVC's.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Optional

from ..errors import ModelError
from .export import load_proto

ONNX_FLOAT, ONNX_INT64 = 1, 7  # onnx.TensorProto element types
REQUIRED = {"phone": ONNX_FLOAT, "phone_lengths": ONNX_INT64, "ds": ONNX_INT64, "rnd": ONNX_FLOAT}
PITCH = {"pitch": ONNX_INT64, "pitchf": ONNX_FLOAT}
NOISE_INPUT = "nsf_noise"  # the RandomNormalLike node, as an input: float32 [1, T * hop, 1]
PHASE_INPUT = "phase_rand"  # the RandomUniform node, as an input: float32 [1, 1, 1]
RANDOM_OPS = {"RandomNormalLike": NOISE_INPUT, "RandomNormal": NOISE_INPUT,
              "RandomUniformLike": PHASE_INPUT, "RandomUniform": PHASE_INPUT}
RATE_OF_HOP = {320: 32000, 400: 40000, 480: 48000}  # RVC's configs: 32k, 40k, 48k (v1 and v2)
RATE_NAMES = {32000: "32k", 40000: "40k", 48000: "48k"}
CONTENT_VERSIONS = {768: "v2", 256: "v1"}
SOVITS_INPUTS = ("c", "f0", "mel2ph", "uv", "noise", "sid")

Signature = dict[str, tuple[int, list]]  # name -> (element type, dims; None for a symbolic axis)


def _signature(values) -> Signature:
    return {v.name: (v.type.tensor_type.elem_type, [d.dim_value if d.HasField("dim_value") else None
                                                    for d in v.type.tensor_type.shape.dim]) for v in values}


@dataclasses.dataclass(frozen=True)
class RvcLayout:
    """What an ONNX file in RVC's layout declares: its inputs/outputs, the pitch flag, widths readable from the
    graph (None when not), its random nodes (op types, in graph order)."""

    inputs: Signature
    output: str
    has_f0: bool
    content_dim: int
    inter_channels: Optional[int]
    n_speakers: Optional[int]
    gin_channels: Optional[int]
    random_ops: tuple[str, ...]

    @property
    def version(self) -> str:
        return CONTENT_VERSIONS[self.content_dim]


def read_layout(onnx_path: str | os.PathLike, proto: Any = None) -> RvcLayout:
    """The RVC interface of an ONNX file; ModelError (naming what it has) when it is not one."""
    path = Path(onnx_path)
    proto = proto if proto is not None else load_proto(path)
    graph = proto.graph
    inits = {t.name for t in graph.initializer}
    inputs = {k: v for k, v in _signature(graph.input).items() if k not in inits}
    outputs = _signature(graph.output)
    names = ", ".join(inputs) or "none"
    if all(n in inputs for n in SOVITS_INPUTS):
        raise ModelError(f"'{path.name}' is a so-vits-svc synthesizer export (inputs {names}), not an RVC one: "
                         "open it with svc_core.onnx.OnnxSvc.")
    missing = [n for n in REQUIRED if n not in inputs]
    pitch = [n for n in PITCH if n in inputs]
    if missing or len(pitch) == 1 or len(outputs) != 1:
        raise ModelError(f"'{path.name}' does not have RVC's ONNX interface: it has inputs {names} and outputs "
                         f"{', '.join(outputs) or 'none'}; RVC's exporter writes inputs phone, phone_lengths, pitch, "
                         "pitchf, ds, rnd (no-pitch models: without pitch and pitchf) and one output, audio.")
    expected = {**REQUIRED, **(PITCH if pitch else {})}
    for name, kind in expected.items():
        if inputs[name][0] != kind:
            raise ModelError(f"'{path.name}': input '{name}' is of ONNX type {inputs[name][0]}, but RVC's interface "
                             f"has it {'float32' if kind == ONNX_FLOAT else 'int64'} (a float16 export is not "
                             "supported: export in float32).")
    extra = sorted(set(inputs) - set(expected))
    if extra:
        raise ModelError(f"'{path.name}' has inputs RVC's interface does not know ({', '.join(extra)}).")
    phone = inputs["phone"][1]
    if len(phone) != 3 or phone[2] not in CONTENT_VERSIONS:
        raise ModelError(f"'{path.name}': input 'phone' has shape {phone}; RVC's is [1, T, 768] (v2) or "
                         "[1, T, 256] (v1).")
    rnd = inputs["rnd"][1]
    inter = rnd[1] if len(rnd) == 3 and rnd[1] else _rows(graph, "enc_p.proj.bias", 2)
    n_spk, gin = _speaker_table(graph)
    random_ops = tuple(n.op_type for n in graph.node if n.op_type in RANDOM_OPS)
    normal = sum(1 for op in random_ops if RANDOM_OPS[op] == NOISE_INPUT)
    uniform = len(random_ops) - normal
    if normal > 1 or uniform > 1 or (normal and not pitch):
        raise ModelError(f"'{path.name}' draws random numbers in {len(random_ops)} places ({', '.join(random_ops)});"
                         " RVC's graph draws at most the NSF source's phase and noise, so this file cannot be run "
                         "reproducibly.")
    return RvcLayout(inputs=inputs, output=next(iter(outputs)), has_f0=bool(pitch), content_dim=int(phone[2]),
                     inter_channels=inter, n_speakers=n_spk, gin_channels=gin, random_ops=random_ops)


def _rows(graph, name: str, divide: int = 1) -> Optional[int]:
    for tensor in graph.initializer:
        if tensor.name == name and tensor.dims:
            return int(tensor.dims[0]) // divide
    return None


def _speaker_table(graph) -> tuple[Optional[int], Optional[int]]:
    """(speakers, gin) from the speaker embedding table: the initializer 'emb_g.weight', else the table a Gather
    reads with indices computed from 'ds' (within a few nodes)."""
    tables = {t.name: list(t.dims) for t in graph.initializer if len(t.dims) == 2}
    if "emb_g.weight" in tables:
        return tables["emb_g.weight"][0], tables["emb_g.weight"][1]
    reached = {"ds"}
    for node in graph.node:  # nodes are stored in topological order
        if not reached.intersection(node.input):
            continue
        if node.op_type == "Gather" and len(node.input) == 2 and node.input[0] in tables \
                and node.input[1] in reached:
            return tables[node.input[0]][0], tables[node.input[0]][1]
        reached.update(node.output)
        if len(reached) > 8:
            break
    return None, None


def with_noise_inputs(proto: Any) -> tuple[bytes, list[str]]:
    """The model with each random node replaced by a graph input (NOISE_INPUT / PHASE_INPUT) -> (serialized
    model, names of the added inputs). The file itself is not changed."""
    import onnx
    from onnx import helper

    model = onnx.ModelProto()
    model.CopyFrom(proto)
    graph = model.graph
    added: list[str] = []
    nodes = []
    for node in graph.node:
        name = RANDOM_OPS.get(node.op_type)
        if name is None:
            nodes.append(node)
            continue
        shape = next((list(a.ints) for a in node.attribute if a.name == "shape"), None)
        dims = shape if shape else (["batch", "samples", 1] if name == NOISE_INPUT else [1, 1, 1])
        graph.input.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, dims))
        nodes.append(helper.make_node("Identity", [name], list(node.output), name=f"{name}_input"))
        added.append(name)
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), added


def rate_of_hop(hop: int, path: str | os.PathLike) -> int:
    """RVC's sample rate for a hop; ModelError for a hop none of RVC's configs has."""
    if hop not in RATE_OF_HOP:
        raise ModelError(f"'{Path(path).name}' makes {hop} samples per frame, which is none of RVC's rates (hop "
                         f"320 = 32 kHz, 400 = 40 kHz, 480 = 48 kHz): give the rate with sample_rate=...")
    return RATE_OF_HOP[hop]


__all__ = ["NOISE_INPUT", "PHASE_INPUT", "RATE_OF_HOP", "RvcLayout", "rate_of_hop", "read_layout",
           "with_noise_inputs"]
