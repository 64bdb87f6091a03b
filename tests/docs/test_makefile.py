"""`make demo` / `make test` on an installed checkout do not reinstall: pip runs only when requirements*.txt are
newer than the install stamp (or there is none). Checked with `make -n` (prints the commands, runs none)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from svc_core.ui.settings import REPO_ROOT

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _planned(target: str, stamp) -> str:
    out = subprocess.run(["make", "-n", target, f"INSTALLED={stamp}", "PY=" + str(REPO_ROOT / "Makefile")],
                         cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return out.stdout  # PY points at an existing file so the venv rule is satisfied whatever this checkout has


@pytest.mark.parametrize("target", ["demo", "test"])
def test_installed_checkout_does_not_reinstall(tmp_path, target):
    stamp = tmp_path / "installed"
    stamp.touch()
    newest = max((REPO_ROOT / name).stat().st_mtime for name in ("requirements.txt", "requirements-dev.txt"))
    os.utime(stamp, (newest + 10, newest + 10))
    planned = _planned(target, stamp)
    assert "pip install" not in planned, planned
    assert ("app.py" if target == "demo" else "pytest") in planned, planned


@pytest.mark.parametrize("missing", [True, False])
def test_changed_requirements_or_no_stamp_install(tmp_path, missing):
    stamp = tmp_path / "installed"
    if not missing:
        stamp.touch()
        oldest = min((REPO_ROOT / name).stat().st_mtime for name in ("requirements.txt", "requirements-dev.txt"))
        os.utime(stamp, (oldest - 10, oldest - 10))  # a requirements file changed after the install
    planned = _planned("demo", stamp)
    assert "pip install" in planned and "-r requirements.txt" in planned and "-r requirements-dev.txt" in planned
    assert f"touch {stamp}" in planned, planned
