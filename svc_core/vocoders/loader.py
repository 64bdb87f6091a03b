"""Load an openvpi NSF-HiFiGAN mel vocoder: `model` (torch.save({'generator': state_dict})) + config.json beside it.

Read safely (svc_core.safe_load.load_torch, never unpickling code), checked against its config.json (messages name
the file and the field), weight norm folded for inference. Upstream's place: pretrain/nsf_hifigan/{model,config.json}
(openvpi's nsf_hifigan_20221211.zip).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..config import FieldReader, read_config_json
from ..errors import ModelError, OptionError
from ..models.weight_norm import fold_weight_norm, to_internal, to_upstream_key
from ..safe_load import load_torch
from .nsf_hifigan import VOCODER_KINDS, NsfHifiGAN, VocoderConfig

MODEL_FILE = "model"  # openvpi's file name (no extension)
CONFIG_FILE = "config.json"
WHAT = "NSF-HiFiGAN vocoder"
WHERE = ("Put openvpi's nsf_hifigan_20221211 files (`model` and `config.json`) together in one folder "
         "(upstream: pretrain/nsf_hifigan/).")

# config.json field -> kind (svc_core.config.FieldReader.check)
_FIELDS: dict[str, str] = {
    "sampling_rate": "int", "num_mels": "int", "n_fft": "int", "win_size": "int", "hop_size": "int",
    "fmin": "float", "fmax": "float", "upsample_rates": "ints", "upsample_kernel_sizes": "ints",
    "upsample_initial_channel": "int", "resblock": "str", "resblock_kernel_sizes": "ints",
    "resblock_dilation_sizes": "int_lists",
}
# state-dict prefix -> the config fields that set its shape (named when keys or shapes disagree)
_KEY_FIELDS = (("conv_pre.", "num_mels / upsample_initial_channel"),
               ("ups.", "upsample_rates / upsample_kernel_sizes / upsample_initial_channel"),
               ("noise_convs.", "upsample_rates / upsample_initial_channel"),
               ("resblocks.", "resblock / resblock_kernel_sizes / resblock_dilation_sizes"),
               ("conv_post.", "upsample_rates / upsample_initial_channel"),
               ("m_source.", "(harmonic source: fixed at 9 harmonics)"))


@dataclass(frozen=True)
class VocoderNeeds:
    """What the caller's model expects of the vocoder (e.g. a diffusion config's sampling_rate / block_size and
    its 128 mel bins); `source` names that file in messages."""
    sample_rate: int | None = None
    hop_size: int | None = None
    n_mels: int | None = None
    source: str = "the diffusion model's config"


def resolve_model_file(path: str | os.PathLike) -> Path:
    """The `model` file for `path` = the file itself or the folder holding it; ModelError when missing."""
    p = Path(path)
    if p.is_dir():
        if not (p / MODEL_FILE).is_file():
            found = sorted(x.name for x in p.iterdir())[:10]
            raise ModelError(f"{WHAT} folder '{p}' has no '{MODEL_FILE}' file (found {found or 'nothing'}). " + WHERE)
        return p / MODEL_FILE
    if not p.is_file():
        raise ModelError(f"{WHAT} '{p}' does not exist. " + WHERE)
    return p


def config_beside(model: Path) -> Path:
    """config.json in the model file's folder; ModelError when it is not there."""
    config = model.parent / CONFIG_FILE
    if not config.is_file():
        raise ModelError(f"{WHAT} '{model.name}' needs its {CONFIG_FILE} beside it, in '{model.parent}'; none is "
                         "there. " + WHERE)
    return config


