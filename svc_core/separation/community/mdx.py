"""UVR MDX-Net ONNX models (UVR-MDX-NET-Inst_HQ_3, Kim_Vocal_2, Voc_FT, ...): our own runner.

An MDX-Net .onnx maps a stereo spectrogram to the spectrogram of one stem (its "primary stem": vocals or
instrumental). Layout of its input and output, float32 [B, 4, dim_f, dim_t]: channels (left re, left im, right re,
right im), the first dim_f bins of an n_fft STFT (hop 1024, periodic Hann, centred), dim_t frames. The file does
not say which n_fft it was trained with nor the gain UVR applies after it ("compensate"): those come from
mdx_table.KNOWN_MDX_MODELS by UVR's file hash, or from a .yaml beside the file, which wins (keys as in UVR's
model data: mdx_n_fft_scale_set, mdx_dim_f_set, mdx_dim_t_set (log2 of frames), compensate, primary_stem).

The song is cut into windows of hop * (dim_t - 1) samples; each window's outer n_fft / 2 samples on both sides are
dropped (the STFT's edges). The kept parts overlap by `overlap` (default 0.25, audio-separator's) and are blended
with a Hann-shaped weight. The other stem is the mix minus the primary.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

from ...errors import ModelError, OptionError
from ..base import ACCOMPANIMENT, VOCALS, Separator
from .common import read_yaml, require_model_file, yaml_beside
from .mdx_table import KNOWN_MDX_MODELS

MDX_HOP = 1024  # samples; every published MDX-Net model uses it
MDX_CHANNELS = 4  # left re, left im, right re, right im
HASH_TAIL_BYTES = 10000 * 1024  # UVR hashes the file's last 10,000 KiB (the whole file when shorter)
DEFAULT_OVERLAP = 0.25  # fraction of a window's kept part shared with the next (audio-separator's mdx_overlap)
VOCAL_STEMS = ("vocals",)  # primary stems taken as the vocals; any other primary is the accompaniment side
# (instrumental, reverb: a dereverb model's dry output is then the "vocals", as the cover's dereverb pass expects)
INSTRUMENT_STEMS = ("drums", "bass", "other")  # models of one instrument (kuielab_a_drums, ...): refused


@dataclass(frozen=True)
class MdxParams:
    """How an MDX-Net model was trained: n_fft (samples), dim_f (bins fed to it), dim_t (frames per window),
    compensate (gain on the primary stem), primary_stem (the stem it outputs), name (where known)."""

    n_fft: int
    dim_f: int
    dim_t: int
    compensate: float
    primary_stem: str
    name: str = ""

    @property
    def window(self) -> int:
        """Samples in one model window."""
        return MDX_HOP * (self.dim_t - 1)

    @property
    def trim(self) -> int:
        """Samples dropped at each edge of a window's output."""
        return self.n_fft // 2


def model_hash(path: str | os.PathLike) -> str:
    """UVR's hash of a model file: MD5 of its last 10,000 KiB (of the whole file when it is shorter)."""
    with open(path, "rb") as fh:
        size = fh.seek(0, os.SEEK_END)
        fh.seek(max(0, size - HASH_TAIL_BYTES))
        return hashlib.md5(fh.read()).hexdigest()


def _params_from_yaml(doc: Any, source: str) -> MdxParams:
    if not isinstance(doc, Mapping):
        raise ModelError(f"'{source}' must be a mapping of MDX-Net settings (n_fft, dim_f, dim_t, compensate, "
                         "primary_stem).")

    def number(keys: tuple[str, ...], kind: type, default: Any = None) -> Any:
        for key in keys:
            if key in doc:
                try:
                    value = kind(doc[key])
                except (TypeError, ValueError):
                    raise ModelError(f"'{source}': {key} must be a number, not {doc[key]!r}.") from None
                if value <= 0:
                    raise ModelError(f"'{source}': {key} must be positive, not {doc[key]!r}.")
                return value
        if default is None:
            raise ModelError(f"'{source}' lacks {keys[0]} (or {keys[1]}); copy the model's entry from UVR's "
                             "model data or see docs/covers.md.")
        return default

    n_fft = number(("mdx_n_fft_scale_set", "n_fft"), int)
    dim_f = number(("mdx_dim_f_set", "dim_f"), int)
    if "mdx_dim_t_set" in doc:
        dim_t = 2 ** number(("mdx_dim_t_set", "mdx_dim_t_set"), int)
    else:
        dim_t = number(("dim_t", "dim_t"), int)
    compensate = number(("compensate", "compensate"), float, 1.0)
    stem = str(doc.get("primary_stem", "Vocals"))
    return MdxParams(n_fft, dim_f, dim_t, compensate, stem, str(doc.get("name", "")))


