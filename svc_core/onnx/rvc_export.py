"""Export an RVC voice (RVC WebUI / Applio small model .pth, or a training G_*.pth) to ONNX in RVC's own
interface, plus the split pair for chunked decoding and a manifest.

    manifest = export_rvc("voice.pth", "voice.onnx")     # voice.onnx + voice.prior.onnx + voice.dec.onnx + .json
    voice = RvcOnnxVoice("voice.onnx")                   # svc_core.onnx.rvc_runtime

Files written (rvc_graph.py has the graphs, rvc_layout.py RVC's table of inputs):

* `voice.onnx`: RVC's exporter interface (phone, phone_lengths, pitch, pitchf, ds, rnd -> audio; no-pitch
  models without pitch/pitchf), the NSF noise drawn inside the graph as in RVC's: RVC's OnnxRVC runs it, and
  RvcOnnxVoice runs it (and RVC's own exports) with that draw made an input.
* `voice.prior.onnx` + `voice.dec.onnx`: what RvcOnnxVoice uses when present. prior: phone, phone_lengths[, pitch],
  speaker float32 [1, n_spk], rnd -> z [1, inter, T], g [1, gin, 1]; dec: z, g[, f0, phase0, noise] -> audio
  for one chunk of frames (memory bounded by the chunk, speaker mixes possible).
* the manifest (`voice.onnx.json` and ONNX metadata `svc_studio_manifest`): hparams (RVC's 18-item config list,
  version, f0), speakers, sample rate, hop, interface, source sha256, parity measured at export.
"""
from __future__ import annotations

import datetime
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelError
from ..models.nsf_hifigan import chunk_spans
from .export import MANIFEST_FORMAT, _store_manifest, sha256_file
from .rvc_graph import RvcDecoderGraph, RvcGraph, RvcPriorGraph, graph_input_names
from .split_export import split_paths

OPSET = 17  # RVC's exporter uses 18; the interface is the same and ORT runs both
KIND = "rvc-synthesizer"  # the manifest's "kind"
PRIOR_NOISE_SCALE = 0.66666  # RVC's torch infer: z_p = m_p + exp(logs_p) * randn * 0.66666 (spec k)
DUMMY_FRAMES = 64  # trace length
MIN_FRAMES = 1  # the traced relative attention (window 10) also holds below T = window + 2: tests check 3 frames
VERIFY_FRAMES = 203  # export check: an untraced length, several chunks
VERIFY_CHUNK = 48
PARITY_LIMIT = 1e-3  # max abs difference (audio in [-1, 1]) above which an export is refused


def is_rvc_checkpoint(path: str | os.PathLike) -> bool:
    """Whether a .pth is an RVC voice (svc_core.rvc.checkpoint.rvc_kind: small model, Applio, training G_*.pth).
    Loaded with safe_load.load_torch; its errors (unsafe, damaged, missing file) and rvc_kind's refusals (e.g. an
    Applio vocoder we do not run) propagate."""
    from ..rvc.checkpoint import rvc_kind
    from ..safe_load import load_torch

    return rvc_kind(load_torch(path, "checkpoint")) is not None


def interface(hp: Any, n_speakers: int) -> dict[str, Any]:
    """Inputs/outputs of the RVC-layout file (rvc_layout.py's table), for the manifest."""
    T = "T"
    inputs: dict[str, Any] = {"phone": {"dtype": "float32", "shape": [1, T, hp.content_dim], "dynamic_axes": [1]},
                              "phone_lengths": {"dtype": "int64", "shape": [1], "dynamic_axes": []}}
    if hp.f0:
        inputs["pitch"] = {"dtype": "int64", "shape": [1, T], "dynamic_axes": [1]}
        inputs["pitchf"] = {"dtype": "float32", "shape": [1, T], "dynamic_axes": [1]}
    inputs["ds"] = {"dtype": "int64", "shape": [1], "dynamic_axes": [], "speakers": n_speakers}
    inputs["rnd"] = {"dtype": "float32", "shape": [1, hp.inter_channels, T], "dynamic_axes": [2]}
    return {"inputs": inputs, "outputs": {"audio": {"dtype": "float32", "shape": [1, 1, f"T*{hp.hop_length}"],
                                                    "dynamic_axes": [2]}}}


