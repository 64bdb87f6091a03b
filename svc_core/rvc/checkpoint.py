"""RVC voice files: recognise (`rvc_kind`), read (`read_rvc_checkpoint`) and write (`save_rvc_small`).

Kinds, all read with svc_core.safe_load.load_torch (weights only, no code from the file runs):
* "rvc-small": RVC WebUI's release model {'weight' (fp16, no enc_q), 'config' (18 values), 'info', 'sr', 'f0',
  'version'} as its savee / extract_small_model write it (assets/weights/<name>.pth).
* "applio": the same plus Applio's fields (epoch, step, model_name, author, embedder_model, speakers_id, vocoder...).
* "rvc-training": RVC's training checkpoint G_*.pth {'model', 'iteration', 'optimizer', 'learning_rate'}.
As RVC's loader does: config[-3] := rows of emb_g.weight, class from (version, f0), fp16 upcast, enc_q optional.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from ..errors import ModelError
from ..safe_load import load_torch
from .hparams import CONTENT_DIMS, SAVED_SEGMENT_FRAMES, SR_NAMES, RvcHParams
from .rvc_files import APPLIO_RATES, applio_problem, describe, hparams_for_training, training_state
from .synthesizer import POSTERIOR_PREFIX, RvcSynthesizer

KIND_SMALL, KIND_APPLIO, KIND_TRAINING = "rvc-small", "applio", "rvc-training"
SMALL_KEYS = ("weight", "config")
ENCODER_KEY = "speech_encoder"  # svc-studio's field in a small model: the content encoder when not ContentVec
APPLIO_KEYS = ("vocoder", "embedder_model", "speakers_id", "model_hash", "step", "epoch", "model_name", "author")
PHONE_KEY, PITCH_KEY, SPEAKER_KEY = "enc_p.emb_phone.weight", "enc_p.emb_pitch.weight", "emb_g.weight"
WHAT = "RVC model"


@dataclass
class RvcCheckpoint:
    """A recognised RVC file: hparams (config[-3] fixed from emb_g), RVC-named tensors as stored, kind, speaker
    names (Applio's speakers_id or ids), and `meta` (info, sr, and every other plain field of the file)."""

    hparams: RvcHParams
    state: dict[str, torch.Tensor]
    kind: str
    speakers: list[str]
    meta: dict[str, Any] = field(default_factory=dict)

    def build(self, posterior: bool = False) -> RvcSynthesizer:
        """A float32 RvcSynthesizer holding these weights (weight norm not folded)."""
        net = RvcSynthesizer(self.hparams, posterior=posterior)
        net.load_rvc_state(self.state, source=self.meta.get("file", WHAT))
        return net


def rvc_kind(obj: Any) -> str | None:
    """What an object loaded by load_torch is: "rvc-small", "applio", "rvc-training", or None (not RVC)."""
    if not isinstance(obj, Mapping):
        return None
    if isinstance(obj.get("weight"), Mapping) and "config" in obj:
        return KIND_APPLIO if any(k in obj for k in APPLIO_KEYS) else KIND_SMALL
    model = obj.get("model")
    if isinstance(model, Mapping) and any(str(k).endswith(PHONE_KEY) for k in model):
        return KIND_TRAINING
    return None


def _version(obj: Mapping[str, Any], state: Mapping[str, torch.Tensor], name: str) -> str:
    """The file's version ("v1" when absent, as RVC), checked against the width of emb_phone."""
    version = obj.get("version", "v1")
    if version not in CONTENT_DIMS:
        raise ModelError(f"'{name}' says version {version!r}; RVC models are 'v1' or 'v2'.")
    phone = state.get(PHONE_KEY)
    if phone is None or phone.dim() != 2:
        raise ModelError(f"'{name}' has no {PHONE_KEY} matrix; the file is damaged or not an RVC voice.")
    width = int(phone.shape[1])
    by_width = next((v for v, d in CONTENT_DIMS.items() if d == width), None)
    if by_width is None:
        raise ModelError(f"'{name}': {PHONE_KEY} takes {width}-d content, but RVC v1 takes 256 and v2 768; the file "
                         "is not an RVC voice (or was made by a fork with another content encoder).")
    if by_width != version:
        raise ModelError(f"'{name}' says version {version!r}, but its weights take {width}-d content, which is RVC "
                         f"{by_width} ({CONTENT_DIMS[version]}-d for {version}). The 'version' field is wrong; "
                         f"re-save it with version '{by_width}' (e.g. with RVC's ckpt tab) or ask its author.")
    return version


def _f0(obj: Mapping[str, Any], state: Mapping[str, torch.Tensor], name: str) -> bool:
    f0 = obj.get("f0", 1)
    if f0 not in (0, 1, True, False):
        raise ModelError(f"'{name}': field 'f0' is {f0!r}; RVC writes 1 (pitch model) or 0 (no pitch).")
    has_pitch = PITCH_KEY in state
    if bool(f0) != has_pitch:
        raise ModelError(f"'{name}' says f0={int(bool(f0))} but its weights {'have' if has_pitch else 'lack'} "
                         f"{PITCH_KEY}; the 'f0' field does not match the weights.")
    return bool(f0)


def _small_hparams(obj: Mapping[str, Any], state: Mapping[str, torch.Tensor], name: str,
                   rates: tuple[int, ...] = tuple(SR_NAMES.values())) -> RvcHParams:
    config = obj["config"]
    if not isinstance(config, (list, tuple)):
        raise ModelError(f"'{name}': 'config' is {describe(config)}, not RVC's list of 18 constructor values.")
    config = list(config)
    speakers = state.get(SPEAKER_KEY)
    if speakers is None or speakers.dim() != 2:
        raise ModelError(f"'{name}' has no {SPEAKER_KEY}; the file is damaged or not an RVC voice.")
    if len(config) == 18:
        config[-3] = int(speakers.shape[0])  # RVC's loader trusts the table, not the stored count
    hp = RvcHParams.from_config_list(config, _version(obj, state, name), _f0(obj, state, name))
    sr = obj.get("sr")  # RVC writes "40k"; Applio the rate in Hz
    declared = SR_NAMES.get(sr) if isinstance(sr, str) else sr if isinstance(sr, int) else None
    if declared is not None and declared != hp.sr:
        raise ModelError(f"'{name}' says sr {sr!r} but its config says {hp.sr} Hz; the file is inconsistent.")
    if hp.sr not in rates:
        raise ModelError(f"'{name}': sample rate {hp.sr} Hz is not one of RVC's ({', '.join(map(str, rates))}); the "
                         "file is damaged or from a fork with other output rates.")
    odd = [u for u in hp.upsample_rates if u % 2]
    if odd:
        raise ModelError(f"'{name}': upsample_rates {list(hp.upsample_rates)} contain odd factors {odd} (a custom "
                         "Applio layout with another padding); only RVC's even layouts are supported.")
    if hp.sr != hp.hop_length * hp.frame_rate:
        raise ModelError(f"'{name}': upsample_rates {list(hp.upsample_rates)} give a hop of {hp.hop_length} samples, "
                         f"but {hp.sr} Hz at RVC's 100 frames/s needs {hp.sr // hp.frame_rate}; the config is damaged.")
    return _with_encoder(hp, obj.get(ENCODER_KEY), name)


def _with_encoder(hp: RvcHParams, encoder: Any, name: str) -> RvcHParams:
    """hp with the file's own content encoder (svc_core's name, e.g. "phonevec256"), checked against the width."""
    if encoder is None or encoder == hp.speech_encoder:
        return hp
    from ..encoders import encoder_info

    try:
        dim = encoder_info(str(encoder)).dim
    except Exception:  # an unknown name: say which ones exist
        from ..encoders import list_encoders

        raise ModelError(f"'{name}' names the content encoder {encoder!r}, which svc_core does not have (known: "
                         f"{', '.join(list_encoders())}).") from None
    if dim != hp.content_dim:
        raise ModelError(f"'{name}' names the content encoder {encoder!r} ({dim}-dim) but its weights take "
                         f"{hp.content_dim}-dim features; the file is inconsistent.")
    return hp.with_(encoder=str(encoder))


def _plain_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): v for k, v in obj.items()
            if k not in ("weight", "model", "optimizer") and isinstance(v, (str, int, float, bool, type(None), list))}


