"""Builders for the diffusion training tests: the tiny preprocessed dataset of train_factories plus the caches
`preprocess --use-diff` adds (real vocoder mel of the clips, augmented mel/volume) and its diffusion.yaml, with a
tiny model and fast training settings."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import yaml

from diffusion_factories import SMALL_MODEL
from svc_core.diffusion.train.settings import DiffTrainSettings
from svc_core.features import frame_volume
from svc_core.preprocess.cache import FeatureTools, ensure_diff_features
from svc_core.preprocess.config_writer import build_diffusion_config, diffusion_config_text
from train_factories import build_dataset

TEST_CROP_SECONDS = 0.5  # 43 frames per training item (upstream: 2 s)
ENCODER = "hubertsoft"  # 256-dim units (train_factories' default)


def build_diff_dataset(root: Path, n_speakers: int = 2, clips_per_speaker: int = 3, seconds=(1.0, 1.4),
                       seed: int = 0, **model) -> Path:
    """train_factories' dataset + X.wav.vol/mel/aug_mel/aug_key/aug_vol.npy + diffusion.yaml (tiny model)."""
    build_dataset(root, n_speakers=n_speakers, clips_per_speaker=clips_per_speaker, seconds=seconds,
                  speech_encoder=ENCODER, seed=seed)
    tools = FeatureTools(ENCODER, None, "pm", None, use_diff=True, seed=seed)
    speakers = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("spk"))
    for wav_path in sorted(root.glob("spk*/*.wav")):
        wav = torch.from_numpy(sf.read(str(wav_path), dtype="float32")[0])
        np.save(f"{wav_path}.vol.npy", frame_volume(wav).numpy().astype(np.float32))
        ensure_diff_features(wav_path, wav, tools, ())
    doc = build_diffusion_config(ENCODER, speakers, root / "filelists" / "train.txt", root / "filelists" / "val.txt",
                                 "small", "cpu")
    doc["model"].update(SMALL_MODEL, k_step_max=0)
    doc["model"].update(model)
    doc["data"]["duration"] = TEST_CROP_SECONDS
    doc["train"].update(batch_size=2, interval_log=1, interval_val=2, interval_force_save=4)
    (root / "diffusion.yaml").write_text(diffusion_config_text(doc), encoding="utf-8")
    return root


def edit_yaml(path: Path, section: str, **changes) -> None:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc.setdefault(section, {}).update(changes)
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")


def tiny_diff_settings(**overrides) -> DiffTrainSettings:
    values = dict(steps=4, batch_size=2, duration=TEST_CROP_SECONDS, interval_log=1, interval_val=2,
                  interval_force_save=4, keep_best=1, seed=1234, num_workers=0, val_repeats=2, max_eval_clips=1,
                  infer_speedup=10, infer_method="dpm-solver++", cache_fp16=False)
    values.update(overrides)
    return DiffTrainSettings(**values)


def make_tiny_vocoder(folder: Path, seed: int = 0) -> Path:
    """An openvpi-layout NSF-HiFiGAN folder (`model` = {'generator': state_dict} + config.json) with tiny random
    weights and the real mel settings (44.1 kHz, hop 512, 128 bins)."""
    import dataclasses
    import json

    from svc_core.vocoders import NsfHifiGAN, VocoderConfig

    cfg = VocoderConfig(upsample_initial_channel=32, resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1,),))
    torch.manual_seed(seed)
    vocoder = NsfHifiGAN(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    from svc_core.models.weight_norm import upstream_items

    torch.save({"generator": dict(upstream_items(vocoder.generator))}, folder / "model")
    doc = json.loads(json.dumps(dataclasses.asdict(cfg)))
    (folder / "config.json").write_text(json.dumps(doc), encoding="utf-8")
    return folder
