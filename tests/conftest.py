"""Test-wide fixtures: where ../shared is, and a skip when it is absent (a user's clone)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import svc_core  # noqa: F401 - before any test imports torch: the tests run with the engine's thread policy

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("SVC_SHARED_DIR", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's ../shared folder (spec, compat fixtures, eval tools); skips the test when absent."""
    if not (SHARED_DIR / "compat").is_dir():
        pytest.skip(f"../shared not found at {SHARED_DIR}: compat/parity fixtures are only in the project workspace")
    return SHARED_DIR


@pytest.fixture(scope="session")
def parity_dir(shared_dir: Path) -> Path:
    return shared_dir / "compat" / "parity"


@pytest.fixture(scope="session")
def manifests_dir(shared_dir: Path) -> Path:
    return shared_dir / "compat" / "manifests"
