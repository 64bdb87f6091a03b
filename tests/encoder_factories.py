"""Builders of content-encoder checkpoints in the exact fairseq ContentVec "legacy" layout, random weights.

The real files (checkpoint_best_legacy_500.pt, 380 MB) cannot be downloaded here; these small ones have the same
top-level dict (args None, cfg as a plain dict, model state, task_state holding a fairseq Dictionary) and
fairseq's key names, so they go through exactly the loader users' files go through.
"""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import torch

from svc_core.encoders.hubert_config import HubertArch
from svc_core.encoders.hubert_fairseq import HubertModel

SMALL_CONV = "[(48,10,5)] + [(48,3,2)] * 4 + [(48,2,2)] * 2"


def _fairseq_dictionary(n_units: int):
    """An instance of a class pickled as fairseq.data.dictionary.Dictionary (registered only while saving)."""
    module = types.ModuleType("fairseq.data.dictionary")
    cls = type("Dictionary", (), {"__module__": "fairseq.data.dictionary"})
    module.Dictionary = cls
    d = cls()
    d.symbols = ["<s>", "<pad>", "</s>", "<unk>"] + [str(i) for i in range(n_units)]
    d.count = [1] * len(d.symbols)
    d.indices = {s: i for i, s in enumerate(d.symbols)}
    d.bos_index, d.pad_index, d.eos_index, d.unk_index, d.nspecial = 0, 1, 2, 3, 4
    return module, d


def make_contentvec_checkpoint(path: str | os.PathLike, *, embed_dim: int = 64, final_dim: int = 256,
                               layers: int = 12, heads: int = 4, ffn_dim: int = 128, seed: int = 0,
                               conv_feature_layers: str = SMALL_CONV, n_units: int = 500) -> Path:
    """Write a random ContentVec-layout checkpoint; vec256l9 on it gives `final_dim`, vec768l12 `embed_dim`."""
    fields = {
        "_name": "hubert", "label_rate": -1.0, "extractor_mode": "default", "encoder_layers": layers,
        "encoder_embed_dim": embed_dim, "encoder_ffn_embed_dim": ffn_dim, "encoder_attention_heads": heads,
        "activation_fn": "gelu", "layer_type": "transformer", "final_dim": final_dim, "untie_final_proj": False,
        "layer_norm_first": False, "conv_feature_layers": conv_feature_layers, "conv_bias": False,
        "conv_pos": 128, "conv_pos_groups": 16, "conv_pos_batch_norm": False, "required_seq_len_multiple": 2,
        "pos_enc_type": "abs", "feature_grad_mult": 1.0, "target_glu": False,
    }
    torch.manual_seed(seed)
    model = HubertModel(HubertArch.from_fields(fields, num_labels=n_units + 4)
                        if "num_labels" in HubertArch.__dataclass_fields__ else HubertArch.from_fields(fields))
    with torch.no_grad():
        for p in model.parameters():  # make every tensor matter (fairseq init leaves zeros and ones)
            p.add_(torch.randn_like(p) * 0.05)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    module, dictionary = _fairseq_dictionary(n_units)
    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    sys.modules.update({"fairseq": types.ModuleType("fairseq"), "fairseq.data": types.ModuleType("fairseq.data"),
                        "fairseq.data.dictionary": module})
    try:
        checkpoint = {
            "args": None,
            "cfg": {"_name": None, "model": fields, "task": {"_name": "hubert_pretraining", "labels": ["km"],
                                                             "sample_rate": 16000, "normalize": False}},
            "model": state, "criterion": None,
            "optimizer_history": [{"criterion_name": "HubertCriterion", "optimizer_name": "Adam",
                                   "lr_scheduler_state": {"best": None}, "num_updates": 0}],
            "task_state": {"dictionaries": [dictionary]},
            "extra_state": {"train_iterator": {"epoch": 0, "iterations_in_epoch": 0}},
            "last_optimizer_state": None,
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, path)
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m
    return path
