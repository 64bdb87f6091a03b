"""G_*.pth generator checkpoints: safe reading, option detection from shapes, validation, loading, saving.

Upstream loads checkpoints leniently (a tensor whose shape does not match is silently re-initialised);
here every mismatch between config.json and the tensors is an error that names the field to fix.
"""
from __future__ import annotations

import os
import re
from typing import Any, Mapping

import torch

from .config import ENCODER_DIMS, SvcConfig, load_config
from .errors import EncoderMismatchError, ModelError
from .models.state_io import release_state
from .safe_load import load_torch

__all__ = [
    "read_generator_state", "detect_options", "validate", "load_synthesizer", "save_generator_checkpoint",
    "build_synthesizer", "encoders_for_dim",
]

_TRAINING_KEYS = ("model", "iteration", "optimizer", "learning_rate")
_REQUIRED_KEYS = ("emb_g.weight", "pre.weight", "enc_p.proj.weight")
ADAMW_BETAS = (0.8, 0.99)  # train.betas of the upstream template
ADAMW_EPS = 1e-9  # train.eps of the upstream template


def _describe(obj: Any) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)[:8]
        return f"a dict with keys {keys}{' ...' if len(obj) > 8 else ''}"
    if isinstance(obj, torch.Tensor):
        return f"a single tensor of shape {list(obj.shape)}"
    return f"a {type(obj).__name__}"


def _other_model_hint(state: Mapping[str, Any]) -> str:
    keys = [str(k) for k in state]
    if any(k.startswith(("discriminators.", "module.discriminators.")) for k in keys):
        return " It is a discriminator (D_*.pth); load the matching G_*.pth instead."
    if any(k.startswith(("decoder.", "unit_embed")) for k in keys):
        return " It looks like a shallow-diffusion model (model_*.pt); it is loaded separately."
    if any(k.startswith("model.encoder.layers") or k.startswith("encoder.layers") for k in keys):
        return " It looks like a content encoder (HuBERT / ContentVec), not a voice model."
    return ""


def read_generator_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a generator checkpoint, keyed by upstream names (dtype as stored: fp32 or fp16).

    Accepts training checkpoints {'model','iteration','optimizer','learning_rate'}, release files (no enc_q),
    bare state dicts and a 'module.' prefix. Everything else raises ModelError saying what was found.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    obj = load_torch(path, what="generator checkpoint")
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        state = obj["model"]
    elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        state = obj
    elif isinstance(obj, Mapping) and isinstance(obj.get("weight"), Mapping) and "config" in obj:
        raise ModelError(f"'{name}' is an RVC model, not a so-vits-svc G_*.pth generator checkpoint.")
    else:
        raise ModelError(f"'{name}' is not a so-vits-svc generator checkpoint: it holds {_describe(obj)}, but a "
                         f"G_*.pth holds a dict with {list(_TRAINING_KEYS)} or a plain state dict of tensors.")
    if not all(isinstance(k, str) for k in state):
        raise ModelError(f"'{name}': the state dict has non-text keys; it is not a PyTorch module state dict.")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise ModelError(f"'{name}': state dict entries {not_tensors[:5]} are not tensors; the file is damaged "
                         "or not a generator checkpoint.")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise ModelError(f"'{name}' is not a so-vits-svc generator: it has no {missing} "
                         f"(found {_describe(state)}).{_other_model_hint(state)}")
    return dict(state)


# ------------------------------------------------------------------------------------------- detection


def encoders_for_dim(dim: int) -> list[str]:
    """Speech encoders (non-ONNX names) whose features are `dim` wide."""
    return [name for name, d in ENCODER_DIMS.items() if d == dim and not name.endswith("-onnx")]


def _count(state: Mapping[str, Any], prefix: str) -> int:
    """Number of distinct integer indices i among keys '<prefix>.<i>.*'."""
    pattern = re.compile(re.escape(prefix) + r"\.(\d+)\.")
    return len({m.group(1) for k in state if (m := pattern.match(k))})


def _weight_key(state: Mapping[str, Any], prefix: str) -> str:
    """'<prefix>.weight_v' (weight norm) or '<prefix>.weight' (folded)."""
    return f"{prefix}.weight_v" if f"{prefix}.weight_v" in state else f"{prefix}.weight"


