"""config.json vs checkpoint mismatches and broken files give ModelError messages that name the field."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from factories import edit_config
from svc_core.checkpoint import load_synthesizer, read_generator_state, validate
from svc_core.config import load_config
from svc_core.errors import EncoderMismatchError, ModelError


def _load_error(g_path: Path, c_path: Path) -> str:
    with pytest.raises(ModelError) as info:
        load_synthesizer(g_path, c_path)
    return str(info.value)


def test_wrong_n_speakers(base_copy: tuple[Path, Path]) -> None:
    g, c = base_copy
    edit_config(c, n_speakers=4)
    msg = _load_error(g, c)
    assert "model.n_speakers is 4 but the checkpoint has 2 speaker embeddings (emb_g.weight [2, 32])" in msg
    assert "set model.n_speakers to 2" in msg


def test_speaker_id_beyond_checkpoint(base_copy: tuple[Path, Path]) -> None:
    g, c = base_copy
    doc = json.loads(c.read_text())
    doc["model"]["n_speakers"] = 3
    doc["spk"]["spk2"] = 2
    c.write_text(json.dumps(doc))
    msg = _load_error(g, c)
    assert 'spk["spk2"] is 2 but the checkpoint has only 2 speaker embeddings' in msg


def test_wrong_encoder_for_256_dim_checkpoint(base_model_256: tuple[Path, Path], tmp_path: Path) -> None:
    g, c = base_model_256
    doc = json.loads(c.read_text())
    doc["model"].update(speech_encoder="vec768l12", ssl_dim=768)
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(EncoderMismatchError) as info:
        load_synthesizer(g, tmp_path / "config.json")
    msg = str(info.value)
    assert "config.json says speech_encoder vec768l12 (768-dim) but this checkpoint takes 256-dim features " \
           "(pre.weight [32, 256, 5]): it is a vec256l9 or hubertsoft or phonevec256 model; set model.speech_encoder" in msg


def test_wrong_ssl_dim_only(base_copy: tuple[Path, Path]) -> None:
    g, c = base_copy
    edit_config(c, ssl_dim=256, speech_encoder="hubertsoft")
    with pytest.raises(EncoderMismatchError) as info:
        load_synthesizer(g, c)
    assert "speech_encoder hubertsoft (256-dim) but this checkpoint takes 768-dim features" in str(info.value)
    assert "vec768l12" in str(info.value)
    edit_config(c, ssl_dim=256, speech_encoder="vec768l12")
    msg = _load_error(g, c)
    assert "model.ssl_dim is 256 but the checkpoint takes 768-dim content features (pre.weight [32, 768, 5])" in msg


def test_40_config_guessed_encoder_mismatch(base_model_256: tuple[Path, Path], tmp_path: Path) -> None:
    """A 4.0 config (no speech_encoder) claiming 768 for a 256-dim checkpoint says the encoder was guessed."""
    g, c = base_model_256
    doc = json.loads(c.read_text())
    del doc["model"]["speech_encoder"]
    doc["model"]["ssl_dim"] = 768
    (tmp_path / "config.json").write_text(json.dumps(doc))
    with pytest.raises(EncoderMismatchError, match="guessed from model.ssl_dim"):
        load_synthesizer(g, tmp_path / "config.json")


@pytest.mark.parametrize("field,value,expected", [
    ("filter_channels", 128, "model.filter_channels is 128 but the checkpoint's attention FFN width is 64 "
                             "(enc_p.enc_.ffn_layers.0.conv_1.weight [64, 32, 3]); set model.filter_channels to 64"),
    ("vol_embedding", True, "model.vol_embedding is true but the checkpoint has no emb_vol.weight; "
                            "set model.vol_embedding to false"),
    ("use_automatic_f0_prediction", False, "model.use_automatic_f0_prediction is false but the checkpoint has "
                                           "f0_decoder.*"),
    ("use_depthwise_conv", True, "model.use_depthwise_conv is true"),
    ("flow_share_parameter", True, "model.flow_share_parameter is true but the checkpoint has no flow.wn.*"),
    ("use_transformer_flow", True, "model.use_transformer_flow is true"),
    ("n_flow_layer", 3, "model.n_flow_layer is 3 but the checkpoint's flow depth is 4"),
    ("gin_channels", 768, "model.gin_channels is 768 but the checkpoint's speaker embedding width is 32"),
    ("upsample_initial_channel", 512, "model.upsample_initial_channel is 512 but the checkpoint's decoder width "
                                      "is 64 (dec.conv_pre.weight_v [64, 32, 7])"),
    ("hidden_channels", 192, "model.hidden_channels is 192 but the checkpoint's hidden width is 32"),
])
def test_field_mismatch_named(base_copy: tuple[Path, Path], field: str, value, expected: str) -> None:
    g, c = base_copy
    edit_config(c, **{field: value})
    msg = _load_error(g, c)
    assert expected in msg
    assert "config.json does not match the checkpoint" in msg


def test_vol_embedding_missing_from_config(base_model_256: tuple[Path, Path], tmp_path: Path) -> None:
    g, c = base_model_256
    doc = json.loads(c.read_text())
    doc["model"]["vol_embedding"] = False
    (tmp_path / "config.json").write_text(json.dumps(doc))
    assert "model.vol_embedding is false but the checkpoint has emb_vol.weight; set model.vol_embedding to true" \
        in _load_error(g, tmp_path / "config.json")


def test_all_mismatches_reported_together(base_copy: tuple[Path, Path]) -> None:
    g, c = base_copy
    edit_config(c, n_speakers=3, filter_channels=32)
    msg = _load_error(g, c)
    assert "model.n_speakers" in msg and "model.filter_channels" in msg


def test_shape_mismatch_not_covered_by_fields(base_copy: tuple[Path, Path]) -> None:
    """upsample_rates change noise_conv shapes only; the generic shape check still catches it."""
    g, c = base_copy
    edit_config(c, upsample_rates=[8, 8, 4, 2, 1])
    msg = _load_error(g, c)
    assert "dec.noise_convs" in msg and "config.json" in msg


def test_validate_accepts_matching_pair(base_model: tuple[Path, Path]) -> None:
    g, c = base_model
    validate(load_config(c), read_generator_state(g))


# ------------------------------------------------------------------------------------ broken files


def test_truncated_checkpoint(base_model: tuple[Path, Path], tmp_path: Path) -> None:
    data = base_model[0].read_bytes()
    for cut in (len(data) // 2, 100):
        path = tmp_path / f"G_cut{cut}.pth"
        path.write_bytes(data[:cut])
        with pytest.raises(ModelError, match=path.name):
            read_generator_state(path)


@pytest.mark.parametrize("obj,hint", [
    ([torch.zeros(3)], "a list"),
    ({"net": {"w": torch.zeros(2)}, "epoch": 3}, "keys ['net', 'epoch']"),
    ({"weight": {"emb_g.weight": torch.zeros(1, 2)}, "config": [1, 2], "info": "x"}, "RVC"),
    ({"model": {"discriminators.0.convs.0.weight": torch.zeros(1)}, "iteration": 1}, "discriminator"),
    ({"model": {"decoder.x": torch.zeros(1), "unit_embed.weight": torch.zeros(1)}}, "shallow-diffusion"),
    ({"model": {"pre.weight": "text"}}, "not tensors"),
    (torch.zeros(4), "single tensor"),
], ids=["list", "other_dict", "rvc", "discriminator", "diffusion", "non_tensor", "tensor"])
def test_not_a_generator(tmp_path: Path, obj, hint: str) -> None:
    path = tmp_path / "G_1000.pth"
    torch.save(obj, path)
    with pytest.raises(ModelError) as info:
        read_generator_state(path)
    assert hint in str(info.value)
    assert "G_1000.pth" in str(info.value)


def test_missing_and_folder_paths(tmp_path: Path, base_model: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        read_generator_state(tmp_path / "nope.pth")
    with pytest.raises(ModelError, match="folder"):
        read_generator_state(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_synthesizer(base_model[0], tmp_path / "config.json")
