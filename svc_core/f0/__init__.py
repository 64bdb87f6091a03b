"""F0 (pitch) predictors behind one registry, with so-vits-svc 4.1's post-processing.

    predictor = get_predictor("rmvpe", hop_length=512, sampling_rate=44100)
    f0, uv = predictor.compute_f0_uv(wav)          # [N // 512] each, f0 interpolated through unvoiced frames
    f0 = transpose(f0, semitones=3)
"""
from .base import F0Predictor, interpolate_unvoiced, resize_nearest, resize_with_gaps, transpose
from .registry import (default_threshold, describe_predictor, get_predictor, list_predictors, predictor_status,
                       predictors_without_files, resolve_predictor)

__all__ = [
    "F0Predictor",
    "default_threshold",
    "describe_predictor",
    "get_predictor",
    "interpolate_unvoiced",
    "list_predictors",
    "predictor_status",
    "predictors_without_files",
    "resize_nearest",
    "resolve_predictor",
    "resize_with_gaps",
    "transpose",
]
