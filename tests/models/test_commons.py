"""Coarse pitch mapping and the f0-decoder log-pitch helpers (spec b.2 / b.4)."""
from __future__ import annotations

import torch

from svc_core.models import commons


def test_f0_to_coarse_edges_match_41_rules():
    f0 = torch.tensor([0.0, 30.0, 50.0, 1100.0, 1103.0, 1200.0, 5000.0])
    assert commons.f0_to_coarse(f0).tolist() == [1, 1, 1, 255, 255, 0, 0]


def test_f0_to_coarse_is_monotonic_in_range():
    coarse = commons.f0_to_coarse(torch.linspace(50, 1100, 4000))
    assert int(coarse.min()) == 1 and int(coarse.max()) == 255
    assert bool((coarse[1:] >= coarse[:-1]).all())
    assert len(torch.unique(coarse)) == 255


def test_lf0_round_trip_and_voiced_mean_removal():
    f0 = torch.tensor([[100.0, 200.0, 400.0, 800.0]])
    assert torch.allclose(commons.lf0_to_hz(commons.hz_to_lf0(f0)), f0, rtol=1e-5)
    lf0 = commons.hz_to_lf0(f0).unsqueeze(1)
    uv = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    norm = commons.normalize_lf0(lf0, torch.ones(1, 1, 4), uv)
    assert abs(float(norm[0, 0, :2].sum())) < 1e-6
    unvoiced = commons.normalize_lf0(lf0, torch.ones(1, 1, 4), torch.zeros(1, 4))
    assert torch.allclose(unvoiced, lf0)  # sum(uv) = 0: mean is 0 / 9999 = 0


def test_banded_attention_equals_the_whole_matrix_form_in_less_memory():
    """Inference attention (svc_core.models.banded_attention: relative terms on their band, queries in blocks)
    gives the numbers of the whole-matrix form (used with gradients and for ONNX export), across block edges, with
    a padding mask and for pieces shorter than the relative window."""
    from svc_core.models.attentions import MultiHeadAttention, whole_matrix_attention
    from svc_core.models.banded_attention import QUERY_BLOCK

    torch.manual_seed(0)
    for length, window in ((QUERY_BLOCK * 2 + 37, 10), (7, 10), (300, 4)):
        layer = MultiHeadAttention(64, 64, 2, window_size=window).eval()
        with torch.no_grad():  # sizeable relative tables, so the band matters
            layer.emb_rel_k.normal_(0, 1.0)
            layer.emb_rel_v.normal_(0, 1.0)
        x = torch.randn(1, 64, length)
        x_mask = torch.ones(1, 1, length)
        x_mask[..., length - 5:] = 0
        mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        with torch.enable_grad():
            whole = layer(x, x, mask)
        with torch.no_grad():
            banded = layer(x, x, mask)
            with whole_matrix_attention():  # upstream's form on request (bench baselines)
                upstream = layer(x, x, mask)
        assert torch.allclose(banded, whole, atol=1e-5), (length, (banded - whole).abs().max())
        assert torch.equal(upstream, whole)
