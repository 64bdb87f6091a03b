"""Finding and identifying community separation model files in the models folder (registry.models_dir()).

identify_model_file(path) -> registry entry name ("mdx", "demucs", "roformer", "vr"), from the file's ending and
a look at its first bytes / its yaml (no model is loaded, nothing is unpickled). find_model_files(dir) lists the
usable files under a folder (UVR's layout works as is: models/MDX_Net_Models, Demucs_Models/v3_v4_repo, ...).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Optional

from ...errors import ModelError
from .common import YAML_SUFFIXES, read_yaml, yaml_beside

MAX_SCAN_DEPTH = 4  # folder levels searched below the models folder
MAX_SCAN_FILES = 5000  # files looked at before the scan stops (a models folder holds tens)
ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format
LEGACY_TORCH_MAGIC = b"\x80"  # a pickle (torch's legacy format starts with one)
FAMILY_LABELS = {"mdx": "MDX-Net", "demucs": "Demucs", "roformer": "RoFormer", "vr": "VR arch"}
IGNORED_YAML_NAMES = ("model_data", "config")  # yaml that are settings, not models


def _head(path: Path, n: int = 8) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _yaml_kind(doc: Any) -> Optional[str]:
    """'demucs' for a bag of models, 'roformer' for an MSST RoFormer config, else None."""
    if not isinstance(doc, Mapping):
        return None
    if isinstance(doc.get("models"), list):
        return "demucs"
    model = doc.get("model")
    if isinstance(model, Mapping) and ("freqs_per_bands" in model or "num_bands" in model):
        return "roformer"
    return None


def identify_model_file(path: str | os.PathLike) -> str:
    """The registry entry that reads `path`; ModelError saying why a file is none of the community families."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"'{path}' is not a file.")
    suffix = path.suffix.lower()
    name = path.name
    if suffix == ".onnx":
        return "mdx"
    if suffix == ".th":
        return "demucs"
    if suffix == ".safetensors":
        if _safetensors_class(path) is None:
            raise ModelError(f"'{name}' is a .safetensors file without a demucs model class in its header; no "
                             "separation family reads it.")
        return "demucs"
    if suffix in YAML_SUFFIXES:
        if _yaml_kind(read_yaml(path, "model file")) == "demucs":
            return "demucs"
        raise ModelError(f"'{name}' is a settings file, not a model; pick the model file it belongs to (a .ckpt "
                         "for RoFormer, .onnx for MDX-Net), or a Demucs bag .yaml (`models: [...]`).")
    if suffix == ".ckpt":
        config = yaml_beside(path)
        if config is None:
            raise ModelError(f"'{name}' needs its config .yaml beside it (same name) to be read; MSST / UVR publish "
                             "one for each checkpoint.")
        kind = _yaml_kind(read_yaml(config, "RoFormer config"))
        if kind != "roformer":
            raise ModelError(f"'{name}': its config '{config.name}' is not a BS-/Mel-Band RoFormer's (MDX23C, SCNet "
                             "and other MSST families are not supported).")
        return "roformer"
    if suffix == ".pth":
        if _head(path, 4) != ZIP_MAGIC and not _head(path, 1).startswith(LEGACY_TORCH_MAGIC):
            raise ModelError(f"'{name}' is not a PyTorch file.")
        return "vr"
    raise ModelError(f"'{name}': no separation family reads '{suffix or 'files without an ending'}' files "
                     "(.onnx MDX-Net, .th / .safetensors / bag .yaml Demucs, .ckpt + .yaml RoFormer, .pth VR arch).")


def _safetensors_class(path: Path) -> Optional[str]:
    """The `klass` a demucs .safetensors header names (None when absent or unreadable)."""
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            return (fh.metadata() or {}).get("klass")
    except Exception:  # any unreadable file: not a demucs model
        return None


def _bag_signatures(paths: list[Path]) -> set[tuple[Path, str]]:
    """(folder, signature) of every .th some Demucs bag in the scan lists."""
    taken: set[tuple[Path, str]] = set()
    for path in paths:
        if path.suffix.lower() in YAML_SUFFIXES:
            try:
                doc = read_yaml(path, "model file")
            except ModelError:
                continue
            if _yaml_kind(doc) == "demucs":
                taken |= {(path.parent, str(sig)) for sig in doc["models"]}
    return taken


def _walk(folder: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        depth = len(Path(root).relative_to(folder).parts)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if depth < MAX_SCAN_DEPTH else []
        found.extend(Path(root) / f for f in sorted(files))
        if len(found) >= MAX_SCAN_FILES:
            break
    return found[:MAX_SCAN_FILES]


def find_model_files(folder: str | os.PathLike) -> list[tuple[str, Path, str]]:
    """[(entry name, path, label)] of the model files under `folder` (sorted by family, then name); files that are
    no model (settings, unreadable, a .th inside a bag listed on its own) are left out. A missing folder: []."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    paths = _walk(folder)
    in_bags = _bag_signatures(paths)
    out: list[tuple[str, Path, str]] = []
    for path in paths:
        if path.suffix.lower() in YAML_SUFFIXES and path.stem.lower() in IGNORED_YAML_NAMES:
            continue
        try:
            entry = identify_model_file(path)
        except (ModelError, OSError):
            continue
        if entry == "demucs" and path.suffix.lower() in (".th", ".safetensors") \
                and (path.parent, path.stem.split("-")[0]) in in_bags:
            continue
        label = f"{FAMILY_LABELS[entry]}: {path.stem}"
        if entry == "mdx":
            label = f"{FAMILY_LABELS[entry]}: {_mdx_name(path) or path.stem}"
        out.append((entry, path, label))
    order = list(FAMILY_LABELS)
    return sorted(out, key=lambda row: (order.index(row[0]), row[2].lower()))


def _mdx_name(path: Path) -> str:
    """The known model's name when the file is in the MDX table (hashing reads at most 10 MB)."""
    from .mdx import KNOWN_MDX_MODELS, model_hash

    row = KNOWN_MDX_MODELS.get(model_hash(path))
    return row[-1] if row else ""
