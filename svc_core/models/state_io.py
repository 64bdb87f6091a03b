"""Read and write SynthesizerTrn weights in upstream so-vits-svc's state-dict layout (G_*.pth "model")."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from .weight_norm import to_internal, upstream_items

OPTIONAL_PREFIXES = ("enc_q.",)  # release checkpoints drop the posterior encoder
SHARED_FLOW_PREFIX = "flow.wn."  # flow_share_parameter: flow.flows.{k}.enc.* duplicate these
_SHOW = 5  # keys listed per category in error messages


def release_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`state` without what release checkpoints drop (the posterior encoder, enc_q: training only)."""
    return {key: value for key, value in state.items() if not key.startswith(OPTIONAL_PREFIXES)}


def upstream_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """model weights keyed and shaped like upstream's state_dict (detached copies not made; do not mutate)."""
    return {key: value.detach() for key, value in upstream_items(model).items()}


def _shared_duplicate(key: str, given: dict[str, torch.Tensor]) -> bool:
    """True when `key` is flow.flows.{k}.enc.X and the file has the shared flow.wn.X it duplicates."""
    parts = key.split(".")
    if len(parts) > 4 and parts[:2] == ["flow", "flows"] and parts[3] == "enc":
        return SHARED_FLOW_PREFIX + ".".join(parts[4:]) in given
    return False


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOW])
    return shown + (f" (and {len(keys) - _SHOW} more)" if len(keys) > _SHOW else "")


def _check(expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> None:
    missing = [k for k in expected if k not in given
               and not k.startswith(OPTIONAL_PREFIXES) and not _shared_duplicate(k, given)]
    unexpected = [k for k in given if k not in expected]
    wrong = [f"{k} {list(given[k].shape)} (model expects {list(expected[k].shape)})"
             for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    problems = []
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if wrong:
        problems.append(f"wrong shapes: {_listing(wrong)}")
    if problems:
        raise ModelError(
            "The checkpoint does not match the model built from its config.json: " + "; ".join(problems) + ". "
            "Make sure config.json is the one trained with this G_*.pth (speech_encoder, ssl_dim, n_speakers, "
            "vol_embedding, use_depthwise_conv, flow_share_parameter, use_transformer_flow, "
            "use_automatic_f0_prediction).")


def load_upstream(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy an upstream-keyed state dict into `model` (parametrised or folded); fp16 tensors are cast up."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError("The checkpoint's 'model' entry is not a dict of tensors; this is not a so-vits-svc G_*.pth.")
    expected = upstream_items(model)
    _check(expected, state)
    given = dict(state)
    for key in expected:  # shared flow: fill omitted duplicates from flow.wn.*
        if key not in given and _shared_duplicate(key, given):
            given[key] = given[SHARED_FLOW_PREFIX + ".".join(key.split(".")[4:])]
    given = {k: v.to(dtype=expected[k].dtype) if v.is_floating_point() else v for k, v in given.items()}
    internal = to_internal(model, given)
    result = model.load_state_dict(internal, strict=False)
    leftover = [k for k in result.missing_keys if not k.startswith(OPTIONAL_PREFIXES)]
    if leftover or result.unexpected_keys:
        raise ModelError(f"Internal key mapping failed (missing {leftover[:_SHOW]}, unexpected "
                         f"{result.unexpected_keys[:_SHOW]}); this is a bug in svc_core.models.")
