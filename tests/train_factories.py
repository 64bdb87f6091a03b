"""Builders for the training tests: a tiny preprocessed dataset (the layout svc_core.preprocess writes, see
svc_core.train.dataset) and fast TrainSettings."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from factories import make_config_dict
from svc_core.train.mel import linear_spectrogram
from svc_core.train.settings import TrainSettings

SR, HOP = 44100, 512
TEST_SEGMENT_FRAMES = 8  # 4096 samples decoded per example (upstream: 20)
TEST_D_DIVISOR = 16  # discriminator channels / 16 (same keys as upstream, tiny tensors)


def _clip(seconds: float, base_hz: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(audio float32, f0 per frame, uv per frame): a vibrato tone with a short unvoiced breath."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR) // HOP * HOP
    t = np.arange(n) / SR
    f0 = base_hz * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5.0 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wav = sum(np.sin(k * phase) / k for k in range(1, 6)) * 0.2
    frames = n // HOP
    uv = np.ones(frames, dtype=np.float32)
    gap = slice(frames // 2, frames // 2 + 6)
    uv[gap] = 0
    wav[gap.start * HOP: gap.stop * HOP] = 0.02 * rng.standard_normal((gap.stop - gap.start) * HOP)
    f0_frames = f0[::HOP][:frames].astype(np.float32)  # interpolated f0: stays continuous through the breath
    return wav.astype(np.float32), f0_frames, uv


def build_dataset(root: Path, n_speakers: int = 2, clips_per_speaker: int = 3, seconds=(1.0, 1.4),
                  speech_encoder: str = "hubertsoft", seed: int = 0, **model) -> Path:
    """Write config.json, filelists and per-clip .wav/.soft.pt/.f0.npy/.spec.pt(/.vol.npy) files under root."""
    root.mkdir(parents=True, exist_ok=True)
    doc = make_config_dict(speech_encoder=speech_encoder, n_speakers=n_speakers, **model)
    doc["train"].update(segment_size=TEST_SEGMENT_FRAMES * HOP, batch_size=2, log_interval=1, keep_ckpts=3)
    (root / "config.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    dim = doc["model"]["ssl_dim"]
    gen = torch.Generator().manual_seed(seed)
    train, val = [], []
    for s in range(n_speakers):
        spk_dir = root / f"spk{s}"
        spk_dir.mkdir(exist_ok=True)
        for k in range(clips_per_speaker):
            sec = seconds[0] + (seconds[1] - seconds[0]) * k / max(1, clips_per_speaker - 1)
            wav, f0, uv = _clip(sec, 180.0 + 60 * s + 10 * k, seed + 10 * s + k)
            path = spk_dir / f"clip{k}.wav"
            sf.write(str(path), wav, SR, subtype="PCM_16")
            audio = torch.from_numpy(sf.read(str(path), dtype="float32")[0])
            torch.save(linear_spectrogram(audio), spk_dir / f"clip{k}.spec.pt")
            np.save(f"{path}.f0.npy", np.stack([f0, uv]).astype(np.float32))
            n_units = int(len(wav) / SR * 50)
            torch.save(torch.randn(1, dim, n_units, generator=gen), f"{path}.soft.pt")
            if doc["model"].get("vol_embedding"):
                np.save(f"{path}.vol.npy", np.full(len(f0), 0.1, dtype=np.float32))
            (val if k == 0 else train).append(path)
    (root / "filelists").mkdir(exist_ok=True)
    (root / "filelists" / "train.txt").write_text("".join(f"{p}\n" for p in train), encoding="utf-8")
    (root / "filelists" / "val.txt").write_text("".join(f"{p.relative_to(root)}\n" for p in val), encoding="utf-8")
    return root


def tiny_settings(**overrides) -> TrainSettings:
    values = dict(steps=4, batch_size=2, eval_interval=2, log_interval=1, keep_best=3, seed=1234,
                  segment_frames=TEST_SEGMENT_FRAMES, d_width_divisor=TEST_D_DIVISOR, max_eval_clips=1,
                  max_eval_frames=64, num_workers=0)
    values.update(overrides)
    return TrainSettings(**values)
