"""Weight normalisation that stays trainable and maps to upstream's `weight_g` / `weight_v` keys.

Modules are wrapped with `torch.nn.utils.parametrizations.weight_norm` (state-dict keys
`<m>.parametrizations.weight.original0` = g, `.original1` = v). Upstream so-vits-svc saved the old
`torch.nn.utils.weight_norm` layout (`<m>.weight_g`, `<m>.weight_v`); `to_upstream_key` /
`from_upstream_key` translate between the two. `fold_weight_norm` replaces each parametrisation by its
current value w = g * v / ||v|| (computed once, for inference); folded modules keep a marker so they
can still be written and read in the upstream layout (g = ||w||, v = w).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm as _param_weight_norm

_PARAM_G = ".parametrizations.weight.original0"
_PARAM_V = ".parametrizations.weight.original1"
_FOLDED_FLAG = "_svc_folded_weight_norm"


def weight_norm(module: nn.Module) -> nn.Module:
    """Wrap a conv/linear layer with weight norm over dim 0 (as upstream's `weight_norm(m)`)."""
    return _param_weight_norm(module, name="weight", dim=0)


def fold_weight_norm(model: nn.Module) -> int:
    """Replace every weight-norm parametrisation in `model` by the plain weight it computes; returns the count."""
    count = 0
    for module in model.modules():
        if parametrize.is_parametrized(module, "weight"):
            parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            setattr(module, _FOLDED_FLAG, True)
            count += 1
    return count


def is_folded(module: nn.Module) -> bool:
    """True for a module that was weight-normed and has been folded by `fold_weight_norm`."""
    return bool(getattr(module, _FOLDED_FLAG, False))


def norm_except_dim0(weight: torch.Tensor) -> torch.Tensor:
    """||w|| over every dim but 0, shaped like upstream's weight_g ([out, 1, 1] for a conv)."""
    return torch.norm_except_dim(weight, 2, 0)


def compose(weight_g: torch.Tensor, weight_v: torch.Tensor) -> torch.Tensor:
    """w = g * v / ||v||, the same kernel upstream's forward hook uses."""
    return torch._weight_norm(weight_v, weight_g, 0)


def to_upstream_key(key: str) -> str:
    """Our parametrised key -> upstream key (`a.parametrizations.weight.original0` -> `a.weight_g`)."""
    if key.endswith(_PARAM_G):
        return key[: -len(_PARAM_G)] + ".weight_g"
    if key.endswith(_PARAM_V):
        return key[: -len(_PARAM_V)] + ".weight_v"
    return key


def upstream_items(model: nn.Module) -> dict[str, torch.Tensor]:
    """model.state_dict() renamed to upstream keys; folded modules are expanded to (g = ||w||, v = w)."""
    folded = {name for name, m in model.named_modules(remove_duplicate=False) if is_folded(m)}
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        if leaf == "weight" and prefix in folded:
            out[prefix + ".weight_g"] = norm_except_dim0(value)
            out[prefix + ".weight_v"] = value.clone()
        else:
            out[to_upstream_key(key)] = value
    return out


def to_internal(model: nn.Module, upstream: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream-keyed tensors -> keys of model.state_dict() (parametrised or folded, whichever the model has)."""
    own = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in upstream.items():
        if key.endswith(".weight_g") or key.endswith(".weight_v"):
            prefix = key[: -len(".weight_g")]
            if prefix + _PARAM_G in own:
                out[prefix + (_PARAM_G if key.endswith("_g") else _PARAM_V)] = value
            elif prefix + ".weight" in own and key.endswith("_v") and prefix + ".weight_g" in upstream:
                out[prefix + ".weight"] = compose(upstream[prefix + ".weight_g"], value)
            continue
        out[key] = value
    return out
