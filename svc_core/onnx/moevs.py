"""MoeVoiceStudio's model descriptor (`{name}.json`, spec h), which upstream's exporter writes beside
`{name}/{name}_SoVits.onnx` and which MoeVoiceStudio voice packs carry instead of config.json.

    {"Folder": "nyaru", "Name": "nyaru", "Type": "SoVits", "Rate": 44100, "Hop": 512, "Hubert": "vec-768-layer-12",
     "SoVits4": true, "SoVits3": false, "CharaMix": true, "Volume": false, "HiddenSize": 768,
     "Characters": ["nyaru"], "Cluster": ""}

`descriptor_for` writes one for our exports; `config_from_descriptor` turns one into a config dict (upstream's 4.1
template with the descriptor's encoder, speakers, volume flag, rate and hop), enough to run the ONNX file.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Optional

from ..config import ENCODER_DIMS, SvcConfig, config_from_dict, read_config_json, template_config
from ..constants import HOP_LENGTH, MODEL_SAMPLE_RATE
from ..errors import ModelError
from ..file_limits import MAX_CONFIG_BYTES

SOVITS_TYPE = "SoVits"


def moevs_encoder_name(speech_encoder: str) -> Optional[str]:
    """Our encoder name -> the name MoeVoiceStudio gives its ONNX file ('vec768l9' -> 'vec-768-layer-9',
    'hubertsoft' -> 'hubert-soft'); None for encoders it has no file for (phonevec256, whisper-ppg, ...)."""
    name = speech_encoder[: -len("-onnx")] if speech_encoder.endswith("-onnx") else speech_encoder
    match = re.fullmatch(r"vec(256|768)l(9|12)", name)
    if match:
        return f"vec-{match[1]}-layer-{match[2]}"
    return "hubert-soft" if name == "hubertsoft" else None


def descriptor_for(config: SvcConfig, name: str, speaker_mix: bool) -> Optional[dict[str, Any]]:
    """Upstream's MoeVoiceStudio descriptor (checkpoints/{name}.json) for a model with this config, or None when
    MoeVoiceStudio has no content encoder for it. "Hubert" names the config's encoder; upstream's exporter derives
    it from gin_channels alone, which names the wrong encoder for vec768l9, vec256l12 and hubertsoft models."""
    hubert = moevs_encoder_name(config.speech_encoder)
    if hubert is None:
        return None
    gin = int(config.model.gin_channels)
    return {"Folder": name, "Name": name, "Type": SOVITS_TYPE, "Rate": int(config.sampling_rate),
            "Hop": int(config.hop_length), "Hubert": hubert,
            "SoVits4": True, "SoVits3": False, "CharaMix": bool(speaker_mix),
            "Volume": bool(config.model.vol_embedding), "HiddenSize": gin,
            "Characters": list(config.spk), "Cluster": ""}


def is_descriptor(doc: Any) -> bool:
    return isinstance(doc, dict) and "Type" in doc and "Hubert" in doc and "model" not in doc


def config_from_descriptor(doc: dict[str, Any], source: str) -> dict[str, Any]:
    """A config.json dict for the model `doc` describes; ModelError for what it cannot describe."""
    from .upstream_file import encoder_name_of

    if doc.get("Type") != SOVITS_TYPE:
        raise ModelError(f"{source} describes a {doc.get('Type')!r} model; only so-vits-svc ('SoVits') models run "
                         "here.")
    if not doc.get("SoVits4", False):
        raise ModelError(f"{source} describes a so-vits-svc 3.0 model; only 4.x models run here.")
    try:
        rate, hop, hidden = int(doc["Rate"]), int(doc["Hop"]), int(doc["HiddenSize"])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"{source}: the descriptor lacks a usable {err} field; use the model's config.json.") from None
    if (rate, hop) != (MODEL_SAMPLE_RATE, HOP_LENGTH):
        raise ModelError(f"{source} says {rate} Hz with hop {hop}; only the {MODEL_SAMPLE_RATE} Hz / hop {HOP_LENGTH} "
                         "layout can be rebuilt from a descriptor: give the model's config.json.")
    encoder = encoder_name_of(f"{doc.get('Hubert', '')}.onnx") or {768: "vec768l12", 256: "vec256l9"}.get(hidden)
    encoder = encoder if encoder in ENCODER_DIMS else f"{encoder}-onnx"
    if ENCODER_DIMS.get(encoder) != hidden:
        raise ModelError(f"{source}: encoder {doc.get('Hubert')!r} does not give HiddenSize {hidden} features.")
    names = [str(c) for c in doc.get("Characters") or []] or ["speaker0"]
    config = template_config(encoder, speakers={n: i for i, n in enumerate(names)},
                             vol_embedding=bool(doc.get("Volume", False)))
    config["model"]["n_speakers"] = len(names)
    return config


def descriptor_candidates(onnx_path: Path) -> list[Path]:
    """Where a descriptor for `.../<folder>/<name>_SoVits.onnx` sits: `.../<folder>.json` (upstream's exporter,
    MoeVoiceStudio's Models/ folder) or `<name>.json` beside the file."""
    stem = onnx_path.stem[: -len("_SoVits")] if onnx_path.stem.endswith("_SoVits") else onnx_path.stem
    return [onnx_path.parent.parent / f"{onnx_path.parent.name}.json", onnx_path.with_name(f"{stem}.json")]


def read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None  # not a descriptor; read_config_json says why if it is the one asked for
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def load_voice_config(path: str | os.PathLike) -> tuple[SvcConfig, dict[str, Any]]:
    """(config, its dict) from a config.json or a MoeVoiceStudio descriptor (read once)."""
    path = Path(path)
    doc = read_config_json(path)  # readable errors for a missing, empty or broken file
    if is_descriptor(doc):
        doc = config_from_descriptor(doc, path.name)
        return config_from_dict(doc, source=path.name), doc
    config = config_from_dict(doc, source=path.name)
    config.path = os.fspath(path)
    return config, doc


def find_descriptor(onnx_path: Path) -> Optional[Path]:
    return next((p for p in descriptor_candidates(onnx_path) if p.is_file() and is_descriptor(read_json(p))), None)


__all__ = ["config_from_descriptor", "descriptor_candidates", "descriptor_for", "find_descriptor", "is_descriptor",
           "load_voice_config", "moevs_encoder_name", "read_json"]
