"""Shared small checkpoints for the loading tests (built once per session)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from factories import make_upstream_checkpoint


@pytest.fixture(scope="session")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(G_0.pth, config.json): small vec768l12 model, 2 speakers, seed 7 (treat as read-only)."""
    return make_upstream_checkpoint(tmp_path_factory.mktemp("base"), seed=7)


@pytest.fixture(scope="session")
def base_model_256(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(G_0.pth, config.json): small hubertsoft (256-dim) model with vol_embedding (treat as read-only)."""
    return make_upstream_checkpoint(tmp_path_factory.mktemp("base256"), speech_encoder="hubertsoft",
                                    vol_embedding=True, seed=8)


@pytest.fixture()
def base_copy(base_model: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of base_model whose config.json a test may edit."""
    g, c = base_model
    return Path(shutil.copy(g, tmp_path / g.name)), Path(shutil.copy(c, tmp_path / c.name))