def read_params(path: str | os.PathLike, config_path: Optional[str | os.PathLike] = None) -> MdxParams:
    """The model's settings: `config_path`, else a .yaml beside the file, else the known-model table by hash."""
    config = Path(config_path) if config_path else yaml_beside(path)
    if config is not None:
        return _params_from_yaml(read_yaml(config, "MDX-Net settings file"), config.name)
    digest = model_hash(path)
    row = KNOWN_MDX_MODELS.get(digest)
    if row is None:
        raise ModelError(
            f"'{os.path.basename(path)}' is not an MDX-Net model we know (UVR hash {digest}), so its FFT size and "
            f"gain are unknown. Put '{Path(path).name}.yaml' beside it with n_fft, dim_f, dim_t, compensate and "
            "primary_stem (UVR's model data for it), see docs/covers.md.")
    n_fft, dim_f, dim_t_log2, compensate, stem, _karaoke, name = row
    return MdxParams(n_fft, dim_f, 2 ** dim_t_log2, compensate, stem, name)


def _check_shape(shape: list, params: MdxParams, name: str) -> None:
    """The model's input shape [B, 4, dim_f, dim_t] (symbolic axes allowed) against the settings."""
    if len(shape) != 4 or shape[1] != MDX_CHANNELS:
        raise ModelError(f"'{name}' is not an MDX-Net model: its input has shape {shape}, an MDX-Net takes "
                         f"[batch, {MDX_CHANNELS}, bins, frames].")
    for axis, want, label in ((2, params.dim_f, "dim_f"), (3, params.dim_t, "dim_t")):
        if isinstance(shape[axis], int) and shape[axis] != want:
            raise ModelError(f"'{name}' takes {shape[axis]} {'bins' if axis == 2 else 'frames'} but its settings "
                             f"say {label} {want}: the settings (.yaml beside it) belong to another model.")
    if params.n_fft // 2 + 1 < params.dim_f or params.window <= 2 * params.trim:
        raise ModelError(f"'{name}': n_fft {params.n_fft} does not fit dim_f {params.dim_f} / dim_t "
                         f"{params.dim_t}; check its settings.")


