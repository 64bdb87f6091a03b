"""Helpers of svc_core.rvc.checkpoint: Applio's fields, RVC training checkpoints (G_*.pth) and their hparams.

A training G_*.pth holds no hyper-parameters: RVC keeps them in logs/<exp>/config.json beside it (a copy of
configs/<v>/<sr>.json). Without it they are read from tensor shapes; the sample rate then comes from the decoder's
kernel/stride layout, which is ambiguous only for no-pitch v1 models (32k and 48k share every shape).
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping

import torch

from ..errors import ModelError
from ..file_limits import MAX_CONFIG_BYTES, check_file_size
from .hparams import _PRESETS, CONTENT_DIMS, SR_NAMES, RvcHParams, preset

APPLIO_VOCODER = "HiFi-GAN"  # Applio's default: RVC's NSF HiFi-GAN (HiFi-GAN without pitch), which we run
APPLIO_REFUSED_VOCODERS = {
    "MRF HiFi-GAN": "Applio's MRF HiFi-GAN decoder (multi-receptive-field blocks, another state-dict layout)",
    "RefineGAN": "Applio's RefineGAN decoder (a different generator network)",
}
CONTENTVEC = "contentvec"  # Applio's name for ContentVec (RVC's hubert_base.pt), the only embedder we run
APPLIO_OTHER_EMBEDDERS = ("spin", "spin-v2", "chinese-hubert-base", "japanese-hubert-base", "korean-hubert-base",
                          "custom")
APPLIO_RATES = (24000,)  # Applio's 24000.json (hop 240) besides RVC's three
TRAINING_CONFIG = "config.json"  # RVC's logs/<exp>/config.json
PHONE_KEY, PITCH_KEY = "enc_p.emb_phone.weight", "enc_p.emb_pitch.weight"


def describe(obj: Any) -> str:
    """A short description of what a file holds, for error messages."""
    if isinstance(obj, Mapping):
        keys = [str(k) for k in list(obj)[:8]]
        return f"a dict with keys {keys}{' ...' if len(obj) > 8 else ''}"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"


def applio_problem(obj: Mapping[str, Any], name: str) -> str | None:
    """Why an Applio file cannot be run here (a vocoder or content encoder we do not have), or None."""
    vocoder = obj.get("vocoder", APPLIO_VOCODER)
    if vocoder in APPLIO_REFUSED_VOCODERS:
        return (f"'{name}' was trained in Applio with the {vocoder!r} vocoder: "
                f"{APPLIO_REFUSED_VOCODERS[vocoder]}, which svc-studio does not implement. Only Applio's default "
                f"'{APPLIO_VOCODER}' vocoder (RVC's decoder) is supported; retrain with it or convert in Applio.")
    if vocoder != APPLIO_VOCODER:
        return (f"'{name}' names vocoder {vocoder!r}, which is not one of Applio's; only '{APPLIO_VOCODER}' "
                "(RVC's decoder) is supported.")
    embedder = obj.get("embedder_model")
    if embedder not in (CONTENTVEC, None):
        known = "one of Applio's other embedders" if embedder in APPLIO_OTHER_EMBEDDERS else "an embedder"
        return (f"'{name}' was trained on content features from {known}, {embedder!r}. svc-studio runs RVC voices "
                f"with ContentVec ('{CONTENTVEC}', RVC's hubert_base.pt) only; features from another embedder would "
                f"make the voice mumble. Retrain the voice in Applio with the '{CONTENTVEC}' embedder.")
    return None


def training_state(obj: Mapping[str, Any], name: str) -> dict[str, torch.Tensor]:
    """The generator tensors of a training checkpoint ('module.' prefix of DDP runs removed)."""
    state = obj["model"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"'{name}': 'model' entries {bad[:5]} are not named tensors; the file is damaged.")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    # Applio trains with torch's parametrised weight norm; its files rename these keys on export, as we do here.
    return {k.replace(".parametrizations.weight.original0", ".weight_g")
            .replace(".parametrizations.weight.original1", ".weight_v"): v for k, v in state.items()}


def _read_json(path: str) -> Mapping[str, Any]:
    check_file_size(path, MAX_CONFIG_BYTES, "RVC config.json")
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as err:
        raise ModelError(f"RVC config '{path}' could not be read as JSON: {err}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model"), dict) or not isinstance(doc.get("data"), dict):
        raise ModelError(f"'{path}' is not RVC's training config.json (it needs 'data' and 'model' sections).")
    return doc


def _version_f0(state: Mapping[str, torch.Tensor], name: str) -> tuple[str, bool]:
    width = int(state[PHONE_KEY].shape[1])
    version = next((v for v, d in CONTENT_DIMS.items() if d == width), None)
    if version is None:
        raise ModelError(f"'{name}': {PHONE_KEY} takes {width}-d content; RVC v1 takes 256 and v2 768.")
    return version, PITCH_KEY in state


def _from_config(doc: Mapping[str, Any], version: str, f0: bool, source: str) -> RvcHParams:
    data, model = doc["data"], doc["model"]
    try:
        hop = int(data["hop_length"])
        values = {k: model[k] for k in ("inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers",
                                        "kernel_size", "p_dropout", "resblock", "resblock_kernel_sizes",
                                        "resblock_dilation_sizes", "upsample_rates", "upsample_initial_channel",
                                        "upsample_kernel_sizes", "spk_embed_dim", "gin_channels")}
        segment = int(doc.get("train", {}).get("segment_size", 32 * hop)) // hop
        return RvcHParams(spec_channels=int(data["filter_length"]) // 2 + 1, segment_size=segment,
                          sr=int(data["sampling_rate"]), version=version, f0=f0, **values)
    except (KeyError, TypeError, ValueError) as err:
        raise ModelError(f"'{source}' lacks or mistypes RVC's field {err}; is it RVC's "
                         "logs/<exp>/config.json?") from None


def _sr_from_shapes(state: Mapping[str, torch.Tensor], version: str, f0: bool, name: str) -> str:
    """Which of RVC's presets (32k/40k/48k) has this decoder's upsampling kernels and noise-conv strides."""
    kernels = []
    while f"dec.ups.{len(kernels)}.weight_v" in state:
        kernels.append(int(state[f"dec.ups.{len(kernels)}.weight_v"].shape[-1]))
    noise = [int(state[f"dec.noise_convs.{i}.weight"].shape[-1]) for i in range(len(kernels))
             if f"dec.noise_convs.{i}.weight" in state]
    found = []
    for (v, sr), (_, _, rates, kinds) in _PRESETS.items():
        strides = [2 * _prod(rates[i + 1:]) if i + 1 < len(rates) else 1 for i in range(len(rates))]
        if v == version and list(kinds) == kernels and (not f0 or strides == noise):
            found.append(sr)
    if len(found) != 1:
        what = "matches none of RVC's presets" if not found else f"fits {' and '.join(found)} alike"
        raise ModelError(f"'{name}': the decoder layout (upsampling kernels {kernels}) {what}, so the sample rate "
                         f"cannot be told from the weights. Put RVC's {TRAINING_CONFIG} of this experiment "
                         "(logs/<experiment>/config.json) beside the file or pass it as the config.")
    return found[0]


def _prod(values: Any) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _from_shapes(state: Mapping[str, torch.Tensor], version: str, f0: bool, name: str) -> RvcHParams:
    sr = _sr_from_shapes(state, version, f0, name)
    hidden = int(state[PHONE_KEY].shape[0])
    rel = state["enc_p.encoder.attn_layers.0.emb_rel_k"]
    layers = 0
    while f"enc_p.encoder.attn_layers.{layers}.conv_q.weight" in state:
        layers += 1
    ffn = state["enc_p.encoder.ffn_layers.0.conv_1.weight"]
    spec = state.get("enc_q.pre.weight")
    base = preset(version, sr, f0)
    return base.with_(
        spec_channels=int(spec.shape[1]) if spec is not None else base.spec_channels,
        inter_channels=int(state["enc_p.proj.weight"].shape[0]) // 2, hidden_channels=hidden,
        filter_channels=int(ffn.shape[0]), kernel_size=int(ffn.shape[-1]), n_layers=layers,
        n_heads=hidden // int(rel.shape[-1]), upsample_initial_channel=int(state["dec.conv_pre.weight"].shape[0]),
        spk_embed_dim=int(state["emb_g.weight"].shape[0]), gin_channels=int(state["emb_g.weight"].shape[1]))


def hparams_for_training(state: Mapping[str, torch.Tensor], path: str, config_path: str | os.PathLike | None
                         ) -> tuple[RvcHParams, str]:
    """Hparams of a training G_*.pth: from config_path, else logs/<exp>/config.json beside it, else from the
    tensor shapes. Returns (hparams, where they came from)."""
    name = os.path.basename(path)
    for key in (PHONE_KEY, "enc_p.proj.weight", "emb_g.weight", "dec.conv_pre.weight",
                "enc_p.encoder.attn_layers.0.emb_rel_k", "enc_p.encoder.ffn_layers.0.conv_1.weight"):
        if key not in state:
            raise ModelError(f"'{name}' lacks {key}; it is not (or no longer) a complete RVC generator checkpoint.")
    version, f0 = _version_f0(state, name)
    beside = os.path.join(os.path.dirname(os.path.abspath(path)), TRAINING_CONFIG)
    config = os.fspath(config_path) if config_path is not None else (beside if os.path.isfile(beside) else None)
    if config is not None:
        hp = _from_config(_read_json(config), version, f0, config)
        hp = hp.with_(spk_embed_dim=int(state["emb_g.weight"].shape[0]))
        if hp.sr not in SR_NAMES.values():
            raise ModelError(f"'{config}': sampling_rate {hp.sr} is not one of RVC's (32000, 40000, 48000).")
        return hp, config
    return _from_shapes(state, version, f0, name), "tensor shapes"
