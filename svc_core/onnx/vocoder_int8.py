"""Opt-in int8 vocoder: static int8 quantisation of the split export's vocoder (`<name>.dec.int8.onnx`).

    report = add_int8_vocoder(OnnxSvc("model.onnx", encoder_path=...))      # calibrates on examples/
    out = svc.slice_inference(wav, sr, "nyaru", f0_predictor="pm", vocoder_precision="int8")

The same for an RVC voice's export (`svc_core.onnx.rvc_export`: its `voice.dec.onnx`, the same NSF-HiFiGAN layer
names): `add_int8_vocoder(Svc("voice.onnx", None, encoder_path=...))` calibrates through RVC's recipe and writes
`voice.dec.int8.onnx`, which RvcOnnxVoice runs for vocoder_precision="int8". What a voice must offer for this is
`Int8Target` below; the quantisation choices are one for both.

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
from typing import Any, Callable, Iterator, Optional, Protocol, Sequence

import numpy as np

from ..audio import AUDIO_SUFFIXES, load_audio
from ..errors import ModelError, OptionError
from ..memory import release_free_memory
from .export import manifest_path, read_manifest, sha256_file
from .split_export import DECODER_INPUTS, INT8_DECODER_SUFFIX, int8_decoder_path, split_paths

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
FEED_NAMES = DECODER_INPUTS  # a so-vits export's vocoder inputs (an RVC export's: z, g[, f0, phase0, noise])

Feed = dict[str, np.ndarray]  # one chunk's vocoder inputs, by the .dec.onnx input names
FeedDecodeFn = Callable[[Feed], np.ndarray]  # a feed -> audio [1, 1, Tc * hop]


class Int8Target(Protocol):
    """What an export offers for its int8 vocoder: OnnxSvc (so-vits) and RvcOnnxVoice (RVC) have these."""

    onnx_path: Any  # the export's main .onnx file (its .dec.onnx and manifest sit beside it)
    split: Any  # truthy when the export has the split pair (prior + vocoder)
    hop_length: int
    manifest: Any
    decoder_session: Any  # float32 vocoder session

    def int8_session(self, reload: bool = False) -> Any: ...

    def feeding_decoder(self, decode: FeedDecodeFn) -> Any: ...  # context manager


def int8_target(svc: Any) -> Int8Target:
    """The object holding the vocoder files of what `svc` runs: an OnnxSvc itself, or the RvcOnnxVoice an `Svc`
    runs (Svc("voice.onnx", None)). ModelError for a voice without an exported vocoder (a torch voice)."""
    model = getattr(svc, "model", None)
    for candidate in (model, svc):
        if candidate is not None and hasattr(candidate, "int8_path") and hasattr(candidate, "feeding_decoder"):
            return candidate
    raise ModelError("The int8 vocoder is made for an ONNX export of the voice (its vocoder file); this voice runs "
                     "in torch: export it first with `python -m svc_core export-onnx -m <voice> -o voice.onnx "
                     "--int8-vocoder`.")


def _split_target(svc: Any) -> Int8Target:
    """int8_target(svc), which must have the split export."""
    target = int8_target(svc)
    if not getattr(target, "split", None):
        raise ModelError("The int8 vocoder needs the split export (<name>.prior.onnx + <name>.dec.onnx), which "
                         "upstream's exports, RVC's own exports and --no-split exports lack: export the .pth with "
                         "`python -m svc_core export-onnx` (without --no-split).")
    return target


def session_feed_decoder(session: Any) -> FeedDecodeFn:
    """A vocoder session as a FeedDecodeFn."""
    return lambda feed: session.run(["audio"], feed)[0]


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
def _recording_decoder(target: Int8Target) -> Iterator[list[Feed]]:
    """While active, `target`'s chunked vocoder records its inputs and returns silence instead of decoding."""
    feeds: list[Feed] = []

    def record(feed: Feed) -> np.ndarray:
        feeds.append({name: np.array(value) for name, value in feed.items()})
        return np.zeros((1, 1, feed["z"].shape[-1] * target.hop_length), dtype=np.float32)

    with target.feeding_decoder(record):
        yield feeds


def capture_feeds(svc: Any, clips: Sequence[Path]) -> list[list[Feed]]:
    """Per clip, the vocoder inputs of `svc`'s float pipeline (so-vits or RVC recipe) in windows of
    CALIBRATION_FRAMES (the speakers taken in turn, so every speaker's conditioning is seen); nothing is decoded."""
    target = _split_target(svc)
    per_clip = []
    for i, clip in enumerate(clips):
        wav, sr = load_audio(clip)
        with _recording_decoder(target) as feeds:
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


def compare_decoders(reference: FeedDecodeFn, other: FeedDecodeFn, feeds: Sequence[Feed]) -> dict[str, float]:
    """Decode `feeds` with both -> SNR (dB) of the reference over the difference, max abs difference."""
    signal = noise = 0.0
    worst = 0.0
    for feed in feeds:
        a, b = reference(feed), other(feed)
        signal += float(np.sum(a.astype(np.float64) ** 2))
        noise += float(np.sum((a.astype(np.float64) - b) ** 2))
        worst = max(worst, float(np.abs(a - b).max()))
    snr = 10.0 * np.log10(signal / noise) if noise > 0 else float("inf")
    return {"snr_db": round(float(snr), 2), "max_abs_diff": worst, "windows": len(feeds)}


def add_int8_vocoder(svc: Any, clips: Optional[Sequence[str | os.PathLike]] = None) -> dict[str, Any]:
    """Calibrate and write `<model>.dec.int8.onnx` for the export `svc` runs (an OnnxSvc, or an Svc running an RVC
    export), check it on a held-out clip (the last one; with a single clip, that clip), record it in the export's
    manifest and make it available as vocoder_precision="int8". Returns the manifest entry."""
    target = _split_target(svc)
    files = calibration_clips(clips)
    per_clip = capture_feeds(svc, files)
    windows = [f for feeds in (per_clip[:-1] if len(per_clip) > 1 else per_clip) for f in feeds]
    calibration = _spread(windows, MAX_CALIBRATION_WINDOWS)
    model_path = Path(target.onnx_path)
    out = int8_decoder_path(model_path)
    float_path = split_paths(model_path)["decoder"]
    entry: dict[str, Any] = {"file": out.name, **quantize_decoder(float_path, out, calibration)}
    check = compare_decoders(session_feed_decoder(target.decoder_session),
                             session_feed_decoder(target.int8_session(reload=True)), per_clip[-1])
    entry.update({
        "calibration": {"clips": [p.name for p in files[:-1] or files], "windows": len(calibration),
                        "windows_recorded": len(windows), "frames_per_window": CALIBRATION_FRAMES,
                        "f0": CALIBRATION_F0},
        "check": {"clip": files[-1].name, "held_out": len(files) > 1, **check},
        "float_decoder_sha256": sha256_file(float_path),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    })
    _record(out, entry)
    manifest = read_manifest(model_path)
    manifest.setdefault("split", {})["int8"] = entry
    manifest_path(model_path).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    target.manifest = manifest
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


__all__ = ["CALIBRATION_FRAMES", "INT8_DECODER_SUFFIX", "Int8Target", "add_int8_vocoder", "calibration_clips",
           "capture_feeds", "compare_decoders", "int8_decoder_path", "int8_target", "quantize_decoder",
           "session_feed_decoder"]
