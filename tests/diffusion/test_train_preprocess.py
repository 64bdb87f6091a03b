"""`preprocess --use-diff`: the diffusion caches (vocoder mel, augmented mel / volume / key) in upstream's names,
diffusion.yaml, reruns, and upstream's pickled aug_mel files (never unpickled, rewritten)."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from audio_factories import sung_phrase
from encoder_factories import make_contentvec_checkpoint
from svc_core.diffusion.config import load_diffusion_config
from svc_core.features import frame_volume
from svc_core.preprocess import PreprocessSettings, prepare_dataset
from svc_core.preprocess.cache import FeatureTools, ensure_diff_features
from svc_core.preprocess.diffcache import (DIFF_KINDS, MAX_KEYSHIFT, diff_cache_paths, draw_augmentation,
                                           read_augmentation)
from svc_core.vocoders.mel import MelExtractor, MelSettings

SR = 44100


@pytest.fixture()
def clip(tmp_path) -> tuple[Path, torch.Tensor]:
    path = tmp_path / "alto" / "take_000.wav"
    path.parent.mkdir()
    sf.write(path, sung_phrase(1.5, gap_every=10.0, seed=4) * 0.5, SR, subtype="PCM_16")
    return path, torch.from_numpy(sf.read(path, dtype="float32")[0])


def _tools() -> FeatureTools:
    return FeatureTools("hubertsoft", None, "pm", None, use_diff=True, seed=7)


def test_caches_hold_the_vocoder_mel_and_the_augmented_versions(clip):
    path, wav = clip
    assert ensure_diff_features(path, wav, _tools(), ()) == list(DIFF_KINDS)
    files = diff_cache_paths(path)
    assert {p.name for p in files.values()} == {f"take_000.wav.{k}.npy" for k in DIFF_KINDS}
    frames = wav.shape[0] // 512
    mel = np.load(files["mel"], allow_pickle=False)
    aug_mel = np.load(files["aug_mel"], allow_pickle=False)
    aug_vol = np.load(files["aug_vol"], allow_pickle=False)
    assert mel.dtype == aug_mel.dtype == aug_vol.dtype == np.float32
    assert mel.shape == aug_mel.shape == (frames, 128) and aug_vol.shape == (frames,)
    aug = read_augmentation(files["aug_key"])
    assert -MAX_KEYSHIFT <= aug.keyshift <= MAX_KEYSHIFT
    peak = float(wav.abs().max())
    assert -1.0 <= aug.log10_gain <= min(1.0, math.log10(1.0 / (peak + 1e-5))) + 1e-6
    # the same numbers as the vocoder's own mel of the clip / of the louder, shifted clip
    ref = MelExtractor(MelSettings())
    np.testing.assert_allclose(mel, ref(wav[None]).transpose(1, 2)[0].numpy(), atol=1e-5)
    louder = wav[None] * aug.gain
    np.testing.assert_allclose(aug_mel, ref(louder, aug.keyshift).transpose(1, 2)[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(aug_vol, frame_volume(louder[0]).numpy(), rtol=1e-5, atol=1e-7)
    assert np.abs(aug_mel - mel).mean() > 0.05  # really augmented


def test_rerun_reuses_and_the_draw_is_seeded_by_the_clip_name(clip):
    path, wav = clip
    ensure_diff_features(path, wav, _tools(), ())
    assert ensure_diff_features(path, wav, _tools(), ()) == []
    first = draw_augmentation(path, 0.5, seed=7)
    assert draw_augmentation(path, 0.5, seed=7) == first
    assert draw_augmentation(path.with_name("other.wav"), 0.5, seed=7) != first
    assert draw_augmentation(path.parent.parent / "tenor" / path.name, 0.5, seed=7) != first
    os.remove(diff_cache_paths(path)["aug_vol"])  # one of the draw's files gone: all three are redone
    assert ensure_diff_features(path, wav, _tools(), ()) == ["aug_mel", "aug_key", "aug_vol"]


class _Trap:
    """Unpickling this writes a marker file: the test fails if anything unpickles upstream's aug_mel."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_upstream_pickled_aug_mel_is_rewritten_without_unpickling(clip, tmp_path):
    path, wav = clip
    files = diff_cache_paths(path)
    marker = tmp_path / "unpickled"
    frames = wav.shape[0] // 512
    # upstream's layout: np.save of an object array (mel, keyshift); here the "keyshift" is a trap
    np.save(files["aug_mel"], np.asanyarray((np.zeros((frames, 128), np.float32), _Trap(str(marker))),
                                            dtype=object), allow_pickle=True)
    done = ensure_diff_features(path, wav, _tools(), ())
    assert "aug_mel" in done and not marker.exists()
    assert np.load(files["aug_mel"], allow_pickle=False).shape == (frames, 128)


@pytest.fixture(scope="module")
def encoder_file(tmp_path_factory) -> Path:
    return make_contentvec_checkpoint(tmp_path_factory.mktemp("pretrain") / "checkpoint_best_legacy_500.pt",
                                      final_dim=256, layers=9, seed=3)


def test_prepare_dataset_use_diff_writes_caches_and_diffusion_yaml(tmp_path, encoder_file):
    raw, out = tmp_path / "raw", tmp_path / "out"
    for speaker, seed in (("alto", 1), ("tenor", 2)):
        (raw / speaker).mkdir(parents=True)
        sf.write(raw / speaker / "a.wav", sung_phrase(3.0, gap_every=10.0, seed=seed), SR, subtype="PCM_16")
    settings = PreprocessSettings(raw, out, encoder="vec256l9", encoder_path=str(encoder_file), f0="pm",
                                  val_per_speaker=0, use_diff=True)
    result = prepare_dataset(settings)
    assert result.ok and all(result.computed[k] == 2 for k in DIFF_KINDS)
    for wav in out.glob("*/*.wav"):
        assert all(p.is_file() for p in diff_cache_paths(wav).values())
        assert Path(f"{wav}.vol.npy").is_file()
    config = load_diffusion_config(out / "diffusion.yaml")
    assert config.speakers == {"alto": 0, "tenor": 1} and config.n_spk == 2
    assert config.encoder == "vec256l9" and config.encoder_out_channels == 256
    assert (config.n_layers, config.n_chans, config.k_step_max) == (10, 128, 100)  # the small (CPU) preset
    assert Path(config.doc["data"]["training_files"]).is_file()
    again = prepare_dataset(settings)
    assert all(again.computed[k] == 0 for k in DIFF_KINDS)
