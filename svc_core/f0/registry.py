"""Name -> f0 predictor table, with a per-name check of whether it can run here."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from typing import Callable

from ..constants import HOP_LENGTH, MODEL_SAMPLE_RATE
from ..errors import OptionError, SvcError
from .base import F0Predictor
from .weights import describe_search, find_weights


@dataclass(frozen=True)
class PredictorEntry:
    """How to build one predictor and what it needs."""

    build: Callable[..., F0Predictor]  # (hop_length, sampling_rate, device, threshold, weights_path) -> predictor
    packages: tuple[tuple[str, str], ...]  # (import name, pip name) it needs
    weights_file: str | None = None  # a file the user must supply, searched in pretrain dirs
    description: str = ""
    default_threshold: float = 0.05  # voicing confidence threshold when none is given (upstream's cr_threshold)


def _no_weights(cls_path: str, **fixed) -> Callable[..., F0Predictor]:
    def build(weights_path=None, **kwargs) -> F0Predictor:
        module, _, name = cls_path.rpartition(".")
        cls = getattr(importlib.import_module(module, __package__), name)
        return cls(**fixed, **kwargs)

    return build


def _with_weights(cls_path: str) -> Callable[..., F0Predictor]:
    def build(weights_path=None, **kwargs) -> F0Predictor:
        module, _, name = cls_path.rpartition(".")
        cls = getattr(importlib.import_module(module, __package__), name)
        return cls(weights_path=weights_path, **kwargs)

    return build


FCPE_THRESHOLD = 0.4  # fcpe's default voicing threshold (upstream uses 0.05; see the fcpe entry)

_REGISTRY: dict[str, PredictorEntry] = {
    "pm": PredictorEntry(
        _no_weights(".classic.PMPredictor"), (("parselmouth", "praat-parselmouth"),),
        description="Praat autocorrelation; fast, upstream's inference default",
    ),
    "dio": PredictorEntry(
        _no_weights(".classic.DioPredictor"), (("pyworld", "pyworld"),), description="WORLD DIO + StoneMask"
    ),
    "harvest": PredictorEntry(
        _no_weights(".classic.HarvestPredictor"), (("pyworld", "pyworld"),),
        description="WORLD Harvest + StoneMask; robust, slow",
    ),
    "crepe": PredictorEntry(
        _no_weights(".crepe.CrepePredictor", model="full"), (("torchcrepe", "torchcrepe"),),
        description="CREPE full (torchcrepe bundled weights); accurate, slow on CPU",
    ),
    "crepe-tiny": PredictorEntry(
        _no_weights(".crepe.CrepePredictor", model="tiny"), (("torchcrepe", "torchcrepe"),),
        description="CREPE tiny (torchcrepe bundled weights)",
    ),
    "fcpe": PredictorEntry(
        _with_weights(".fcpe.FCPEPredictor"), (("torchfcpe", "torchfcpe"),),
        description="FCPE (torchfcpe bundled weights); fast and accurate",
        # measured on ../shared/eval's sung sources (docs/starter-voices.md): frames voiced/unvoiced wrongly
        # 3.5 % at 0.05 -> 2.9 % at 0.4, mostly voicing that ran past the ends of notes
        default_threshold=FCPE_THRESHOLD,
    ),
    "rmvpe": PredictorEntry(
        _with_weights(".rmvpe.RMVPEPredictor"), (("librosa", "librosa"),), weights_file="rmvpe.pt",
        description="RMVPE; upstream's preprocessing default, needs rmvpe.pt",
    ),
}


def list_predictors() -> list[str]:
    """All predictor names, in upstream's order plus our extras."""
    return list(_REGISTRY)


def predictors_without_files() -> list[str]:
    """Names that need no user-supplied weights file."""
    return [name for name, entry in _REGISTRY.items() if entry.weights_file is None]


def _entry(name: str) -> PredictorEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise OptionError(f"Unknown f0 predictor '{name}'. Choose one of: {', '.join(_REGISTRY)}.") from None


def _why_not(name: str, weights_path: str | os.PathLike | None = None) -> str | None:
    entry = _entry(name)
    for module, pip_name in entry.packages:
        if importlib.util.find_spec(module) is None:
            return f"needs the Python package '{pip_name}' (pip install {pip_name})."
    if entry.weights_file and find_weights(entry.weights_file, weights_path) is None:
        from .rmvpe import GET_RMVPE

        searched = describe_search(entry.weights_file, weights_path)
        return f"needs {entry.weights_file} (not found in {searched}). {GET_RMVPE}"
    return None


def predictor_status(weights_path: str | os.PathLike | None = None) -> dict[str, str | None]:
    """{name: None if usable here, else a sentence saying what is missing}. Does not load any model."""
    return {name: _why_not(name, weights_path if _REGISTRY[name].weights_file else None) for name in _REGISTRY}


def resolve_predictor(name: str | None, weights_path: str | os.PathLike | None = None) -> str:
    """A predictor name the user may give -> the one to run here.

    "auto" (or empty) means rmvpe when its weights are found, else fcpe (bundled weights). Any other name must be
    known (OptionError listing the choices) and usable here (OptionError saying what is missing).
    """
    name = (name or "auto").strip()
    status = predictor_status(weights_path)
    if name == "auto":
        return "rmvpe" if status.get("rmvpe") is None else "fcpe"
    if name not in status:
        raise OptionError(f"Unknown f0 predictor '{name}'. Choose one of: auto, {', '.join(status)}.")
    if status[name] is not None:
        raise OptionError(f"The '{name}' f0 predictor cannot run here: it {status[name]}")
    return name


def get_predictor(
    name: str,
    *,
    hop_length: int = HOP_LENGTH,
    sampling_rate: int = MODEL_SAMPLE_RATE,
    device: str = "cpu",
    threshold: float | None = None,
    weights_path: str | os.PathLike | None = None,
) -> F0Predictor:
    """Build the predictor called `name` (see list_predictors); threshold None = `default_threshold(name)`.
    Raises OptionError for unknown names and MissingWeightsError when a needed file is absent."""
    entry = _entry(name)
    for module, pip_name in entry.packages:
        if importlib.util.find_spec(module) is None:
            raise SvcError(f"The '{name}' f0 predictor needs the Python package '{pip_name}' (pip install {pip_name}).")
    return entry.build(
        weights_path=weights_path,
        hop_length=hop_length,
        sampling_rate=sampling_rate,
        device=device,
        threshold=entry.default_threshold if threshold is None else float(threshold),
    )


def default_threshold(name: str) -> float:
    """The voicing threshold `name` uses when none is given (crepe/rmvpe 0.05 as upstream, fcpe 0.4)."""
    return _entry(name).default_threshold


def describe_predictor(name: str) -> str:
    """One-line description of a predictor for menus and --help."""
    return _entry(name).description
