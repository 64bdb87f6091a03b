"""Export a so-vits-svc G_*.pth + config.json to ONNX with upstream's interface (spec h), plus a manifest.

Graph interface (upstream onnx_export.py / model_onnx_speaker_mix.py):

| name | dtype | shape | dynamic axes |
|---|---|---|---|
| c | float32 | [1, T_units, ssl_dim] | 0, 1 |
| f0 | float32 | [1, T] | 1 |
| mel2ph | int64 | [1, T] | 1 |
| uv | float32 | [1, T] | 1 |
| noise | float32 | [1, inter_channels, T] | 2 |
| sid | int64 [1], or float32 [T, n_spk] (speaker-mix variant) | | - / 0 |
| vol (vol_embedding models only) | float32 | [1, T] | 1 |
| audio (output) | float32 | [1, 1, T * hop] | 2 |

The manifest (JSON, also stored in the ONNX metadata under MANIFEST_KEY and written beside the file as
`<file>.json`) records the source checkpoint's sha256, the config, encoder, sample rate, hop and the interface.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Optional

import torch

from ..checkpoint import load_synthesizer
from ..constants import DEFAULT_SEED
from ..errors import ModelError, OptionError
from ..paths import require_file
from .graph import NOISE_TABLE_LEN, SynthesizerGraph
from .moevs import descriptor_for
from .proto_scan import check_onnx_file

OPSET = 17  # >= upstream's 16; 17 adds nothing we rely on but is ORT's best-covered CPU opset for these ops
MANIFEST_KEY = "svc_studio_manifest"
MANIFEST_FORMAT = "svc-studio-onnx/1"
DUMMY_FRAMES = 64  # trace length; the graph then works for any T >= MIN_FRAMES
MIN_FRAMES = 6  # relative attention (window 4) is traced on its T > window + 1 branch


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def manifest_path(onnx_path: str | os.PathLike) -> Path:
    """The sidecar manifest of an exported file: model.onnx -> model.onnx.json."""
    return Path(os.fspath(onnx_path) + ".json")


def interface(model: torch.nn.Module, speaker_mix: bool) -> dict[str, Any]:
    """Input/output names, dtypes, shapes (symbolic) and dynamic axes of the exported synthesizer."""
    ssl, z, n_spk = int(model.ssl_dim), int(model.inter_channels), int(model.n_speakers)
    inputs = {
        "c": {"dtype": "float32", "shape": [1, "T_units", ssl], "dynamic_axes": [0, 1]},
        "f0": {"dtype": "float32", "shape": [1, "T"], "dynamic_axes": [1]},
        "mel2ph": {"dtype": "int64", "shape": [1, "T"], "dynamic_axes": [1]},
        "uv": {"dtype": "float32", "shape": [1, "T"], "dynamic_axes": [1]},
        "noise": {"dtype": "float32", "shape": [1, z, "T"], "dynamic_axes": [2]},
        "sid": ({"dtype": "float32", "shape": ["T", n_spk], "dynamic_axes": [0]} if speaker_mix
                else {"dtype": "int64", "shape": [1], "dynamic_axes": []}),
    }
    if getattr(model, "emb_vol", None) is not None:
        inputs["vol"] = {"dtype": "float32", "shape": [1, "T"], "dynamic_axes": [1]}
    hop = int(model.dec.upp)
    outputs = {"audio": {"dtype": "float32", "shape": [1, 1, f"T*{hop}"], "dynamic_axes": [2]}}
    return {"inputs": inputs, "outputs": outputs}


def _dynamic_axes(spec: dict[str, Any]) -> dict[str, dict[int, str]]:
    names = {"c": {0: "batch", 1: "units"}, "noise": {2: "frames"}, "sid": {0: "frames"}, "audio": {2: "samples"}}
    out: dict[str, dict[int, str]] = {}
    for name, item in {**spec["inputs"], **spec["outputs"]}.items():
        if item["dynamic_axes"]:
            out[name] = {axis: names.get(name, {}).get(axis, "frames") for axis in item["dynamic_axes"]}
    return out


def dummy_inputs(model: torch.nn.Module, speaker_mix: bool, frames: int = DUMMY_FRAMES,
                 seed: int = 0) -> dict[str, torch.Tensor]:
    """Random inputs in the exported layout (mel2ph = 1..T, i.e. one content row per frame)."""
    gen = torch.Generator().manual_seed(seed)
    n_spk = int(model.n_speakers)
    inputs = {
        "c": torch.randn(1, frames, int(model.ssl_dim), generator=gen),
        "f0": 110.0 + 330.0 * torch.rand(1, frames, generator=gen),
        "mel2ph": torch.arange(1, frames + 1, dtype=torch.int64)[None],
        "uv": torch.ones(1, frames),
        "noise": torch.randn(1, int(model.inter_channels), frames, generator=gen) * 0.4,
        "sid": (torch.full((frames, n_spk), 1.0 / n_spk) if speaker_mix else torch.zeros(1, dtype=torch.int64)),
    }
    if getattr(model, "emb_vol", None) is not None:
        inputs["vol"] = 0.05 + 0.1 * torch.rand(1, frames, generator=gen)
    return inputs


def export_synthesizer(model_path: str | os.PathLike, config_path: str | os.PathLike,
                       out_path: str | os.PathLike, speaker_mix: Optional[bool] = None, opset: int = OPSET,
                       verify: bool = True, split: bool = True) -> dict[str, Any]:
    """G_*.pth + config.json -> ONNX file at out_path (+ out_path.json manifest). Returns the manifest.

    speaker_mix None = upstream's default (the mix variant when the config lists 2 or more speakers).
    verify=True runs the exported graph in ONNX Runtime on random inputs and records the max abs difference
    to the same graph in torch (`manifest["parity"]`); it fails the export above 1e-3.
    split=True also writes the prior / decoder pair for chunked decoding (split_export.py; `manifest["split"]`).
    """
    import onnx

    model = load_synthesizer(model_path, config_path)
    config = model.config
    from ..worldvoice.model import WorldVoice

    if isinstance(model, WorldVoice):  # its renderer is WORLD (C++), not a graph
        raise OptionError(f"{Path(model_path).name} is a WORLD voice (svc_core.worldvoice): only so-vits-svc "
                          "synthesizers export to ONNX. Use the torch backend; WORLD voices run faster than real "
                          "time on it already.")
    if speaker_mix is None:
        speaker_mix = len(config.spk) >= 2
    if speaker_mix and model.n_speakers < 1:
        raise OptionError("The speaker-mix variant needs a model with at least one speaker embedding.")
    graph = SynthesizerGraph(model, speaker_mix=speaker_mix).eval()
    spec = interface(model, speaker_mix)
    inputs = dummy_inputs(model, speaker_mix)
    names = list(spec["inputs"])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the relative-attention branch (see MIN_FRAMES)
        torch.onnx.export(graph, tuple(inputs[n] for n in names), os.fspath(out_path), dynamo=False,
                          opset_version=int(opset), input_names=names, output_names=["audio"],
                          dynamic_axes=_dynamic_axes(spec), do_constant_folding=True)
    manifest = {
        "format": MANIFEST_FORMAT, "kind": "synthesizer", "file": out_path.name,
        "source_checkpoint": {"file": os.path.basename(os.fspath(model_path)), "sha256": sha256_file(model_path)},
        "config_sha256": sha256_file(config_path),
        "config": json.loads(Path(config_path).read_text(encoding="utf-8")),
        "speech_encoder": config.speech_encoder, "sample_rate": int(config.sampling_rate),
        "hop_length": int(config.hop_length), "ssl_dim": int(model.ssl_dim),
        "inter_channels": int(model.inter_channels), "n_speakers": int(model.n_speakers),
        "speakers": dict(config.spk), "speaker_mix": bool(speaker_mix),
        "vol_embedding": getattr(model, "emb_vol", None) is not None, "min_frames": MIN_FRAMES,
        "opset": int(opset), **spec,
        "nsf_source": {"phase": "accumulated at frame rate (upstream ONNX mode)",
                       "initial_phase_seed": DEFAULT_SEED, "noise": f"fixed table {NOISE_TABLE_LEN} x 9, repeated"},
        "prior_noise": "caller passes randn(1, inter_channels, T) * noise_scale (svc_core: seeded like infer)",
        "moevoicestudio": descriptor_for(config, out_path.stem, speaker_mix),
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if verify:
        manifest["parity"] = _verify(graph, out_path, inputs, names)
    if split:
        from .split_export import export_split

        manifest["split"] = export_split(graph, out_path, names, inputs, _dynamic_axes(spec), opset, verify)
    _store_manifest(out_path, manifest)
    return manifest


def _verify(graph: SynthesizerGraph, path: Path, inputs: dict[str, torch.Tensor], names: list[str]) -> dict:
    import numpy as np
    import onnx

    from .runtime import make_session

    onnx.checker.check_model(os.fspath(path))
    frames = DUMMY_FRAMES + 37  # a length other than the traced one: the dynamic axes really are dynamic
    inputs = dummy_inputs(graph.model, graph.speaker_mix, frames=frames, seed=1)
    with torch.no_grad():
        ref = graph(*(inputs[n] for n in names)).numpy()
    session, info = make_session(path, device="cpu")
    got = session.run(["audio"], {n: inputs[n].numpy() for n in names})[0]
    diff = float(np.abs(got - ref).max())
    if got.shape != ref.shape or diff > 1e-3:
        raise ModelError(f"The exported graph does not reproduce the torch model (shape {got.shape} vs "
                         f"{ref.shape}, max abs difference {diff:.2e}); please report this model's config.")
    return {"frames": frames, "max_abs_diff": diff, "provider": info.provider}


def _store_manifest(path: Path, manifest: dict[str, Any]) -> None:
    import onnx

    proto = onnx.load(os.fspath(path))
    entry = next((p for p in proto.metadata_props if p.key == MANIFEST_KEY), None) or proto.metadata_props.add()
    entry.key, entry.value = MANIFEST_KEY, json.dumps(manifest)
    onnx.save(proto, os.fspath(path))
    manifest_path(path).write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def load_proto(onnx_path: str | os.PathLike):
    """The ModelProto of an ONNX file without its external weights; ModelError for a missing or empty file, or one
    that is not ONNX."""
    import onnx

    require_file(onnx_path, "ONNX file", ModelError)
    check_onnx_file(onnx_path)  # limits (file_limits.py) before onnx builds every message in memory
    try:
        return onnx.load(os.fspath(onnx_path), load_external_data=False)
    except Exception as err:  # protobuf raises DecodeError and friends for files that are not ONNX
        raise ModelError(f"'{os.path.basename(os.fspath(onnx_path))}' is not a readable ONNX file "
                         f"({type(err).__name__}: {err}).") from err


def find_manifest(onnx_path: str | os.PathLike) -> Optional[dict[str, Any]]:
    """The manifest of an exported file: the sidecar JSON if present, else the ONNX metadata entry, else None."""
    side = manifest_path(onnx_path)
    if side.is_file():
        return json.loads(side.read_text(encoding="utf-8"))
    proto = load_proto(onnx_path)
    for prop in proto.metadata_props:
        if prop.key == MANIFEST_KEY:
            return json.loads(prop.value)
    return None


def read_manifest(onnx_path: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an exported file; ModelError when it has none."""
    manifest = find_manifest(onnx_path)
    if manifest is not None:
        return manifest
    side = manifest_path(onnx_path)
    raise ModelError(f"'{os.path.basename(os.fspath(onnx_path))}' has no svc-studio manifest (neither "
                     f"{side.name} nor ONNX metadata '{MANIFEST_KEY}'); export it with `python -m svc_core "
                     "export-onnx`.")