class MdxSeparator(Separator):
    """UVR MDX-Net .onnx through ONNX Runtime. Options: config_path (.yaml of settings), threads, denoise (run the
    model on the mix and its negation and average: UVR's "denoise", twice the time), overlap (0 <= f < 1: share of
    neighbouring windows; more is slower and smoother)."""

    name = "mdx"
    chunk_seconds = 30.0
    overlap_seconds = 1.0

    def __init__(self, model_path: str | os.PathLike, config_path: Optional[str | os.PathLike] = None,
                 threads: Optional[int] = None, denoise: bool = False, overlap: float = DEFAULT_OVERLAP) -> None:
        from ...onnx.runtime import make_session

        if not 0 <= overlap < 1:
            raise OptionError(f"MDX overlap must be in [0, 1); got {overlap}.")
        self.overlap = float(overlap)
        path = require_model_file(model_path, "MDX-Net model")
        self.params = read_params(path, config_path)
        self.session, self.session_info = make_session(path, device="cpu", threads=threads)
        first = self.session.get_inputs()[0]
        _check_shape(list(first.shape), self.params, os.path.basename(path))
        self.input_name = first.name
        if self.params.primary_stem.strip().lower() in INSTRUMENT_STEMS:
            raise ModelError(f"'{os.path.basename(path)}' separates {self.params.primary_stem.lower()}, not vocals; "
                             "pick a vocal or instrumental MDX-Net model (e.g. Kim_Vocal_2, Inst_HQ_3).")
        self.denoise = bool(denoise)
        self.model_path = path
        self.window = np.hanning(self.params.n_fft + 1)[:-1].astype(np.float32)  # periodic Hann

    @property
    def label(self) -> str:
        return f"MDX-Net {self.params.name or Path(self.model_path).stem}"

    @property
    def primary_is_vocals(self) -> bool:
        return self.params.primary_stem.strip().lower() in VOCAL_STEMS

    # -- spectrograms, [2, window] <-> [1, 4, dim_f, dim_t]
    def _stft(self, audio: np.ndarray) -> np.ndarray:
        import torch

        window = torch.from_numpy(self.window)
        spec = torch.stft(torch.from_numpy(audio), self.params.n_fft, MDX_HOP, window=window, center=True,
                          return_complex=True)  # [2, bins, frames]
        spec = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(1, MDX_CHANNELS, -1, spec.shape[-1])
        return np.ascontiguousarray(spec[:, :, :self.params.dim_f].numpy())

    def _istft(self, spec: np.ndarray, length: int) -> np.ndarray:
        import torch

        bins = self.params.n_fft // 2 + 1
        full = np.zeros((MDX_CHANNELS, bins, spec.shape[-1]), np.float32)
        full[:, :self.params.dim_f] = spec[0]
        pairs = torch.from_numpy(full).reshape(2, 2, bins, -1).permute(0, 2, 3, 1).contiguous()
        wave = torch.istft(torch.view_as_complex(pairs), self.params.n_fft, MDX_HOP,
                           window=torch.from_numpy(self.window), center=True, length=length)
        return wave.numpy()

    def _run(self, spec: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: spec})[0]
        if self.denoise:
            out = 0.5 * out - 0.5 * self.session.run(None, {self.input_name: -spec})[0]
        if out.shape != spec.shape:
            raise ModelError(f"'{os.path.basename(self.model_path)}' returned shape {list(out.shape)} for input "
                             f"{list(spec.shape)}; an MDX-Net returns a spectrogram of its input's shape.")
        return out

    def primary(self, audio: np.ndarray) -> np.ndarray:
        """audio float32 [2, T] -> the model's primary stem float32 [2, T] (compensated)."""
        p = self.params
        n = audio.shape[1]
        kept = p.window - 2 * p.trim  # samples of a window's output that are used
        step = max(1, int(kept * (1 - self.overlap)))
        starts = list(range(0, max(n - kept, 0) + 1, step))
        if starts[-1] + kept < n:
            starts.append(n - kept)
        padded = np.zeros((2, p.trim + max(n, kept) + p.trim), np.float32)
        padded[:, p.trim:p.trim + n] = audio
        weight = np.hanning(kept + 2)[1:-1].astype(np.float32)  # > 0 everywhere: every sample gets some weight
        out = np.zeros((2, max(n, kept)), np.float32)
        total = np.zeros(max(n, kept), np.float32)
        for start in starts:
            wave = self._istft(self._run(self._stft(padded[:, start:start + p.window])), p.window)
            out[:, start:start + kept] += wave[:, p.trim:p.trim + kept] * weight
            total[start:start + kept] += weight
        return out[:, :n] / total[:n] * np.float32(p.compensate)

    def separate_chunk(self, audio: np.ndarray) -> dict[str, np.ndarray]:
        """audio float32 [2, T] at 44.1 kHz -> {"vocals", "accompaniment"} float32 [2, T]."""
        stem = self.primary(audio)
        rest = audio - stem
        vocals, accompaniment = (stem, rest) if self.primary_is_vocals else (rest, stem)
        return {VOCALS: vocals.astype(np.float32), ACCOMPANIMENT: accompaniment.astype(np.float32)}
