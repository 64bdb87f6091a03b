"""Training files of a WORLD voice, cached next to each clip of a preprocessed dataset (svc_core.preprocess):

    X.wav.world.npy     float16 [T, SP_DIMS + n_ap]   coded envelope + aperiodicity of the clip (the target)
    X.wav.pert.pt       float32 [K, C, T_c]           content features of K WORLD-perturbed copies of the clip

With another content encoder than the dataset's (config speech_encoder), the features go to X.wav.<name>.pt
([1, C, T_c], the clip itself; preprocess wrote X.wav.soft.pt only for its own encoder) and X.wav.<name>.pert.pt.

T = N // 512 frames (the clip's X.wav.f0.npy grid). The perturbed copies have formants scaled by a factor drawn
log-uniformly in FORMANT_RANGE and pitch moved by up to PITCH_RANGE semitones, seeded per clip name, so rebuilding
gives the same files. Files that exist and are newer than the clip are kept.
"""
from __future__ import annotations

import hashlib
import math
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import soundfile as sf
import torch

from ..constants import MODEL_SAMPLE_RATE
from ..errors import AudioError
from . import features

FORMANT_RANGE = (0.82, 1.22)  # formant scale factors of the perturbed copies
PITCH_RANGE = 5.0  # semitones, either way
N_PERTURBED = 2  # perturbed copies per clip


def world_path(clip: Path) -> Path:
    return Path(f"{clip}.world.npy")


def perturbed_path(clip: Path, encoder: Optional[str] = None) -> Path:
    """Perturbed-copy features; encoder None = the dataset's own encoder."""
    return Path(f"{clip}.pert.pt" if encoder is None else f"{clip}.{encoder}.pert.pt")


def units_path(clip: Path, encoder: Optional[str] = None) -> Path:
    """The clip's own content features; encoder None = the dataset's (preprocess's X.wav.soft.pt)."""
    return Path(f"{clip}.soft.pt" if encoder is None else f"{clip}.{encoder}.pt")


def _fresh(path: Path, clip: Path) -> bool:
    return path.is_file() and path.stat().st_mtime >= clip.stat().st_mtime


def _rng(clip: Path) -> np.random.Generator:
    seed = int.from_bytes(hashlib.blake2b(clip.name.encode("utf-8"), digest_size=8).digest(), "little")
    return np.random.default_rng(seed)


def _save(path: Path, write: Callable[[str], None]) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    write(tmp)
    os.replace(tmp, path)


def prepare_clip(clip: Path, encode: Callable[[np.ndarray], torch.Tensor], n_perturbed: int = N_PERTURBED,
                 encoder: Optional[str] = None) -> bool:
    """Write the WORLD target and the content features of one clip (its own ones only for a foreign `encoder`,
    and its perturbed copies); False when all were fresh."""
    wpath, ppath, upath = world_path(clip), perturbed_path(clip, encoder), units_path(clip, encoder)
    need_units = encoder is not None and not _fresh(upath, clip)
    targets_fresh = _fresh(wpath, clip) and (n_perturbed == 0 or _fresh(ppath, clip))
    if targets_fresh and not need_units:
        return False
    wav, sr = sf.read(str(clip), dtype="float32")
    if sr != MODEL_SAMPLE_RATE or wav.ndim != 1:
        raise AudioError(f"{clip}: expected mono {MODEL_SAMPLE_RATE} Hz (run preprocess first), got {sr} Hz.")
    if need_units:
        own = encode(wav)[0].float().contiguous()[None]
        _save(upath, lambda p: torch.save(own, p))
    if targets_fresh:
        return True
    f0_uv = np.load(f"{clip}.f0.npy", allow_pickle=False)
    frames = features.analyse(wav, f0_uv[0], f0_uv[1])
    if not _fresh(wpath, clip):
        _save(wpath, lambda p: np.save(open(p, "wb"), frames.coded.astype(np.float16)))
    if n_perturbed and not _fresh(ppath, clip):
        rng = _rng(clip)
        feats = []
        for _ in range(n_perturbed):
            formant = math.exp(rng.uniform(math.log(FORMANT_RANGE[0]), math.log(FORMANT_RANGE[1])))
            semis = float(rng.uniform(-PITCH_RANGE, PITCH_RANGE))
            feats.append(encode(features.perturb(wav, frames, formant, semis))[0])
        n = min(f.shape[-1] for f in feats)
        stacked = torch.stack([f[..., :n] for f in feats]).float().contiguous()
        _save(ppath, lambda p: torch.save(stacked, p))
    return True


_WORKER: dict = {}


def _worker_init(encoder: str, encoder_path: Optional[str]) -> None:
    torch.set_num_threads(1)
    from ..preprocess.cache import FeatureTools

    _WORKER["tools"] = FeatureTools(encoder=encoder, encoder_path=encoder_path, f0="fcpe", f0_weights=None)


def _worker_run(clip: str, n_perturbed: int, tag: Optional[str]) -> tuple[str, bool]:
    tools = _WORKER["tools"]
    return clip, prepare_clip(Path(clip), lambda w: tools.encode(torch.from_numpy(w)), n_perturbed, tag)


def prepare_clips(clips: Iterable[Path], encoder: str, encoder_path: Optional[str], jobs: int = 1,
                  n_perturbed: int = N_PERTURBED, progress: Optional[Callable[[int, int], None]] = None,
                  foreign: bool = False) -> int:
    """prepare_clip over many clips with `jobs` processes; returns how many were (re)computed.
    foreign=True: `encoder` is not the dataset's, so its files are named after it (see units_path)."""
    clips = [str(c) for c in clips]
    tag = encoder if foreign else None
    done = computed = 0
    with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_worker_init,
                             initargs=(encoder, encoder_path)) as pool:
        for _, did in pool.map(_worker_run, clips, [n_perturbed] * len(clips), [tag] * len(clips), chunksize=4):
            done += 1
            computed += int(did)
            if progress:
                progress(done, len(clips))
    return computed
