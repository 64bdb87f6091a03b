"""Where f0 predictors look for weight files: an explicit path, $SVC_PRETRAIN_DIR, then ./pretrain."""
from __future__ import annotations

import os
from pathlib import Path

PRETRAIN_ENV = "SVC_PRETRAIN_DIR"
PRETRAIN_DIR = "pretrain"  # relative to the working directory, as upstream


def candidate_paths(filename: str, weights_path: str | os.PathLike | None = None) -> list[Path]:
    """The places searched for `filename`, in order (just `weights_path` when one is given)."""
    if weights_path is not None:
        return [Path(weights_path)]
    found = []
    env_dir = os.environ.get(PRETRAIN_ENV)
    if env_dir:
        found.append(Path(env_dir) / filename)
    found.append(Path(PRETRAIN_DIR) / filename)
    return found


def find_weights(filename: str, weights_path: str | os.PathLike | None = None) -> Path | None:
    """First existing file among `candidate_paths`, or None."""
    for path in candidate_paths(filename, weights_path):
        if path.is_file():
            return path
    return None


def describe_search(filename: str, weights_path: str | os.PathLike | None = None) -> str:
    """Human list of where we looked, e.g. "./pretrain or $SVC_PRETRAIN_DIR (/x)"."""
    if weights_path is not None:
        return f"'{os.fspath(weights_path)}'"
    env_dir = os.environ.get(PRETRAIN_ENV)
    env_part = f"${PRETRAIN_ENV} ({env_dir})" if env_dir else f"${PRETRAIN_ENV} (not set)"
    return f"./{PRETRAIN_DIR}/{filename} or {env_part}"
