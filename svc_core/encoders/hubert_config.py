"""The architecture fields of a fairseq HuBERT / ContentVec checkpoint, read from its stored config.

fairseq stores the model config either as `checkpoint['cfg']['model']` (a plain dict, fairseq >= 0.10) or, in
older files, as an argparse Namespace in `checkpoint['args']` with `cfg` None. Missing fields take fairseq's
HubertConfig defaults. Only the fields that change the forward pass or the parameter layout are kept.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..errors import ModelError
from .conv_spec import ConvLayerSpec, parse_conv_layers

DEFAULT_CONV_LAYERS = "[(512,10,5)] + [(512,3,2)] * 4 + [(512,2,2)] * 2"
CONTENTVEC_LABELS = 504  # legacy ContentVec: 500 k-means units + 4 dictionary specials


@dataclasses.dataclass(frozen=True)
class HubertArch:
    """Shape-and-behaviour settings of a HuBERT model (fairseq HubertConfig field names)."""

    encoder_layers: int = 12
    encoder_embed_dim: int = 768
    encoder_ffn_embed_dim: int = 3072
    encoder_attention_heads: int = 12
    conv_feature_layers: str = DEFAULT_CONV_LAYERS
    extractor_mode: str = "default"  # "default": GroupNorm on conv 0; "layer_norm": LayerNorm on every conv
    conv_bias: bool = False
    layer_norm_first: bool = False  # False: post-LN layers, encoder.layer_norm applied before layer 1
    final_dim: int = 0  # 0 means encoder_embed_dim
    untie_final_proj: bool = False
    conv_pos: int = 128  # kernel of the positional convolution
    conv_pos_groups: int = 16
    required_seq_len_multiple: int = 2
    activation_fn: str = "gelu"
    layer_type: str = "transformer"
    pos_enc_type: str = "abs"
    conv_pos_batch_norm: bool = False
    num_labels: int = CONTENTVEC_LABELS  # rows of label_embs_concat (from the task dictionary; unused here)
    num_dictionaries: int = 1

    @property
    def conv_layers(self) -> list[ConvLayerSpec]:
        return parse_conv_layers(self.conv_feature_layers)

    @property
    def conv_dim(self) -> int:
        """Channels leaving the conv stack (C_conv)."""
        return self.conv_layers[-1][0]

    @property
    def proj_dim(self) -> int:
        """Output width of final_proj."""
        base = self.final_dim if self.final_dim > 0 else self.encoder_embed_dim
        return base * self.num_dictionaries if self.untie_final_proj else base

    @property
    def label_dim(self) -> int:
        return self.final_dim if self.final_dim > 0 else self.encoder_embed_dim

    def validate(self) -> "HubertArch":
        """Refuse settings this fairseq-free implementation does not reproduce."""
        unsupported = {
            "extractor_mode": (self.extractor_mode, ("default", "layer_norm")),
            "activation_fn": (self.activation_fn, ("gelu",)),
            "layer_type": (self.layer_type, ("transformer",)),
            "pos_enc_type": (self.pos_enc_type, ("abs",)),
            "conv_pos_batch_norm": (self.conv_pos_batch_norm, (False,)),
        }
        for field, (value, allowed) in unsupported.items():
            if value not in allowed:
                raise ModelError(
                    f"This HuBERT checkpoint uses {field}={value!r}, which svc_core does not support "
                    f"(supported: {', '.join(map(repr, allowed))})."
                )
        if self.encoder_embed_dim % self.encoder_attention_heads:
            raise ModelError(
                f"encoder_embed_dim {self.encoder_embed_dim} is not divisible by "
                f"encoder_attention_heads {self.encoder_attention_heads}; the checkpoint config is inconsistent."
            )
        self.conv_layers  # parses (and checks) the conv spec
        return self

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any], **overrides: Any) -> "HubertArch":
        """Build from a cfg['model'] dict or a Namespace's __dict__; unknown fields are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in fields.items() if k in names}
        kwargs.update(overrides)
        try:
            arch = cls(**kwargs)
        except TypeError as err:
            raise ModelError(f"HuBERT config is malformed: {err}") from None
        return arch.validate()


def model_fields(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The model-config fields of a loaded fairseq checkpoint dict (cfg['model'] or args.__dict__)."""
    cfg = checkpoint.get("cfg")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
        return dict(cfg["model"])
    args = checkpoint.get("args")
    if args is not None and isinstance(getattr(args, "__dict__", None), dict):
        return dict(vars(args))
    if isinstance(args, Mapping):
        return dict(args)
    raise ModelError(
        "This file has no HuBERT model config (neither cfg['model'] nor args); it is not a fairseq "
        "HuBERT/ContentVec checkpoint."
    )