def vocoder_config_from_dict(doc: Any, source: str = CONFIG_FILE) -> VocoderConfig:
    """VocoderConfig from a parsed openvpi config.json; ModelError naming `source` and the field."""
    r = FieldReader(source)
    if not isinstance(doc, Mapping):
        raise ModelError(f"{source} must hold a JSON object (the vocoder's settings), not {type(doc).__name__}.")
    v = {key: r.get(doc, "config", key, kind) for key, kind in _FIELDS.items()}
    tup = {k: tuple(v[k]) for k in ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes")}
    dilations = tuple(tuple(d) for d in v["resblock_dilation_sizes"])
    cfg = VocoderConfig(**{**v, **tup, "resblock_dilation_sizes": dilations})
    fail = lambda field, problem: ModelError(f"{source}: {field} {problem}.")
    if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
        raise fail("upsample_kernel_sizes", f"has {len(cfg.upsample_kernel_sizes)} entries but upsample_rates "
                   f"{len(cfg.upsample_rates)}; they pair up one to one")
    if math.prod(cfg.upsample_rates) != cfg.hop_size:
        raise fail("hop_size", f"is {cfg.hop_size} but upsample_rates {list(cfg.upsample_rates)} multiply to "
                   f"{math.prod(cfg.upsample_rates)}; the generator makes hop_size samples per mel frame")
    if len(cfg.resblock_dilation_sizes) != len(cfg.resblock_kernel_sizes):
        raise fail("resblock_dilation_sizes", f"has {len(cfg.resblock_dilation_sizes)} lists but "
                   f"resblock_kernel_sizes {len(cfg.resblock_kernel_sizes)} entries")
    if cfg.resblock not in ("1", "2"):
        raise fail("resblock", f'must be "1" or "2", not {cfg.resblock!r}')
    if cfg.win_size > cfg.n_fft:
        raise fail("win_size", f"({cfg.win_size}) is larger than n_fft ({cfg.n_fft})")
    if not 0 <= cfg.fmin < cfg.fmax <= cfg.sampling_rate / 2:
        raise fail("fmin/fmax", f"({cfg.fmin}, {cfg.fmax}) must satisfy 0 <= fmin < fmax <= sampling_rate / 2")
    if cfg.upsample_initial_channel % (2 ** len(cfg.upsample_rates)):
        raise fail("upsample_initial_channel", f"({cfg.upsample_initial_channel}) must be divisible by "
                   f"2^{len(cfg.upsample_rates)} (it halves at every upsampling)")
    return cfg


def _what_it_is(obj: Any) -> str:
    """A sentence naming the kind of checkpoint that is not a vocoder, or ''."""
    if not isinstance(obj, Mapping):
        return ""
    inner = obj.get("model")
    keys = [str(k) for k in (inner if isinstance(inner, Mapping) else obj)]
    if any(k.startswith(("enc_p.", "emb_g.", "dec.", "flow.")) for k in keys):
        return ("It is a so-vits-svc voice model (G_*.pth), not a vocoder; the mel vocoder is openvpi's "
                "NSF-HiFiGAN `model` file.")
    if any(k.startswith(("decoder.", "unit_embed.")) for k in keys):
        return "It is a shallow-diffusion model (model_*.pt); give it as the diffusion model, not as the vocoder."
    if any(k.startswith(("discriminators.", "msd.", "mpd.")) for k in keys):
        return "It is a discriminator checkpoint; the vocoder is the file holding the generator."
    return ""


def read_vocoder_state(path: Path) -> dict[str, torch.Tensor]:
    """The generator state dict of an openvpi `model` file ({'generator': state_dict}), upstream key names."""
    obj = load_torch(path, what=WHAT)
    if isinstance(obj, Mapping) and isinstance(obj.get("generator"), Mapping):
        state = obj["generator"]
    else:
        hint = _what_it_is(obj)
        shown = list(obj)[:6] if isinstance(obj, Mapping) else type(obj).__name__
        raise ModelError(f"{WHAT} '{path.name}' has no 'generator' entry (found {shown}). " + (hint or WHERE))
    bad = [k for k, t in state.items() if not isinstance(k, str) or not isinstance(t, torch.Tensor)]
    if bad:
        raise ModelError(f"{WHAT} '{path.name}': generator entries {bad[:5]} are not named tensors; the file is "
                         "damaged or not a vocoder.")
    return dict(state)


def _field_for(key: str) -> str:
    return next((fields for prefix, fields in _KEY_FIELDS if key.startswith(prefix)), "the layout")


def check_state(model: NsfHifiGAN, state: Mapping[str, torch.Tensor], model_name: str, config_name: str) -> None:
    """ModelError naming keys, shapes and config.json fields when `state` does not fit the config's generator."""
    own = {to_upstream_key(k): v for k, v in model.generator.state_dict().items()}
    if not any(k.endswith(".weight_g") for k in state):  # weight norm already removed: plain '.weight' keys
        own = {(k[:-2] if k.endswith(".weight_v") else k): v for k, v in own.items() if not k.endswith(".weight_g")}
    missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or extra:
        keys = (missing or extra)[:4]
        fields = sorted({_field_for(k) for k in keys})
        raise ModelError(f"{WHAT} '{model_name}' does not match {config_name}: "
                         + (f"missing {missing[:4]}{' ...' if len(missing) > 4 else ''}; " if missing else "")
                         + (f"unexpected {extra[:4]}{' ...' if len(extra) > 4 else ''}; " if extra else "")
                         + f"check {config_name} fields {', '.join(fields)} (use the config.json that came with "
                         "this model).")
    for key, want in own.items():
        got = state[key]
        if tuple(got.shape) != tuple(want.shape):
            raise ModelError(f"{WHAT} '{model_name}': {key} has shape {list(got.shape)}, {config_name} gives "
                             f"{list(want.shape)}; check {config_name} fields {_field_for(key)}.")


def _check_needs(cfg: VocoderConfig, needs: VocoderNeeds, config_name: str) -> None:
    for field, have, want in (("sampling_rate", cfg.sampling_rate, needs.sample_rate),
                              ("hop_size", cfg.hop_size, needs.hop_size), ("num_mels", cfg.num_mels, needs.n_mels)):
        if want is not None and have != want:
            raise ModelError(f"The vocoder's {config_name} has {field} {have}, but {needs.source} needs {want}: "
                             "use the vocoder the diffusion model was trained with (upstream: openvpi "
                             "nsf_hifigan_20221211, 44100 Hz, hop 512, 128 mels).")


def load_mel_vocoder(path: str | os.PathLike, kind: str = "nsf-hifigan", device: str | torch.device = "cpu",
                     needs: VocoderNeeds | None = None) -> NsfHifiGAN:
    """The vocoder at `path` (its `model` file or the folder holding it and config.json), in eval mode on `device`.

    kind: "nsf-hifigan" (natural-log mel) or "nsf-hifigan-log10". needs: what the caller's model expects.
    Loading does not consume torch's global RNG (upstream's lazy load on the first vocoder call does)."""
    if kind not in VOCODER_KINDS:
        raise OptionError(f"Unknown vocoder type '{kind}'; choose one of {', '.join(VOCODER_KINDS)}.")
    model_path = resolve_model_file(path)
    state = read_vocoder_state(model_path)  # first: a so-vits or diffusion model given here is named as such
    config_path = config_beside(model_path)
    config_name = f"'{config_path}'"
    cfg = vocoder_config_from_dict(read_config_json(config_path), source=str(config_path))
    if needs is not None:
        _check_needs(cfg, needs, config_name)
    with torch.random.fork_rng(devices=[]):  # the random init (overwritten below) leaves the global RNG alone
        vocoder = NsfHifiGAN(cfg, kind)
    check_state(vocoder, state, model_path.name, config_name)
    gen = vocoder.generator
    if any(k.endswith(".weight_g") for k in state):
        gen.load_state_dict(to_internal(gen, state), strict=True)
        fold_weight_norm(gen)
    else:
        fold_weight_norm(gen)
        gen.load_state_dict(state, strict=True)
    return vocoder.eval().to(device)