def _speaker_names(obj: Mapping[str, Any], n_rows: int) -> list[str]:
    """Applio stores speakers_id = the number of speakers it trained; RVC stores none and trains one speaker, id 0
    (its 109-row table is the pretrained model's): ids as names. Other rows stay reachable by number."""
    count = obj.get("speakers_id")
    n = count if isinstance(count, int) and 0 < count <= n_rows else 1
    return [str(i) for i in range(n)]


def _other_file_hint(obj: Any) -> str:
    """What a non-RVC torch file most likely is, for the error message."""
    if not isinstance(obj, Mapping):
        return ""
    if any(k in obj for k in ("combd", "sbd")) or (isinstance(obj.get("model"), Mapping) and any(
            str(k).startswith(("discriminators.", "module.discriminators.")) for k in obj["model"])):
        return " It is a discriminator (D_*.pth); load the G_*.pth beside it."
    if isinstance(obj.get("model"), Mapping) and "enc_p.pre.weight" in obj["model"]:
        return " It is a so-vits-svc generator (G_*.pth); load it with its config.json as a so-vits voice."
    return ""


def read_rvc_checkpoint(path: str | os.PathLike, config_path: str | os.PathLike | None = None) -> RvcCheckpoint:
    """Read an RVC / Applio voice or an RVC training G_*.pth; raises ModelError saying what is wrong and what to do.

    config_path: RVC's logs/<exp>/config.json for a training checkpoint (default: the one beside it)."""
    path = os.fspath(path)
    name = os.path.basename(path)
    obj = load_torch(path, what=WHAT)
    kind = rvc_kind(obj)
    if kind is None:
        raise ModelError(f"'{name}' is not an RVC voice: it holds {describe(obj)}.{_other_file_hint(obj)} RVC voices "
                         "are the small .pth files from RVC's assets/weights/ (keys weight, config, info, sr, f0, "
                         "version) or training checkpoints G_*.pth from logs/<experiment>/.")
    if kind == KIND_TRAINING:
        state = training_state(obj, name)
        hp, how = hparams_for_training(state, path, config_path)
        meta = _plain_meta(obj) | {"file": name, "kind": kind, "hparams_from": how}
        return RvcCheckpoint(hp, state, kind, _speaker_names(obj, hp.spk_embed_dim), meta)
    if kind == KIND_APPLIO:
        problem = applio_problem(obj, name)
        if problem:
            raise ModelError(problem)
    state = obj["weight"]
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise ModelError(f"'{name}': 'weight' entries {bad[:5]} are not named tensors; the file is damaged.")
    rates = tuple(SR_NAMES.values()) + (APPLIO_RATES if kind == KIND_APPLIO else ())
    hp = _small_hparams(obj, state, name, rates)
    meta = _plain_meta(obj) | {"file": name, "kind": kind}
    return RvcCheckpoint(hp, dict(state), kind, _speaker_names(obj, hp.spk_embed_dim), meta)


