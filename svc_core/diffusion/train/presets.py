"""Model and training presets written into diffusion.yaml by `preprocess --use-diff --diff-size NAME`.

"full" is upstream's template (20 layers x 512 channels, 55 M parameters, batch 48, the whole 1000-step chain): the
size of the pretrained model_0.pt bases, for a GPU. "small" fits 2 CPU cores: half the layers, a quarter of the
channels (2.5 M parameters), batches of 8 and only the first 100 diffusion steps (what shallow diffusion with
k_step <= 100 uses). A step of it (8 crops of 2 s) took 0.42-0.6 s on one thread of this machine's CPU, against
8.8-11 s for "full" at the same batch (docs: measured under load; see the report of issue #21). A "small" model
cannot run only-diffusion."""
from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {"model": {}, "train": {}},  # the template's values
    "small": {
        "model": {"n_layers": 10, "n_chans": 128, "n_hidden": 256, "k_step_max": 100},
        "train": {"batch_size": 8, "num_workers": 0, "cache_fp16": False, "interval_val": 1000,
                  "interval_force_save": 5000},
    },
}


def apply_preset(doc: dict[str, Any], size: str) -> dict[str, Any]:
    """Overwrite the model/train values of the diffusion yaml dict `doc` with preset `size` (in place)."""
    if size not in PRESETS:
        raise ValueError(f"unknown diffusion size {size!r}; expected one of {', '.join(PRESETS)}")
    for section, values in PRESETS[size].items():
        doc.setdefault(section, {}).update(values)
    return doc
