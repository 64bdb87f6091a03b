"""Helpers the community loaders share: model file checks, yaml configs beside a model, torch threads."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import yaml

from ...config import read_config_text
from ...errors import ModelError
from ...paths import require_file

YAML_SUFFIXES = (".yaml", ".yml")


class _TupleSafeLoader(yaml.SafeLoader):
    """yaml.SafeLoader that also reads `!!python/tuple` (MSST / UVR RoFormer configs write band tuples so) as a
    tuple. No other python tag is accepted."""


def _tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple:
    return tuple(loader.construct_sequence(node, deep=True))


_TupleSafeLoader.add_constructor("tag:yaml.org,2002:python/tuple", _tuple)


def require_model_file(path: str | os.PathLike, what: str) -> str:
    """The path as str; ModelError when it is missing, a folder or empty."""
    path = os.fspath(path)
    require_file(path, what, ModelError, empty_hint="; the download probably failed")
    return path


def read_yaml(path: str | os.PathLike, what: str) -> Any:
    """A small yaml file (size-limited, safe loader plus tuples); ModelError naming the file on any problem."""
    name = os.path.basename(os.fspath(path))
    text = read_config_text(path, what, "put the model's .yaml beside it", f"the model's {what}")
    try:
        return yaml.load(text, Loader=_TupleSafeLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ModelError(f"{what} '{name}' is not readable yaml: {str(err).splitlines()[0]}") from None
    except RecursionError:
        raise ModelError(f"{what} '{name}' nests too deeply to be a model config.") from None


def yaml_beside(path: str | os.PathLike) -> Optional[Path]:
    """The config beside a model file: same name with .yaml/.yml appended or replacing its suffix; else None."""
    path = Path(path)
    for suffix in YAML_SUFFIXES:
        for candidate in (path.with_name(path.name + suffix), path.with_suffix(suffix)):
            if candidate != path and candidate.is_file():
                return candidate
    return None
