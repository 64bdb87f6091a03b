"""`python -m svc_core doctor`: what this installation can do, and what it is missing.

`collect()` returns a plain dict (the web page's Status panel shows the same data); `report()` formats it.
Nothing here loads a model: encoder and f0 status come from the registries and a look for the weights files.
"""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any

import torch

from .audio import FFMPEG_SUFFIXES, ffmpeg_path
from .precision import cpu_has_int8_dot, cpu_has_native_bf16

PACKAGES = ("torch", "numpy", "onnxruntime", "gradio", "faiss-cpu", "torchcrepe", "torchfcpe",
            "praat-parselmouth", "pyworld", "librosa", "soundfile", "soxr")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _encoders() -> list[dict[str, Any]]:
    from .encoders import encoder_info, find_weights, list_encoders
    from .errors import MissingWeightsError

    rows = []
    for name in list_encoders():
        info = encoder_info(name)
        try:
            path, problem = find_weights(name), None
        except MissingWeightsError as err:
            path, problem = None, str(err)
        rows.append({"name": name, "dim": info.dim, "file": info.default_file, "found": path,
                     "usable": path is not None, "problem": problem, "where_to_get": info.where_to_get})
    return rows


def _predictors() -> list[dict[str, Any]]:
    from .f0 import predictor_status

    return [{"name": name, "usable": reason is None, "problem": reason}
            for name, reason in predictor_status().items()]


def _separators() -> list[dict[str, Any]]:
    from .separation import separator_entry, separator_status

    rows = []
    for name, reason in separator_status().items():
        entry = separator_entry(name)
        rows.append({"name": name, "label": entry.label, "kind": entry.kind, "usable": reason is None,
                     "problem": reason, "needs_file": list(entry.file_suffixes)})
    return rows


def _starter_voices() -> dict[str, Any]:
    """The shipped starter voices (voices/starter, and voices/starter-sovits when present): present, speakers, and
    whether every file matches its sha256."""
    import json

    from .starter.package import MANIFEST, verify_package
    from .ui.settings import STARTER_SOVITS, STARTER_VOICES

    path = STARTER_VOICES / MANIFEST
    if not path.is_file():
        return {"folder": str(STARTER_VOICES), "present": False, "problems": [],
                "hint": "rebuild them with `make starter-voices` (hours of CPU)"}
    doc = json.loads(path.read_text(encoding="utf-8"))
    problems = verify_package(STARTER_VOICES)
    if (STARTER_SOVITS / MANIFEST).is_file():
        problems += [f"{STARTER_SOVITS.name}/{p}" for p in verify_package(STARTER_SOVITS)]
    return {"folder": str(STARTER_VOICES), "present": True, "speakers": doc.get("speakers", []),
            "step": doc.get("step"), "problems": problems}


def collect() -> dict[str, Any]:
    """Versions, threads, devices, usable encoders and f0 predictors, missing weight files."""
    from .torchaudio_compat import ensure_torchaudio

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "torchaudio": ensure_torchaudio(),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "cpu_bf16_dot": cpu_has_native_bf16(),
        "cpu_int8_dot": cpu_has_int8_dot(),
        "ffmpeg": ffmpeg_path(),
        "pretrain_dir": os.environ.get("SVC_PRETRAIN_DIR") or os.path.abspath("pretrain"),
        "encoders": _encoders(),
        "f0_predictors": _predictors(),
        "separators": _separators(),
        "starter_voices": _starter_voices(),
        "mel_vocoder": _mel_vocoder(),
    }


def _mel_vocoder() -> dict[str, Any]:
    """Where the NSF-HiFiGAN mel vocoder (shallow diffusion, enhancer) is, or what is missing (no file is loaded)."""
    from .diffusion.stage import VOCODER_FILE
    from .f0.weights import describe_search, find_weights

    found = find_weights(VOCODER_FILE)
    config = found.parent / "config.json" if found is not None else None
    problem = None
    if found is None:
        problem = (f"missing {VOCODER_FILE} ({describe_search(VOCODER_FILE)}): unzip openvpi's nsf_hifigan_20221211.zip "
                   "into pretrain/ for shallow diffusion and the enhancer (a voice folder's nsf_hifigan/ also works)")
    elif not config.is_file():
        problem = f"{found} has no config.json beside it"
    return {"found": None if found is None else str(found), "usable": problem is None, "problem": problem}


def describe_ffmpeg(path: str | None) -> str:
    """Where ffmpeg is and what it is for, or what its absence means."""
    formats = ", ".join(s.lstrip(".") for s in FFMPEG_SUFFIXES)
    if path:
        return f"{path} ({formats} inputs)"
    return (f"not found; {formats} inputs cannot be read (apt-get install ffmpeg, or convert them to wav / flac; wav, "
            "flac, ogg, mp3 and aiff need nothing more)")


def report(info: dict[str, Any] | None = None) -> str:
    info = info or collect()
    lines = [f"Python {info['python']} on {info['platform']}"]
    lines += [f"  {name:<18} {version or 'not installed'}" for name, version in info["packages"].items()]
    lines.append(f"torchaudio: {info['torchaudio']} (svc_core does not need the real one)")
    lines.append(f"torch threads: {info['torch_threads']} of {info['cpu_count']} CPUs; CUDA: "
                 + (", ".join(info["cuda_devices"]) if info["cuda"] else "not available"))
    yes = {True: "yes", False: "no"}
    lines.append(f"CPU bf16 dot products: {yes[info['cpu_bf16_dot']]} (vocoder / encoder_precision bf16, torch); "
                 f"int8 dot products: {yes[info['cpu_int8_dot']]} (int8 vocoder and encoder, ONNX Runtime: fastest "
                 "with them)")
    lines.append(f"ffmpeg: {describe_ffmpeg(info['ffmpeg'])}")
    lines.append(f"weights folder: {info['pretrain_dir']} (set SVC_PRETRAIN_DIR to change)")
    lines.append("content encoders:")
    for row in info["encoders"]:
        state = f"ready ({row['found']})" if row["usable"] else f"missing {row['file']}: {row['where_to_get']}"
        lines.append(f"  {row['name']:<10} {row['dim']:>4}-dim  {state}")
    lines.append("f0 predictors:")
    for row in info["f0_predictors"]:
        lines.append(f"  {row['name']:<10} {'ready' if row['usable'] else row['problem']}")
    lines.append("separators (covers; community families read a model file you download, see docs/covers.md):")
    for row in info["separators"]:
        need = f", with a {' / '.join(row['needs_file'])} file" if row["needs_file"] else ""
        state = f"ready{need}" if row["usable"] else row["problem"]
        lines.append(f"  {row['name']:<10} {row['label']}: {state}")
    mv = info["mel_vocoder"]
    lines.append(f"NSF-HiFiGAN mel vocoder: {'ready (' + mv['found'] + ')' if mv['usable'] else mv['problem']}")
    sv = info["starter_voices"]
    if not sv["present"]:
        lines.append(f"starter voices: missing in {sv['folder']}; {sv['hint']}")
    elif sv["problems"]:
        lines.append(f"starter voices: DAMAGED ({'; '.join(sv['problems'])}); restore voices/starter from git")
    else:
        lines.append(f"starter voices: ready ({', '.join(sv['speakers'])}; step {sv['step']}; sha256 verified)")
    return "\n".join(lines)


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args) -> int:
    info = collect()
    if args.json:
        import json

        print(json.dumps(info, indent=2))
    else:
        print(report(info))
    return 0


def main() -> int:
    print(report())
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
