"""Opt-in int8 vocoder: static int8 quantisation of the split export's vocoder (`<name>.dec.int8.onnx`).

    report = add_int8_vocoder(OnnxSvc("model.onnx", encoder_path=...))      # calibrates on examples/
    out = svc.slice_inference(wav, sr, "nyaru", f0_predictor="pm", vocoder_precision="int8")

The NSF-HiFiGAN vocoder is most of a conversion's arithmetic (bench/README.md). ONNX Runtime runs int8
convolutions with the CPU's int8 dot products (AVX-VNNI / AVX512-VNNI, ARM dot product), where the full-size
vocoder runs 2.3x (2 threads) to 2.8x (1 thread) faster than in float32 on the bench machine.

What is quantised (ONNX QDQ format, read by any ONNX Runtime): the residual blocks' and upsampling stages'
`Conv` layers, weights int8 per output channel, inputs uint8 with ranges measured by running the voice's own
float pipeline on calibration audio (min / max). What stays float32: the transposed convolutions (ONNX Runtime's
CPU provider has no int8 kernel for them, so quantising them adds rounding and no speed), the first and last
convolutions (`conv_pre`, `conv_post`), the speaker conditioning (`cond`), the NSF source and its `noise_convs`,
and the residual additions (quantising those too takes 28 % more off the vocoder's time but costs 13-15 dB of SNR).

The result is not the float32 output: on the trained starter voice 41-42 dB SNR of the float32 output over the
difference (bf16 gives 37-39 dB); `add_int8_vocoder` measures it on a held-out calibration clip and records it.
"""
from __future__ import annotations

import datetime
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np

from ..audio import AUDIO_SUFFIXES, load_audio
from ..errors import ModelError, OptionError
from ..memory import release_free_memory
from .export import manifest_path, read_manifest, sha256_file
from .split_export import INT8_DECODER_SUFFIX, DecodeFn, int8_decoder_path, session_decoder, split_paths

INT8_MANIFEST_KEY = "svc_studio_int8_vocoder"  # ONNX metadata entry of the int8 file (its calibration record)
CALIBRATION_FRAMES = 48  # frames per calibration window (plus the vocoder's context on each side)
MAX_CALIBRATION_WINDOWS = 16  # spread evenly over the clips. The calibrator keeps every activation of a window
# alive (full size: ~10 MB per frame), so short windows bound its memory (~0.9 GB at full size) and few of them its
# time; 8-40 windows of 48 or 96 frames gave the same SNR within 0.6 dB (bench/notes.md). onnxruntime 1.31's
# CalibMaxIntermediateOutputs drops data instead of merging it, so it is not used.
CALIBRATION_F0 = "pm"  # f0 predictor of the calibration conversions (fast, always available)
FLOAT_LAYERS = frozenset({"noise_convs", "cond", "conv_pre", "conv_post"})  # vocoder modules kept float32
QUANTIZED_OPS = ("Conv",)
DEFAULT_CALIBRATION_DIR = Path(__file__).resolve().parents[2] / "examples"
FEED_NAMES = ("z", "f0", "g", "phase0", "offset")

Feed = dict[str, np.ndarray]


