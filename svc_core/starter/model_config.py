"""The starter model's size and training settings, applied to a preprocessed dataset's config.json.

`python -m svc_core preprocess` writes upstream's full-size 4.1 template (45 M parameters; a 72 MB fp16 release
file; a step of several seconds on 2 CPU cores). The starter model is smaller where it costs least:

| field | template | starter | why |
|---|---|---|---|
| hidden/inter_channels | 192 | 160 | prior encoder + flow; phonevec256 features are already phone-like |
| filter_channels | 768 | 512 | transformer feed-forward (upstream's tiny preset also uses 512) |
| n_layers | 6 | 4 | prior encoder depth |
| upsample_initial_channel | 512 | 256 | NSF-HiFiGAN width between HiFi-GAN V1 (512) and V2 (128): 4x fewer decoder FLOPs |

That is 21.7 M parameters (6.5 M of them in enc_q, which a release file drops): a 30.5 MB fp16 release
generator for four speakers. Training: batch 4, learning rate 2e-4 (HiFi-GAN's, faster from scratch than
upstream's fine-tuning 1e-4), checkpoint + validation every 500 steps, and training clips cropped to 256 frames
(3 s; upstream crops at 790) so the prior/posterior encoders and the flow, which run on the whole clip, cost less
per step.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import config_from_dict


@dataclass(frozen=True)
class StarterModel:
    """config.json "model" fields that differ from upstream's template."""

    hidden_channels: int = 160
    inter_channels: int = 160
    filter_channels: int = 512
    n_layers: int = 4
    upsample_initial_channel: int = 256


@dataclass(frozen=True)
class StarterTraining:
    """config.json "train" fields that differ from upstream's template."""

    batch_size: int = 4
    learning_rate: float = 2e-4
    eval_interval: int = 500
    log_interval: int = 50
    keep_ckpts: int = 3
    crop_frames: int = 256
    posterior_input: str = "envelope"  # pitch-free enc_q input: the model must follow f0 (train/envelope.py)


def starter_config(doc: dict[str, Any], model: StarterModel = StarterModel(),
                   training: StarterTraining = StarterTraining()) -> dict[str, Any]:
    """A copy of a config.json dict with the starter sizes and training settings (checked by the reader)."""
    out = json.loads(json.dumps(doc))
    out["model"].update(asdict(model))
    out["train"].update(asdict(training))
    return config_from_dict(out, source="config.json").to_dict()


def apply_to_dataset(dataset_dir: str | Path, model: StarterModel = StarterModel(),
                     training: StarterTraining = StarterTraining()) -> bool:
    """Rewrite DATASET/config.json with the starter settings; returns True when the file changed."""
    path = Path(dataset_dir) / "config.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    text = json.dumps(starter_config(doc, model, training), indent=2, ensure_ascii=False) + "\n"
    if path.read_text(encoding="utf-8") == text:
        return False
    tmp = path.with_suffix(".json.part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return True