def _state_of(net_or_state: torch.nn.Module | Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if isinstance(net_or_state, RvcSynthesizer):
        return net_or_state.rvc_state(include_posterior=False)
    return {k: v for k, v in net_or_state.items() if not k.startswith(POSTERIOR_PREFIX)}


def small_model_dict(net_or_state: torch.nn.Module | Mapping[str, torch.Tensor], hp: RvcHParams,
                     info: str = "", half: bool = True) -> "OrderedDict[str, Any]":
    """RVC's savee layout as a dict: weight (no enc_q; fp16 when half), config, info, sr, f0, version."""
    state = _state_of(net_or_state)
    out: OrderedDict[str, Any] = OrderedDict()
    out["weight"] = {k: (v.detach().half() if half and v.is_floating_point() else v.detach()).cpu().clone()
                     for k, v in state.items()}
    out["config"] = hp.to_config_list()
    out["config"][1] = SAVED_SEGMENT_FRAMES  # as RVC's savee, whatever the training crop was
    out["info"] = info
    out["sr"] = hp.sr_name
    out["f0"] = int(hp.f0)
    out["version"] = hp.version
    if hp.encoder:  # our field (RVC and Applio ignore unknown keys): the encoder a voice trained here needs
        out[ENCODER_KEY] = hp.encoder
    return out


def save_rvc_small(net_or_state: torch.nn.Module | Mapping[str, torch.Tensor], hp: RvcHParams,
                   path: str | os.PathLike, info: str = "0epoch", half: bool = True,
                   extra: Mapping[str, Any] | None = None) -> None:
    """Write an RVC small model (what RVC's training saves to assets/weights/); `extra` adds fields (Applio's)."""
    out = small_model_dict(net_or_state, hp, info=info, half=half)
    out.update(extra or {})
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save(out, os.fspath(path))


def rvc_training_config(hp: RvcHParams) -> dict[str, Any]:
    """The data/model/train sections RVC keeps in logs/<exp>/config.json for these hparams."""
    filter_length = (hp.spec_channels - 1) * 2
    model = {k: v for k, v in zip(("inter_channels", "hidden_channels", "filter_channels", "n_heads", "n_layers",
                                   "kernel_size", "p_dropout", "resblock", "resblock_kernel_sizes",
                                   "resblock_dilation_sizes", "upsample_rates", "upsample_initial_channel",
                                   "upsample_kernel_sizes"), hp.to_config_list()[2:15])}
    model.update(use_spectral_norm=False, gin_channels=hp.gin_channels, spk_embed_dim=hp.spk_embed_dim)
    return {"train": {"segment_size": hp.segment_size * hp.hop_length},
            "data": {"max_wav_value": 32768.0, "sampling_rate": hp.sr, "filter_length": filter_length,
                     "hop_length": hp.hop_length, "win_length": filter_length},
            "model": model}


def save_rvc_training(net: RvcSynthesizer, path: str | os.PathLike, iteration: int = 0,
                      optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
                      learning_rate: float = 1e-4, write_config: bool = True) -> None:
    """Write RVC's training checkpoint G_*.pth {'model' (full state incl. enc_q, RVC names), 'iteration',
    'optimizer', 'learning_rate'}; write_config also writes config.json beside it (RVC's logs/<exp>/ layout)."""
    import json

    opt_state = optimizer.state_dict() if isinstance(optimizer, torch.optim.Optimizer) else dict(optimizer or {})
    state = {k: v.detach().cpu().clone() for k, v in net.rvc_state(include_posterior=True).items()}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    torch.save({"model": state, "iteration": int(iteration), "optimizer": opt_state,
                "learning_rate": float(learning_rate)}, os.fspath(path))
    if write_config:
        beside = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        with open(beside, "w", encoding="utf-8") as f:
            json.dump(rvc_training_config(net.hp), f, indent=2)