def calibration_clips(paths: Optional[Sequence[str | os.PathLike]] = None) -> list[Path]:
    """The calibration audio: `paths` (files, or folders of audio files), else the repository's examples/."""
    sources = [Path(p) for p in paths] if paths else [DEFAULT_CALIBRATION_DIR]
    clips: list[Path] = []
    for source in sources:
        if source.is_dir():
            clips += sorted(p for p in source.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
        elif source.is_file():
            clips.append(source)
        else:
            raise OptionError(f"Calibration audio '{source}' does not exist.")
    if not clips:
        raise OptionError(f"No calibration audio found in {', '.join(map(str, sources))}: give a few clips of "
                          "singing or speech (a minute in all is plenty), e.g. --calibration my_clips/.")
    return clips


@contextmanager
def _recording_decoder(svc: Any) -> Iterator[list[Feed]]:
    """While active, `svc`'s chunked vocoder records its inputs and returns silence instead of decoding."""
    feeds: list[Feed] = []

    def record(z, f0, g, phase0, offset):
        feeds.append(dict(zip(FEED_NAMES, (np.array(a) for a in (z, f0, g, phase0, offset)))))
        return np.zeros((1, 1, z.shape[-1] * svc.hop_length), dtype=np.float32)

    with svc.decoding_with(record):
        yield feeds


def capture_feeds(svc: Any, clips: Sequence[Path]) -> list[list[Feed]]:
    """Per clip, the vocoder inputs of `svc`'s float pipeline in windows of CALIBRATION_FRAMES (the speakers
    taken in turn, so every speaker's conditioning is seen); nothing is decoded."""
    if not getattr(svc, "split", None):
        raise ModelError("The int8 vocoder needs the split export (model.prior.onnx + model.dec.onnx), which "
                         "upstream's exports and --no-split exports lack: export the G_*.pth with `python -m svc_core "
                         "export-onnx` (without --no-split).")
    per_clip = []
    for i, clip in enumerate(clips):
        wav, sr = load_audio(clip)
        with _recording_decoder(svc) as feeds:
            svc.slice_inference(wav, sr, svc.speakers[i % len(svc.speakers)], f0_predictor=CALIBRATION_F0,
                                decoder_chunk_frames=CALIBRATION_FRAMES, cache=False)
        if not feeds:
            raise OptionError(f"Calibration clip '{clip.name}' has no voiced audio above the slicer threshold.")
        per_clip.append(feeds)
    return per_clip


class _Feeds:
    """onnxruntime CalibrationDataReader over a list of feeds."""

    def __init__(self, feeds: Sequence[Feed]) -> None:
        self._it = iter(feeds)

    def get_next(self) -> Optional[Feed]:
        return next(self._it, None)


def quantize_decoder(float_path: Path, out_path: Path, feeds: Sequence[Feed]) -> dict[str, Any]:
    """Write the int8 vocoder calibrated on `feeds`; returns what was quantised."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="svc-int8-", dir=out_path.parent) as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(os.fspath(float_path), os.fspath(prepared), skip_symbolic_shape=True)
        nodes = onnx.load(os.fspath(prepared), load_external_data=False).graph.node
        convs = [n.name for n in nodes if n.op_type in QUANTIZED_OPS]
        keep = [name for name in convs if _module_names(name) & FLOAT_LAYERS]
        partial = Path(tmp) / out_path.name
        quantize_static(os.fspath(prepared), os.fspath(partial), _Feeds(feeds), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=keep,
                        calibrate_method=CalibrationMethod.MinMax)
        os.replace(partial, out_path)
    return {"quantized_layers": len(convs) - len(keep), "float_layers": len(keep),
            "format": "ONNX QDQ: Conv weights int8 per output channel, inputs uint8 (min/max calibration)"}


def _module_names(node_name: str) -> set[str]:
    """'/resblocks.2/convs1.0/Conv' -> {'resblocks', 'convs1', 'Conv'} (the exporter names nodes by module path)."""
    return {part.split(".")[0] for part in node_name.split("/") if part}


def compare_decoders(reference: DecodeFn, other: DecodeFn, feeds: Sequence[Feed]) -> dict[str, float]:
    """Decode `feeds` with both -> SNR (dB) of the reference over the difference, max abs difference."""
    signal = noise = 0.0
    worst = 0.0
    for feed in feeds:
        args = [feed[n] for n in FEED_NAMES]
        a, b = reference(*args), other(*args)
        signal += float(np.sum(a.astype(np.float64) ** 2))
        noise += float(np.sum((a.astype(np.float64) - b) ** 2))
        worst = max(worst, float(np.abs(a - b).max()))
    snr = 10.0 * np.log10(signal / noise) if noise > 0 else float("inf")
    return {"snr_db": round(float(snr), 2), "max_abs_diff": worst, "windows": len(feeds)}


def add_int8_vocoder(svc: Any, clips: Optional[Sequence[str | os.PathLike]] = None) -> dict[str, Any]:
    """Calibrate and write `<model>.dec.int8.onnx` for the export `svc` (an OnnxSvc) runs, check it on a
    held-out clip (the last one; with a single clip, that clip), record it in the export's manifest and make it
    available as vocoder_precision="int8". Returns the manifest entry."""
    files = calibration_clips(clips)
    per_clip = capture_feeds(svc, files)
    windows = [f for feeds in (per_clip[:-1] if len(per_clip) > 1 else per_clip) for f in feeds]
    calibration = _spread(windows, MAX_CALIBRATION_WINDOWS)
    model_path = Path(svc.onnx_path)
    target = int8_decoder_path(model_path)
    float_path = split_paths(model_path)["decoder"]
    entry: dict[str, Any] = {"file": target.name, **quantize_decoder(float_path, target, calibration)}
    check = compare_decoders(session_decoder(svc.decoder_session), session_decoder(svc.int8_session(reload=True)),
                             per_clip[-1])
    entry.update({
        "calibration": {"clips": [p.name for p in files[:-1] or files], "windows": len(calibration),
                        "windows_recorded": len(windows), "frames_per_window": CALIBRATION_FRAMES,
                        "f0": CALIBRATION_F0},
        "check": {"clip": files[-1].name, "held_out": len(files) > 1, **check},
        "float_decoder_sha256": sha256_file(float_path),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    _record(target, entry)
    manifest = read_manifest(model_path)
    manifest.setdefault("split", {})["int8"] = entry
    manifest_path(model_path).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    svc.manifest = manifest
    release_free_memory()  # the calibrator's ~1 GB (full size) goes back to the system, not to this process's heap
    return entry


def _spread(items: list, limit: int) -> list:
    """At most `limit` of `items`, evenly spaced from first to last."""
    if len(items) <= limit:
        return items
    return [items[round(i * (len(items) - 1) / (limit - 1))] for i in range(limit)]


def _record(path: Path, entry: dict[str, Any]) -> None:
    """Store the calibration record in the int8 file's own ONNX metadata."""
    import onnx

    proto = onnx.load(os.fspath(path))
    prop = proto.metadata_props.add()
    prop.key, prop.value = INT8_MANIFEST_KEY, json.dumps(entry)
    onnx.save(proto, os.fspath(path))


__all__ = ["CALIBRATION_FRAMES", "INT8_DECODER_SUFFIX", "add_int8_vocoder", "calibration_clips", "capture_feeds",
           "compare_decoders", "int8_decoder_path", "quantize_decoder"]