def dummy_inputs(hp: Any, n_speakers: int, frames: int = DUMMY_FRAMES, seed: int = 0) -> dict[str, torch.Tensor]:
    """Inputs of every graph (full, prior, decoder source) for `frames` frames: pitch 1..255, f0 110-440 Hz
    with an unvoiced stretch, rnd N(0, 0.66666^2), the source noise N(0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    f0 = 110.0 + 330.0 * torch.rand(1, frames, generator=gen)
    f0[:, frames // 3: frames // 3 + 5] = 0.0
    inputs = {"phone": torch.randn(1, frames, hp.content_dim, generator=gen),
              "phone_lengths": torch.tensor([frames], dtype=torch.int64),
              "pitch": torch.randint(1, 256, (1, frames), generator=gen),
              "pitchf": f0, "ds": torch.tensor([n_speakers - 1], dtype=torch.int64),
              "rnd": torch.randn(1, hp.inter_channels, frames, generator=gen) * PRIOR_NOISE_SCALE,
              "noise": torch.randn(1, frames * hp.hop_length, 1, generator=gen)}
    inputs["speaker"] = torch.nn.functional.one_hot(inputs["ds"], n_speakers).float()
    return inputs


def _export(module: torch.nn.Module, args: tuple, path: Path, names: list[str], outputs: list[str],
            axes: dict[str, dict[int, str]], opset: int) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about the relative-attention branch (see MIN_FRAMES)
        torch.onnx.export(module.eval(), args, os.fspath(path), dynamo=False, opset_version=int(opset),
                          input_names=names, output_names=outputs, dynamic_axes=axes, do_constant_folding=True)


def export_rvc(model_path: str | os.PathLike, out_path: str | os.PathLike, opset: int = OPSET,
               verify: bool = True, split: bool = True, config_path: str | os.PathLike | None = None
               ) -> dict[str, Any]:
    """An RVC .pth -> out_path (RVC's interface) [+ split pair] + manifest; returns the manifest.

    verify: onnx.checker, then ONNX Runtime vs the same graph in torch with the same draws (the in-graph noise
    made an input), at an untraced length; and the split pair decoding in chunks vs one shot. ModelError above
    PARITY_LIMIT."""
    import onnx

    from ..rvc.voice import load_rvc_voice

    voice = load_rvc_voice(model_path, device="cpu", config_path=config_path)
    hp, net = voice.hparams, voice.net
    n_spk = int(net.emb_g.weight.shape[0])
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    full = RvcGraph(net)
    inputs = dummy_inputs(hp, n_spk)
    names = graph_input_names(hp.f0)
    _export(full, tuple(inputs[n] for n in names), out_path, names, ["audio"],
            {"phone": {1: "frames"}, "pitch": {1: "frames"}, "pitchf": {1: "frames"}, "rnd": {2: "frames"},
             "audio": {2: "samples"}}, opset)
    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT, "kind": KIND, "family": "rvc", "file": out_path.name,
        "source_checkpoint": {"file": os.path.basename(os.fspath(model_path)), "sha256": sha256_file(model_path)},
        "rvc_config": hp.to_config_list(), "version": hp.version, "f0": bool(hp.f0),
        "sample_rate": int(hp.sr), "hop_length": int(hp.hop_length), "content_dim": int(hp.content_dim),
        "inter_channels": int(hp.inter_channels), "gin_channels": int(hp.gin_channels), "n_speakers": n_spk,
        "speakers": dict(voice.config.spk), "meta": _jsonable(getattr(voice, "meta", {})),
        "min_frames": MIN_FRAMES, "opset": int(opset), **interface(hp, n_spk),
        "prior_noise": f"rnd = randn(1, inter_channels, T) * {PRIOR_NOISE_SCALE} (RVC's torch infer; RVC's OnnxRVC "
                       "feeds unscaled randn)",
        "nsf_source": "RVC's SineGen (harmonic_num 0); its noise randn [1, T*hop, 1] is a RandomNormalLike node "
                      "in this file (RvcOnnxVoice feeds it as an input), an input of the split decoder",
        "exported_with": {"torch": torch.__version__, "onnx": onnx.__version__},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if verify:
        onnx.checker.check_model(os.fspath(out_path))
        manifest["parity"] = _verify_full(full, out_path, hp, n_spk)
    if split:
        manifest["split"] = _export_split(net, out_path, hp, n_spk, opset, verify)
    _store_manifest(out_path, manifest)
    return manifest


def _jsonable(meta: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dict(meta or {}), default=str))


def context_frames(net: torch.nn.Module) -> int:
    """Frames of context the chunked vocoder needs on each side (the decoder's receptive field)."""
    dec = net.dec
    if hasattr(dec, "context_frames"):
        return int(dec.context_frames())
    from ..models.nsf_hifigan import Generator

    return int(Generator.context_frames(dec))  # same layout: conv_pre, ups, resblocks, noise_convs, conv_post


def _export_split(net: torch.nn.Module, out_path: Path, hp: Any, n_spk: int, opset: int,
                  verify: bool) -> dict[str, Any]:
    paths = split_paths(out_path)
    inputs = dummy_inputs(hp, n_spk)
    prior, decoder = RvcPriorGraph(net), RvcDecoderGraph(net)
    p_names, d_names = graph_input_names(hp.f0, "prior"), graph_input_names(hp.f0, "decoder")
    _export(prior, tuple(inputs[n] for n in p_names), paths["prior"], p_names, ["z", "g"],
            {"phone": {1: "frames"}, "pitch": {1: "frames"}, "rnd": {2: "frames"}, "z": {2: "frames"}}, opset)
    with torch.no_grad():
        z, g = prior(*(inputs[n] for n in p_names))
    dec_inputs = {"z": z, "g": g, "f0": inputs["pitchf"], "phase0": torch.zeros(1), "noise": inputs["noise"]}
    _export(decoder, tuple(dec_inputs[n] for n in d_names), paths["decoder"], d_names, ["audio"],
            {"z": {2: "frames"}, "f0": {1: "frames"}, "noise": {1: "samples"}, "audio": {2: "samples"}}, opset)
    entry: dict[str, Any] = {
        "prior": paths["prior"].name, "decoder": paths["decoder"].name, "context_frames": context_frames(net),
        "prior_inputs": p_names, "decoder_inputs": d_names,
        "prior_outputs": {"z": "float32 [1, inter_channels, T]", "g": "float32 [1, gin_channels, 1]"},
        "speaker": "float32 [1, n_speakers]: mix weights (one-hot for one speaker)",
        "decoder_source": "f0 [1, Tc] Hz, phase0 [1] cycles at the chunk's first frame, noise [1, Tc*hop, 1]"}
    if verify:
        entry["parity"] = _verify_split(prior, decoder, paths, hp, n_spk, entry["context_frames"])
    return entry


def _reference(prior: torch.nn.Module, decoder: torch.nn.Module, inputs: dict[str, torch.Tensor],
               f0: bool) -> np.ndarray:
    """One-shot torch audio of the split graphs for `inputs` (the same computation as RvcGraph)."""
    with torch.no_grad():
        z, g = prior(*(inputs[n] for n in graph_input_names(f0, "prior")))
        source = (inputs["pitchf"], torch.zeros(1), inputs["noise"]) if f0 else ()
        return decoder(z, g, *source).numpy()


def _verify_full(full: RvcGraph, path: Path, hp: Any, n_spk: int) -> dict[str, Any]:
    """ORT on the RVC-layout file (random node made an input) vs torch with the same draws."""
    from .export import load_proto
    from .rvc_layout import NOISE_INPUT, with_noise_inputs
    from .runtime import make_session

    inputs = dummy_inputs(hp, n_spk, frames=VERIFY_FRAMES, seed=1)
    ref = _reference(RvcPriorGraph(full.net), RvcDecoderGraph(full.net), inputs, hp.f0)
    model, added = with_noise_inputs(load_proto(path))
    session, info = make_session(path, device="cpu", model_bytes=model)
    feed = {n: inputs[n].numpy() for n in graph_input_names(hp.f0)}
    if NOISE_INPUT in added:
        feed[NOISE_INPUT] = inputs["noise"].numpy()
    got = session.run(["audio"], feed)[0]
    return _check(got, ref, "The exported graph does not reproduce the torch model", VERIFY_FRAMES, info)


def _verify_split(prior: torch.nn.Module, decoder: torch.nn.Module, paths: dict[str, Path], hp: Any, n_spk: int,
                  context: int) -> dict[str, Any]:
    from .runtime import make_session
    from .rvc_runtime import SplitRunner

    inputs = dummy_inputs(hp, n_spk, frames=VERIFY_FRAMES, seed=2)
    ref = _reference(prior, decoder, inputs, hp.f0)
    runner = SplitRunner(make_session(paths["prior"], device="cpu")[0], make_session(paths["decoder"], "cpu")[0],
                         hp.f0, hp.hop_length, float(hp.sr), context)
    feed = {n: inputs[n].numpy() for n in graph_input_names(hp.f0, "prior")}
    got = runner.run(feed, inputs["pitchf"].numpy(), inputs["noise"].numpy(), VERIFY_CHUNK)
    info = {"chunk_frames": VERIFY_CHUNK, "chunks": len(chunk_spans(VERIFY_FRAMES, VERIFY_CHUNK, context))}
    return _check(got, ref, "The split export (chunked decoding) does not reproduce the one-shot graph",
                  VERIFY_FRAMES, None, info)


def _check(got: np.ndarray, ref: np.ndarray, what: str, frames: int, info: Any,
           extra: dict[str, Any] | None = None) -> dict[str, Any]:
    diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
    if diff > PARITY_LIMIT:
        raise ModelError(f"{what} (shape {got.shape} vs {ref.shape}, max abs difference {diff:.2e}); please "
                         "report this model's config.")
    out = {"frames": frames, "max_abs_diff": diff, **(extra or {})}
    if info is not None:
        out["provider"] = info.provider
    return out


__all__ = ["KIND", "MIN_FRAMES", "OPSET", "PRIOR_NOISE_SCALE", "context_frames", "dummy_inputs", "export_rvc",
           "interface", "is_rvc_checkpoint"]
