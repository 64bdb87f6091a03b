"""Dataset preparation for training (`python -m svc_core preprocess`).

    from svc_core.preprocess import PreprocessSettings, prepare_dataset
    result = prepare_dataset(PreprocessSettings("raw_data", "dataset", encoder="vec768l12", f0="rmvpe"))
    print(result.text)          # the dataset report; result.report is the same as report.json

Output folder: <speaker>/<clip>.wav (44.1 kHz mono 16-bit, 2-15 s) with X.wav.soft.pt, X.wav.f0.npy, X.spec.pt,
X.wav.vol.npy next to each clip; filelists/train.txt + val.txt; config.json; manifest.json; report.json/.txt.
With use_diff (--use-diff) also X.wav.mel.npy, X.wav.aug_mel.npy, X.wav.aug_key.npy, X.wav.aug_vol.npy
(svc_core.preprocess.diffcache) and diffusion.yaml for `train-diff`.
"""
from .cache import cache_paths, spectrogram
from .discover import discover, slugify
from .loudness import integrated_loudness, normalise
from .progress import EtaPrinter
from .runner import PrepareResult, prepare_dataset
from .segments import plan_pieces
from .settings import PreprocessSettings

__all__ = [
    "EtaPrinter",
    "PrepareResult",
    "PreprocessSettings",
    "cache_paths",
    "discover",
    "integrated_loudness",
    "normalise",
    "plan_pieces",
    "prepare_dataset",
    "slugify",
    "spectrogram",
]
