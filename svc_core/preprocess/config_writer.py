"""config.json for training, from svc_core.config's upstream template (spec a.3 / a.4), and with --use-diff the
diffusion model's diffusion.yaml (upstream's configs/diffusion.yaml, spec f.1) beside it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..config import ENCODER_DIMS, config_from_dict, template_config
from ..encoders import encoder_info
from ..errors import OptionError


def config_encoder_name(encoder: str) -> str:
    """The model.speech_encoder value for a registry encoder: its own name, or its '-onnx' twin for the two
    layer choices upstream only knows under that name (same features)."""
    name = encoder_info(encoder).name
    for candidate in (name, f"{name}-onnx"):
        if candidate in ENCODER_DIMS:
            return candidate
    raise OptionError(f"The encoder '{encoder}' has no so-vits-svc config name; choose one of "
                      + ", ".join(n for n in ENCODER_DIMS if not n.endswith("-onnx")) + ".")


def build_config(encoder: str, speakers: list[str], vol_embedding: bool, train_list: Path, val_list: Path
                 ) -> dict[str, Any]:
    """Upstream-layout config dict: spk ids 0..N-1 in sorted speaker order, ssl_dim/gin_channels per encoder."""
    spk = {name: i for i, name in enumerate(sorted(speakers))}
    doc = template_config(config_encoder_name(encoder), speakers=spk, vol_embedding=bool(vol_embedding))
    doc["model"]["n_speakers"] = len(spk)
    doc["data"]["training_files"] = train_list.as_posix()
    doc["data"]["validation_files"] = val_list.as_posix()
    return config_from_dict(doc, source="config.json").to_dict()  # checked by the same reader as load_config


DIFFUSION_CONFIG_NAME = "diffusion.yaml"


def build_diffusion_config(encoder: str, speakers: list[str], train_list: Path, val_list: Path, size: str = "small",
                           device: str = "cpu") -> dict[str, Any]:
    """Upstream's diffusion_template.yaml for this dataset: encoder and its width, the speakers (ids as in
    config.json), the filelists, the model/train preset `size` (svc_core.diffusion.train.presets) and `device`."""
    from ..diffusion.config import diffusion_config_from_dict, template_diffusion_config
    from ..diffusion.train.presets import apply_preset

    spk = {name: i for i, name in enumerate(sorted(speakers))}
    doc = template_diffusion_config(config_encoder_name(encoder), speakers=spk)
    doc["data"]["training_files"] = train_list.as_posix()
    doc["data"]["validation_files"] = val_list.as_posix()
    doc["device"] = "cuda" if str(device).startswith("cuda") else "cpu"
    apply_preset(doc, size)
    diffusion_config_from_dict(doc, source=DIFFUSION_CONFIG_NAME)  # checked by the same reader as the loader
    return doc


def diffusion_config_text(doc: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def config_text(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
