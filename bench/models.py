"""Full-size random-weight models in the upstream layout for the benchmark (built once, reused from --workdir).

Uses the test suite's upstream-layout builders (tests/factories.py, tests/encoder_factories.py), whose files go
through exactly the loaders users' files go through.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

# upstream's configs/diffusion_template.yaml model section (with vec768l12: 768-dim units, 128 mels)
DIFFUSION_SIZE: dict[str, int] = {"n_layers": 20, "n_chans": 512, "n_hidden": 256}
MEL_VOCODER_CHANNELS = 512  # openvpi nsf_hifigan_20221211's upsample_initial_channel
FULL_CONV = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
# Synthesizer sizes: "full" is the 4.1 template; "tiny" is upstream's `preprocess_flist_config.py --tiny`
# (config_tiny_template.json: vocoder from 400 channels, depthwise WN convolutions, one shared flow WN; filter 512).
VARIANTS: dict[str, dict] = {
    "full": {},
    "tiny": {"upsample_initial_channel": 400, "use_depthwise_conv": True, "flow_share_parameter": True,
             "filter_channels": 512},
}


def build(workdir: str | os.PathLike, speech_encoder: str = "vec768l12", variant: str = "full",
          onnx: bool = True) -> dict[str, Path]:
    """{model, config, encoder, onnx, encoder_onnx, encoder_int8, rmvpe, rmvpe_onnx} paths under workdir (created
    when missing; the ONNX export gets its int8 vocoder too). variant: a key of VARIANTS (the synthesizer's size;
    the content encoder and rmvpe are the same). onnx=False builds and returns the torch files only (model, config,
    encoder, rmvpe)."""
    from encoder_factories import make_contentvec_checkpoint
    from factories import make_upstream_checkpoint

    root = Path(workdir)
    model_dir = root / f"{variant}-{speech_encoder}"
    g_path, config_path = model_dir / "G_0.pth", model_dir / "config.json"
    if not g_path.is_file():
        make_upstream_checkpoint(model_dir, speech_encoder=speech_encoder, n_speakers=1, small=False, seed=1,
                                 **VARIANTS[variant])
    encoder = root / "pretrain" / "checkpoint_best_legacy_500.pt"
    if not encoder.is_file():  # ContentVec legacy layout at full size: 768 wide, 12 layers, 3072 FFN, 12 heads
        make_contentvec_checkpoint(encoder, embed_dim=768, final_dim=256, layers=12, heads=12, ffn_dim=3072,
                                   conv_feature_layers=FULL_CONV, seed=2)
    rmvpe = root / "pretrain" / "rmvpe.pt"
    if not rmvpe.is_file():  # RMVPE's real size (E2E0: 4 blocks, 1 GRU), random weights, so-vits layout
        import torch

        from svc_core.f0.rmvpe_model import E2E0

        torch.manual_seed(3)
        torch.save({"model": E2E0().state_dict()}, rmvpe)
    paths = {"model": g_path, "config": config_path, "encoder": encoder, "rmvpe": rmvpe}
    if not onnx:
        return paths
    onnx_path = model_dir / "model.onnx"
    from svc_core.onnx.split_export import split_paths

    if not (onnx_path.is_file() and all(p.is_file() for p in split_paths(onnx_path).values())):
        from svc_core.onnx import export_synthesizer

        export_synthesizer(g_path, config_path, onnx_path)
    from svc_core.onnx.split_export import int8_decoder_path

    if not int8_decoder_path(onnx_path).is_file():  # the opt-in int8 vocoder, calibrated on examples/ as by default
        from svc_core.onnx import OnnxSvc
        from svc_core.onnx.vocoder_int8 import add_int8_vocoder

        add_int8_vocoder(OnnxSvc(onnx_path, encoder_path=str(encoder)))
    encoder_onnx = root / "pretrain" / f"{speech_encoder}.onnx"
    if not (encoder_onnx.is_file() and int8_path(encoder_onnx).is_file()):
        from svc_core.onnx import export_encoder

        export_encoder(speech_encoder, encoder, encoder_onnx, int8=True)
    rmvpe_onnx = rmvpe.with_suffix(".onnx")
    if not rmvpe_onnx.is_file():
        from svc_core.onnx.f0_export import export_rmvpe

        export_rmvpe(rmvpe, rmvpe_onnx)
    return {**paths, "onnx": onnx_path, "encoder_onnx": encoder_onnx, "encoder_int8": int8_path(encoder_onnx),
            "rmvpe_onnx": rmvpe_onnx}


def build_diffusion(workdir: str | os.PathLike, speech_encoder: str = "vec768l12") -> dict[str, Path]:
    """{diffusion_model, diffusion_config, mel_vocoder} under workdir (created when missing): the full-size
    so-vits-svc 4.1 diffusion model of upstream's template (DIFFUSION_SIZE) and openvpi's full-size NSF-HiFiGAN
    (upsample_initial_channel 512), random weights in upstream's layout (tests/diffusion_factories.py and
    tests/vocoder_factories.py, the files the parity tests load)."""
    from diffusion_factories import make_diffusion_model
    from vocoder_factories import make_vocoder

    root = Path(workdir)
    diff_dir = root / f"diffusion-{speech_encoder}"
    model, config = diff_dir / "model_0.pt", diff_dir / "config.yaml"
    if not (model.is_file() and config.is_file()):
        make_diffusion_model(diff_dir, encoder=speech_encoder, n_spk=1, seed=4, small=False, **DIFFUSION_SIZE)
    vocoder = root / "pretrain" / "nsf_hifigan" / "model"
    if not vocoder.is_file():
        make_vocoder(vocoder.parent, seed=5, upsample_initial_channel=MEL_VOCODER_CHANNELS)
    return {"diffusion_model": model, "diffusion_config": config, "mel_vocoder": vocoder}


def int8_path(path: Path) -> Path:
    return path.with_name(path.stem + ".int8" + path.suffix)


def clip(seconds: float):
    """A sung test phrase (float32 at 44.1 kHz) with a 0.6 s slicer gap every 8 s (pieces of ~7.4 s)."""
    from audio_factories import sung_phrase

    return sung_phrase(seconds, gap_every=8.0, gap=0.6), 44100


FILE_BLOCK_SECONDS = 40.0  # the long input is written in blocks of this length
FILE_BLOCK_GAP = 0.6  # seconds of silence after each block, as between the clip's own phrases


def clip_file(workdir: str, seconds: float) -> Path:
    """A `seconds`-long PCM-16 WAV in `workdir` made of FILE_BLOCK_SECONDS blocks of `clip`, each followed by
    FILE_BLOCK_GAP of silence (so the slicer cuts there too and the pieces are those of the short run) and each at
    its own gain (so no piece repeats another and hits the feature cache), written block by block."""
    import numpy as np
    import soundfile as sf

    path = Path(workdir) / f"input_{seconds:.0f}s_gapped.wav"
    if path.is_file():
        return path
    phrase, sr = clip(FILE_BLOCK_SECONDS)
    block = np.concatenate([phrase, np.zeros(int(FILE_BLOCK_GAP * sr), dtype=phrase.dtype)])
    total = int(seconds * sr)
    partial = path.with_suffix(".part.wav")
    with sf.SoundFile(partial, "w", sr, 1, subtype="PCM_16") as f:
        for k, start in enumerate(range(0, total, len(block))):
            f.write(block[: total - start] * (1.0 - 0.002 * k))
    partial.replace(path)
    return path
