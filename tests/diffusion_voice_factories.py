"""Voice folders with a so-vits-svc 4.1 diffusion model in upstream's layout, for the web tests (random weights,
fixed seeds, small sizes): the test voice's so-vits model plus `diffusion/model_<step>.pt` + `config.yaml`, its own
`nsf_hifigan/model` + config.json, or a diffusion model alone."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

SPEAKERS = {"alto": 0, "tenor": 1, "bass": 2}  # the test voice's (tests/web/conftest.py)
ENCODER = "vec256l9"  # the test voice's content encoder (its ContentVec-layout checkpoint is in $SVC_PRETRAIN_DIR)
DIFFUSION_STEP = 1200


def add_diffusion(folder: Path, seed: int = 5, vocoder: bool = True, step: int = DIFFUSION_STEP,
                  **model_overrides: Any) -> tuple[Path, Path]:
    """Put a small diffusion model (upstream's train_diff files) into folder/diffusion/ and, with `vocoder`, the
    voice's own small NSF-HiFiGAN into folder/nsf_hifigan/; returns (model, config.yaml)."""
    from diffusion_factories import make_diffusion_model
    from vocoder_factories import make_vocoder

    paths = make_diffusion_model(folder / "diffusion", encoder=ENCODER, n_spk=len(SPEAKERS), seed=seed, step=step,
                                 speakers=SPEAKERS, **model_overrides)
    if vocoder:
        make_vocoder(folder / "nsf_hifigan", seed=seed)
    return paths


def diffusion_voice(models_dir: Path, demo_folder: Path, name: str = "diff-voice", **kwargs: Any) -> Path:
    """The test voice's G_0.pth + config.json with a diffusion model (and vocoder) beside them."""
    folder = models_dir / name
    folder.mkdir(parents=True)
    for file in ("G_0.pth", "config.json"):
        shutil.copyfile(demo_folder / file, folder / file)
    add_diffusion(folder, **kwargs)
    return folder


def diffusion_only_voice(models_dir: Path, name: str = "diff-only", **kwargs: Any) -> Path:
    """A voice folder holding a diffusion model alone (and its vocoder)."""
    folder = models_dir / name
    add_diffusion(folder, **kwargs)
    return folder
