"""Fixtures for the content-encoder tests: the small ContentVec-layout checkpoint and fairseq's features."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SMALL_DEV = Path("contentvec") / "hubert_small_dev"


@pytest.fixture(scope="session")
def small_dev_dir(parity_dir: Path) -> Path:
    return parity_dir / SMALL_DEV


@pytest.fixture(scope="session")
def small_checkpoint(small_dev_dir: Path) -> str:
    return str(small_dev_dir / "checkpoint.pt")


@pytest.fixture(scope="session")
def fairseq_features(small_dev_dir: Path) -> dict[str, np.ndarray]:
    with np.load(small_dev_dir / "features.npz") as data:
        return {key: data[key] for key in data.files}
