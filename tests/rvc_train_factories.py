"""Builders for the RVC training tests: a folder of generated "sung" recordings, a tiny ContentVec-layout encoder,
and fast RvcTrainSettings (v1 with the tiny encoder's 256-dim vec256l9 output; v2 runs take 768-dim features
written directly, since a 768-wide test encoder would be slow)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from svc_core.rvc.train.settings import RvcTrainSettings

TEST_SEGMENT_FRAMES = 8  # frames decoded per example (RVC 40k: 32)
TEST_D_DIVISOR = 32  # discriminator channels / 32 (same keys as RVC's, tiny tensors)
TINY_SIZE = dict(inter_channels=16, hidden_channels=16, filter_channels=32, upsample_initial_channel=16,
                 gin_channels=16, n_layers=2)
TEST_MAX_FRAMES = 48  # pieces are cut to this many frames (RVC: 900)


def write_recordings(root: Path, speakers: tuple[str, ...] = ("alto",), seconds: float = 4.5, sr: int = 44100,
                     files: int = 1) -> Path:
    """<root>/<speaker>/take<k>.wav: generated melodies (a 0.6 s pause every 3 s)."""
    for s, name in enumerate(speakers):
        for k in range(files):
            path = root / name / f"take{k}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(path), sung_phrase(seconds, sr, seed=10 * s + k), sr, subtype="PCM_16")
    return root


def tiny_encoder(path: Path) -> Path:
    """A random ContentVec-layout checkpoint whose vec256l9 output is 256-dim (fast)."""
    return make_contentvec_checkpoint(path, embed_dim=32, final_dim=256, layers=9, heads=2, ffn_dim=32)


def tiny_settings(data: Path, out: Path, encoder_path: Path | None, **overrides) -> RvcTrainSettings:
    values = dict(data_dir=data, out_dir=out, version="v1", sample_rate="40k", encoder_path=
                  None if encoder_path is None else str(encoder_path), f0_method="pm", steps=2, batch_size=2,
                  segment_frames=TEST_SEGMENT_FRAMES, d_width_divisor=TEST_D_DIVISOR, save_every=1, keep=0,
                  log_interval=1, threads=0, model_overrides=dict(TINY_SIZE),
                  max_frames=TEST_MAX_FRAMES)
    values.update(overrides)
    return RvcTrainSettings(**values)


def random_features(folder: Path, frames: int, dim: int, seed: int = 0) -> np.ndarray:
    """float32 [frames, dim] features (for v2 experiments whose features are written directly)."""
    return np.random.default_rng(seed).standard_normal((frames, dim)).astype(np.float32)


def write_v2_experiment(settings: RvcTrainSettings, pieces: int = 3, seconds: float = 0.8, seed: int = 0) -> None:
    """A prepared v2 experiment without an encoder run: harmonic pieces at the model rate and 16 kHz, Praat-free f0
    (the tone's own pitch, a silent gap as 0 Hz), random 768-dim features, filelist and config (prepare's writers)."""
    from svc_core.rvc.train.layout import ExperimentLayout
    from svc_core.rvc.f0 import coarse_pitch
    from svc_core.rvc.train.extract import save_npy
    from svc_core.rvc.train.prepare import MUTE_NAME, rvc_config, write_filelist
    from svc_core.rvc.train.slicing import write_float_wav
    import json

    hp = settings.hparams()
    layout = ExperimentLayout(settings.out_dir, settings.version)
    rng = np.random.default_rng(seed)
    names = {}
    for k in range(pieces):
        name = f"v2_{k}"
        files = layout.piece_files(name)
        hz_tone = 180.0 + 40 * k
        for path, sr in ((files["gt"], hp.sr), (files["16k"], 16000)):
            t = np.arange(int(seconds * sr)) / sr
            wav = 0.3 * np.sin(2 * np.pi * hz_tone * t) * (t < seconds * 0.7)
            write_float_wav(path, wav.astype(np.float32), sr)
        frames = int(seconds * 16000) // 160
        hz = np.where(np.arange(frames) < frames * 0.7, hz_tone, 0.0)
        save_npy(files["hz"], hz)
        save_npy(files["coarse"], coarse_pitch(hz))
        save_npy(files["feature"], rng.standard_normal((frames // 2, hp.content_dim)).astype(np.float32))
        names[name] = 0
    mute = layout.mute().piece_files(MUTE_NAME)
    write_float_wav(mute["gt"], np.zeros(hp.sr, np.float32), hp.sr)
    save_npy(mute["hz"], np.zeros(100))
    save_npy(mute["coarse"], np.ones(100, np.int64))
    save_npy(mute["feature"], np.zeros((50, hp.content_dim), np.float32))
    write_filelist(layout, names, {"voice": 0}, settings.f0, settings.seed)
    layout.config.write_text(json.dumps(rvc_config(settings, {"voice": 0}, "pm")), encoding="utf-8")
