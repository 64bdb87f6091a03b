"""A voice's so-vits-svc 4.1 diffusion files for the web demo: where they are, what the page may offer with them,
and how an upload of them is checked and stored.

A voice folder's diffusion model is upstream's `logs/44k/diffusion/` layout copied under the voice:
`<models_dir>/<voice>/diffusion/model_<step>.pt` + `config.yaml` (svc_core.diffusion.loader.find_diffusion_files
picks the highest step). A folder holding only that (no `G_*.pth`) is a diffusion-only voice: the diffusion model
renders the mel from noise. The mel vocoder is the voice folder's `nsf_hifigan/model` (+ config.json) when it has
one, else the one the diffusion config names or the server's `pretrain/nsf_hifigan/model`
(svc_core.diffusion.stage.find_vocoder). Nothing here reads weights except `check_uploaded_diffusion`, which loads
them through the safe loader.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ModelError, SvcError
from ..file_limits import MAX_CONFIG_BYTES, check_file_size

DIFFUSION_DIR = "diffusion"  # a voice folder's subfolder (upstream: logs/44k/diffusion)
DIFFUSION_CONFIG = "config.yaml"  # the name an uploaded diffusion yaml is stored under
VOCODER_DIR = "nsf_hifigan"  # a voice folder's own mel vocoder: nsf_hifigan/model + nsf_hifigan/config.json
VOCODER_MODEL = "model"
DIFFUSION_MODEL_PATTERN = re.compile(r"^model_(\d+)\.pt$", re.IGNORECASE)  # upstream train_diff's file names
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class DiffusionFiles:
    """A voice's diffusion model file and its config.yaml."""

    model: Path
    config: Path


@dataclass(frozen=True)
class DiffusionTraits:
    """What the page offers for a diffusion model, from its config.yaml (k_step bounds, default sampler)."""

    max_k_step: int  # the largest k_step shallow diffusion may use (DiffusionConfig.max_k_step)
    method: str  # the config's infer.method: the sampler used when none is picked
    speedup: int  # the config's infer.speedup
    full_chain: bool  # trained on the whole chain: only-diffusion is allowed


def find_diffusion(folder: Path) -> DiffusionFiles | None:
    """The diffusion files of a voice folder (`diffusion/model_*.pt` + config.yaml), None when it has none;
    ModelError when a model has no config.yaml beside it."""
    from ..diffusion.loader import find_diffusion_files

    found = find_diffusion_files(folder)
    return None if found is None else DiffusionFiles(Path(found[0]), Path(found[1]))


def folder_vocoder(folder: Path) -> Path | None:
    """The voice folder's own mel vocoder file (`nsf_hifigan/model`), None when it has none."""
    path = folder / VOCODER_DIR / VOCODER_MODEL
    return path if path.is_file() else None


def read_config(files: DiffusionFiles):
    """The checked DiffusionConfig (yaml only, size-limited; ModelError naming the file and field)."""
    from ..diffusion.config import load_diffusion_config

    return load_diffusion_config(files.config)


def diffusion_speakers(config) -> tuple[str, ...]:
    """Speaker names of a diffusion-only voice, in id order (the yaml's `spk`; one "speaker0" when it has none,
    as svc_core.diffusion.stage.DiffusionStage.svc_config names it)."""
    names = tuple(name for name, _ in sorted(config.speakers.items(), key=lambda kv: kv[1]))
    return names or ("speaker0",)


def diffusion_traits(files: DiffusionFiles) -> DiffusionTraits:
    config = read_config(files)
    return DiffusionTraits(int(config.max_k_step), str(config.infer_method), int(config.infer_speedup),
                           bool(config.full_chain))


def vocoder_available(files: DiffusionFiles | None, own_vocoder: Path | None) -> bool:
    """Whether a mel vocoder would be found for the voice (its own, the diffusion config's, or pretrain's)."""
    from ..diffusion.stage import find_vocoder

    try:
        ckpt = read_config(files).vocoder_ckpt if files is not None else None
        path = find_vocoder(files.config if files is not None else None, ckpt,
                            str(own_vocoder) if own_vocoder is not None else None)
    except SvcError:
        return False
    return Path(path).is_file()


# --------------------------------------------------------------------------- uploads
def is_diffusion_model(path: Path) -> bool:
    return bool(DIFFUSION_MODEL_PATTERN.match(path.name))


def is_diffusion_config(path: Path) -> bool:
    return path.suffix.lower() in YAML_SUFFIXES


def check_upload_pair(models: list[Path], configs: list[Path]) -> DiffusionFiles | None:
    """The uploaded diffusion model and its yaml (both or neither, at most one each; the yaml size-limited
    before anything reads it) -> DiffusionFiles, or None when none was uploaded."""
    if not models and not configs:
        return None
    if len(models) > 1 or len(configs) > 1:
        raise ModelError("Upload at most one diffusion model (model_*.pt) and its config.yaml.")
    if not configs:
        raise ModelError(f"The diffusion model {models[0].name} needs its config.yaml (upstream: "
                         "logs/44k/diffusion/config.yaml): upload both.")
    if not models:
        raise ModelError(f"'{configs[0].name}' is a diffusion config.yaml: upload its diffusion model "
                         "(logs/44k/diffusion/model_*.pt) with it.")
    check_file_size(configs[0], MAX_CONFIG_BYTES, "The diffusion config")
    return DiffusionFiles(models[0], configs[0])


def store_upload(files: DiffusionFiles, folder: Path) -> DiffusionFiles:
    """Copy an uploaded diffusion pair into the upload folder's `diffusion/` (the folder layout the scan reads)."""
    target = folder / DIFFUSION_DIR
    target.mkdir()
    stored = DiffusionFiles(target / files.model.name, target / DIFFUSION_CONFIG)  # model_<step>.pt (split_uploads)
    shutil.copyfile(files.model, stored.model)
    shutil.copyfile(files.config, stored.config)
    return stored


def check_uploaded_diffusion(files: DiffusionFiles, svc_config=None, model_name: str = "") -> int:
    """Load an uploaded diffusion model through the safe loader (its yaml checked against the weights) and,
    with a so-vits voice, check that it belongs to it -> the unit width it takes."""
    from ..diffusion.loader import load_diffusion
    from ..diffusion.stage import check_voice

    model = load_diffusion(files.model, files.config)
    config = model.config
    if svc_config is not None:  # no vocoder needed (the server may have none yet)
        check_voice(config, files.config, svc_config, model_name)
    return int(config.encoder_out_channels)


def diffusion_step(path: Path) -> int | None:
    match = DIFFUSION_MODEL_PATTERN.match(path.name)
    return int(match.group(1)) if match else None


def split_uploads(paths: Iterable[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    """(diffusion models, diffusion configs, the other files) of an upload."""
    models, configs, rest = [], [], []
    for path in paths:
        (models if is_diffusion_model(path) else configs if is_diffusion_config(path) else rest).append(path)
    return models, configs, rest
