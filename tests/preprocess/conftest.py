"""Fixtures of the preprocessing tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from encoder_factories import make_contentvec_checkpoint


@pytest.fixture(scope="session")
def encoder_file(tmp_path_factory) -> Path:
    return make_contentvec_checkpoint(tmp_path_factory.mktemp("pretrain") / "checkpoint_best_legacy_500.pt",
                                      final_dim=256, layers=9, seed=3)
