"""FCPE weights files: torchfcpe's own format loads through safe_load; so-vits' fcpe.pt layout is explained."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from svc_core.errors import ModelError
from svc_core.f0 import get_predictor

from .conftest import SR


def test_torchfcpe_format_file_matches_bundled(tmp_path, tone):
    bundled = get_predictor("fcpe")
    path = tmp_path / "fcpe_torchfcpe.pt"
    torch.save({"config_dict": bundled.model.args_dict, "model": bundled.model.model.state_dict()}, path)
    from_file = get_predictor("fcpe", weights_path=path)
    wav = tone.wav[: SR // 2]
    np.testing.assert_array_equal(from_file.compute_raw_f0(wav), bundled.compute_raw_f0(wav))


def test_sovits_fcpe_layout_is_refused_with_reason(tmp_path):
    path = tmp_path / "fcpe.pt"
    config = {"model": {"type": "CFNaiveMelPE", "out_dims": 360}, "mel": {"sampling_rate": 16000}}
    torch.save({"config": config, "model": {"stack.0.weight": torch.zeros(4, 128, 3)}}, path)
    with pytest.raises(ModelError, match="so-vits-svc's fcpe.pt"):
        get_predictor("fcpe", weights_path=path)