def detect_options(state: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """Model options read from tensor names and shapes (spec b.6); works without a config.

    Returns the config "model" field names (ssl_dim, gin_channels, n_speakers, hidden_channels, ...), plus
    has_enc_q, dtype and `evidence` {field: "tensor [shape]"} used in error messages.
    """
    ev: dict[str, str] = {}
    out: dict[str, Any] = {}

    def take(name: str, key: str, dim: int) -> None:
        if key in state:
            out[name] = int(state[key].shape[dim])
            ev[name] = f"{key} {list(state[key].shape)}"

    take("n_speakers", "emb_g.weight", 0)
    take("gin_channels", "emb_g.weight", 1)
    take("hidden_channels", "pre.weight", 0)
    take("ssl_dim", "pre.weight", 1)
    take("filter_channels", "enc_p.enc_.ffn_layers.0.conv_1.weight", 0)
    take("kernel_size", "enc_p.enc_.ffn_layers.0.conv_1.weight", 2)
    take("upsample_initial_channel", _weight_key(state, "dec.conv_pre"), 0)
    if "enc_p.proj.weight" in state:
        out["inter_channels"] = int(state["enc_p.proj.weight"].shape[0]) // 2
        ev["inter_channels"] = f"enc_p.proj.weight {list(state['enc_p.proj.weight'].shape)} / 2"
    n_layers = _count(state, "enc_p.enc_.attn_layers")
    if n_layers:
        out["n_layers"], ev["n_layers"] = n_layers, f"{n_layers} enc_p.enc_.attn_layers"
    rel = "enc_p.enc_.attn_layers.0.emb_rel_k"
    if rel in state and "hidden_channels" in out:
        out["n_heads"] = out["hidden_channels"] // int(state[rel].shape[2])
        ev["n_heads"] = f"{rel} {list(state[rel].shape)}"
    n_ups = _count(state, "dec.ups")
    if n_ups:
        ks = [int(state[_weight_key(state, f"dec.ups.{i}")].shape[2]) for i in range(n_ups)]
        out["upsample_kernel_sizes"], ev["upsample_kernel_sizes"] = ks, "dec.ups.*.weight_v"
        n_res = _count(state, "dec.resblocks") // n_ups
        res1 = any(k.startswith("dec.resblocks.0.convs1.") for k in state)
        out["resblock"], ev["resblock"] = ("1" if res1 else "2"), "dec.resblocks.0 layers"
        conv = "convs1.0" if res1 else "convs.0"
        out["resblock_kernel_sizes"] = [
            int(state[_weight_key(state, f"dec.resblocks.{j}.{conv}")].shape[2]) for j in range(n_res)]
        ev["resblock_kernel_sizes"] = f"dec.resblocks.*.{conv}.weight_v"
    snake = any(k.startswith("dec.snakes.") for k in state)
    out["vocoder_name"] = "nsf-snake-hifigan" if snake else "nsf-hifigan"
    ev["vocoder_name"] = "dec.snakes.*" if snake else "no dec.snakes.*"
    flow_keys = [k for k in state if k.startswith("flow.")]
    out["vol_embedding"] = "emb_vol.weight" in state
    out["use_automatic_f0_prediction"] = any(k.startswith("f0_decoder.") for k in state)
    out["use_depthwise_conv"] = any(".depth_conv." in k for k in flow_keys)
    out["flow_share_parameter"] = any(k.startswith("flow.wn.") for k in flow_keys)
    out["use_transformer_flow"] = any(".cond_pre." in k for k in flow_keys)
    enc = "flow.wn" if out["flow_share_parameter"] else "flow.flows.0.enc"
    if out["use_transformer_flow"]:
        n_flows = len({m.group(1) for k in flow_keys if (m := re.match(r"flow\.flows\.(\d+)\.enc\.", k))})
        out["n_flow_layer"], ev["n_flow_layer"] = n_flows, f"{n_flows} transformer coupling layers"
        depth = _count(state, f"{enc}.self_attn_layers")
        out["n_layers_trans_flow"], ev["n_layers_trans_flow"] = depth, f"{depth} {enc}.self_attn_layers"
    else:
        depth = _count(state, f"{enc}.in_layers")
        if depth:
            out["n_flow_layer"], ev["n_flow_layer"] = depth, f"{depth} {enc}.in_layers"
    out["has_enc_q"] = any(k.startswith("enc_q.") for k in state)
    first = next((v for v in state.values() if v.is_floating_point()), None)
    out["dtype"] = first.dtype if first is not None else torch.float32
    out["evidence"] = ev
    return out


# ------------------------------------------------------------------------------------------- validation


def _shape(state: Mapping[str, torch.Tensor], key: str) -> str:
    return f"{key} {list(state[key].shape)}"


def _encoder_problem(config: SvcConfig, found: int, state: Mapping[str, torch.Tensor]) -> str | None:
    declared = ENCODER_DIMS[config.speech_encoder]
    if declared == found:
        return None
    names = " or ".join(encoders_for_dim(found)) or "an unknown encoder's"
    how = ("guessed from model.ssl_dim because the config has no model.speech_encoder"
           if config.speech_encoder_inferred else "config.json says")
    return (f"{how} speech_encoder {config.speech_encoder} ({declared}-dim) but this checkpoint takes {found}-dim "
            f"features ({_shape(state, 'pre.weight')}): it is a {names} model; set model.speech_encoder "
            f"(and model.ssl_dim to {found})")


def _problems(config: SvcConfig, state: Mapping[str, torch.Tensor]) -> tuple[list[str], bool]:
    """(human-readable mismatches, whether the speech encoder is one of them)."""
    found = detect_options(state)
    hp = config.model
    out: list[str] = []
    evidence = found["evidence"]
    encoder_problem = _encoder_problem(config, found["ssl_dim"], state)
    if encoder_problem and hp.ssl_dim == ENCODER_DIMS[config.speech_encoder]:
        out.append(encoder_problem)
    elif hp.ssl_dim != found["ssl_dim"]:
        out.append(f"config.json model.ssl_dim is {hp.ssl_dim} but the checkpoint takes {found['ssl_dim']}-dim "
                   f"content features ({_shape(state, 'pre.weight')}); set model.ssl_dim to {found['ssl_dim']}"
                   + (f" and model.speech_encoder to {' or '.join(encoders_for_dim(found['ssl_dim']))}"
                      if encoder_problem else ""))
    if hp.n_speakers != found["n_speakers"]:
        out.append(f"config.json model.n_speakers is {hp.n_speakers} but the checkpoint has {found['n_speakers']} "
                   f"speaker embeddings ({_shape(state, 'emb_g.weight')}); set model.n_speakers to "
                   f"{found['n_speakers']}")
    labels = {
        "gin_channels": "speaker embedding width", "hidden_channels": "hidden width",
        "inter_channels": "latent width", "filter_channels": "attention FFN width", "n_layers": "encoder layers",
        "n_heads": "attention heads", "kernel_size": "FFN kernel size",
        "upsample_initial_channel": "decoder width", "upsample_kernel_sizes": "upsample kernel sizes",
        "resblock_kernel_sizes": "resblock kernel sizes", "resblock": "resblock type",
        "n_flow_layer": "flow depth", "n_layers_trans_flow": "transformer-flow layers", "vocoder_name": "vocoder",
    }
    for key, label in labels.items():
        if key in found and getattr(hp, key) != found[key]:
            want = found[key]
            out.append(f"config.json model.{key} is {_js(getattr(hp, key))} but the checkpoint's {label} is "
                       f"{_js(want)} ({evidence[key]}); set model.{key} to {_js(want)}")
    flags = {
        "vol_embedding": "emb_vol.weight", "use_automatic_f0_prediction": "f0_decoder.*",
        "use_depthwise_conv": "depth_conv/point_conv WN layers", "flow_share_parameter": "flow.wn.*",
        "use_transformer_flow": "cond_pre in flow layers",
    }
    for key, what in flags.items():
        if getattr(hp, key) != found[key]:
            has = "has" if found[key] else "has no"
            out.append(f"config.json model.{key} is {_js(getattr(hp, key))} but the checkpoint {has} {what}; "
                       f"set model.{key} to {_js(found[key])}")
    for name, sid in config.spk.items():
        if sid >= found["n_speakers"]:
            out.append(f'config.json spk["{name}"] is {sid} but the checkpoint has only {found["n_speakers"]} '
                       f"speaker embeddings (ids 0..{found['n_speakers'] - 1}); fix the spk map")
    return out, bool(encoder_problem)


def _js(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def validate(config: SvcConfig, state: Mapping[str, torch.Tensor]) -> None:
    """Raise ModelError (EncoderMismatchError for the content-feature width) listing every config field that
    does not match the checkpoint's tensors, with both values and the fix."""
    problems, encoder = _problems(config, state)
    if not problems:
        return
    head = f"{os.path.basename(config.path)} does not match the checkpoint:\n  - "
    error = EncoderMismatchError if encoder else ModelError
    raise error(head + "\n  - ".join(problems))


def _check_shapes(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Every tensor the model expects must have the stored shape (catches anything validate() did not name)."""
    expected = model.upstream_state_dict()
    wrong = [f"{k}: file {list(v.shape)}, config gives {list(expected[k].shape)}"
             for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k].shape)]
    if wrong:
        raise ModelError("The checkpoint's tensor shapes do not match what config.json describes ("
                         + "; ".join(wrong[:4]) + (" ..." if len(wrong) > 4 else "")
                         + "). Use the config.json that was trained with this G_*.pth.")


# ------------------------------------------------------------------------------------------- loading


def build_synthesizer(config: SvcConfig) -> torch.nn.Module:
    """A fresh SynthesizerTrn for a config (random weights, training layout with weight norm)."""
    from .models.synthesizer import SynthesizerTrn

    return SynthesizerTrn(config.filter_length // 2 + 1, config.segment_size // config.hop_length,
                          **config.model.kwargs())


def load_synthesizer(checkpoint_path: str | os.PathLike, config_path: str | os.PathLike,
                     device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load G_*.pth + config.json: checked against each other, float32, eval mode, weight norm folded.

    The returned module carries the parsed config as `.config` (SvcConfig). A config with a "worldvoice"
    section loads a WORLD voice (svc_core.worldvoice) instead, behind the same `infer` seam.
    """
    config = load_config(config_path)
    from .worldvoice.model import is_world_config, load_world_voice  # a WORLD voice: W_*.pth + its config

    if is_world_config(config):
        return load_world_voice(checkpoint_path, config, device)
    state = read_generator_state(checkpoint_path)
    validate(config, state)
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    model = build_synthesizer(config)
    _check_shapes(model, state)
    model.load_upstream_state_dict(state)
    model.fold_weight_norm()  # a folded model still writes weight_g / weight_v in upstream_state_dict()
    model = model.float().eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    model.config = config
    return model


def save_generator_checkpoint(model: torch.nn.Module, path: str | os.PathLike, iteration: int = 0,
                              optimizer: torch.optim.Optimizer | Mapping[str, Any] | None = None,
                              lr: float = 1e-4, release: bool = False, half: bool = False) -> None:
    """Write upstream's G_*.pth layout {'model','iteration','optimizer','learning_rate'}.

    release=True drops every enc_q tensor (as compress_model.py does), half=True stores floats as fp16.
    Without an optimizer a fresh AdamW state (empty) is written, like upstream's release files.
    """
    state = model.upstream_state_dict()
    if release:
        state = release_state(state)
    state = {k: v.detach().cpu().clone() for k, v in state.items()}
    if half:
        state = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    if optimizer is None:
        params = [p for p in model.parameters()] or [torch.nn.Parameter(torch.zeros(1))]
        optimizer = torch.optim.AdamW(params, lr, betas=ADAMW_BETAS, eps=ADAMW_EPS)
    opt_state = optimizer.state_dict() if hasattr(optimizer, "state_dict") else dict(optimizer)
    torch.save({"model": state, "iteration": int(iteration), "optimizer": opt_state, "learning_rate": float(lr)},
               os.fspath(path))

