"""config.json parsing: 4.0/4.1 layouts, field type errors, JSON errors, speaker lookup, writing back."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from factories import make_config_dict
from svc_core.config import ModelHParams, SvcConfig, config_from_dict, load_config
from svc_core.errors import ModelError, SpeakerError


def _write(tmp_path: Path, doc) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc, indent=2) if not isinstance(doc, str) else doc)
    return path


def test_41_config_fields(tmp_path: Path) -> None:
    doc = make_config_dict(speech_encoder="hubertsoft", n_speakers=3, vol_embedding=True)
    cfg = load_config(_write(tmp_path, doc))
    assert isinstance(cfg, SvcConfig) and isinstance(cfg.model, ModelHParams)
    assert (cfg.sampling_rate, cfg.hop_length, cfg.filter_length, cfg.win_length) == (44100, 512, 2048, 2048)
    assert cfg.segment_size == 10240 and cfg.unit_interpolate_mode == "nearest"
    assert cfg.speech_encoder == "hubertsoft" and not cfg.speech_encoder_inferred and cfg.version == "4.1"
    assert cfg.model.ssl_dim == 256 and cfg.model.gin_channels == 32 and cfg.model.vol_embedding
    assert cfg.spk == {"spk0": 0, "spk1": 1, "spk2": 2} and cfg.n_speakers == 3
    assert cfg.raw["train"]["batch_size"] == 6


@pytest.mark.parametrize("ssl_dim,encoder", [(256, "vec256l9"), (768, "vec768l12")])
def test_40_config_defaults(tmp_path: Path, ssl_dim: int, encoder: str) -> None:
    cfg = load_config(_write(tmp_path, make_config_dict(config_version="4.0", ssl_dim=ssl_dim)))
    assert cfg.version == "4.0" and cfg.speech_encoder == encoder and cfg.speech_encoder_inferred
    assert cfg.unit_interpolate_mode == "left"
    m = cfg.model
    assert (m.vol_embedding, m.use_depthwise_conv, m.flow_share_parameter, m.use_transformer_flow) == (False,) * 4
    assert m.use_automatic_f0_prediction and m.n_flow_layer == 4 and m.vocoder_name == "nsf-hifigan"


def test_40_config_unknown_dim_asks_for_encoder(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"model\.speech_encoder is missing and model\.ssl_dim is 1024"):
        load_config(_write(tmp_path, make_config_dict(config_version="4.0", ssl_dim=1024)))


def test_to_dict_round_trip_and_upgrade(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, make_config_dict(config_version="4.0", ssl_dim=256)))
    out = cfg.to_dict()
    assert set(out) == {"train", "data", "model", "spk"}
    assert out["model"]["speech_encoder"] == "vec256l9" and out["data"]["unit_interpolate_mode"] == "left"
    assert "sampling_rate" not in out["model"] and out["model"]["n_layers_q"] == 3  # unknown keys kept
    again = config_from_dict(out)
    assert again.model == cfg.model and again.speech_encoder == cfg.speech_encoder and again.spk == cfg.spk
    cfg.save(tmp_path / "saved.json")
    assert load_config(tmp_path / "saved.json").model == cfg.model


@pytest.mark.parametrize("section,key,value,expected", [
    ("model", "n_speakers", "two", 'model.n_speakers must be a positive whole number, got "two"'),
    ("model", "n_speakers", 2.5, "model.n_speakers must be a positive whole number, got 2.5"),
    ("model", "ssl_dim", True, "model.ssl_dim must be a positive whole number, got true"),
    ("model", "vol_embedding", "yes", 'model.vol_embedding must be true or false, got "yes"'),
    ("model", "upsample_rates", 512, "model.upsample_rates must be a list of positive whole numbers, got 512"),
    ("model", "upsample_kernel_sizes", [16, 16, "4", 4, 4], "model.upsample_kernel_sizes[2] must be a positive"),
    ("model", "resblock", "3", 'model.resblock must be "1" or "2"'),
    ("model", "speech_encoder", "contentvec9000", 'model.speech_encoder is "contentvec9000", which is not a known'),
    ("data", "hop_length", 256, "model.upsample_rates multiply to 512 but data.hop_length is 256"),
    ("data", "unit_interpolate_mode", "cubic", 'data.unit_interpolate_mode is "cubic"'),
])
def test_field_type_errors(tmp_path: Path, section: str, key: str, value, expected: str) -> None:
    doc = make_config_dict()
    doc[section][key] = value
    with pytest.raises(ModelError) as info:
        load_config(_write(tmp_path, doc))
    assert expected in str(info.value)
    assert str(info.value).startswith("config.json: ")


@pytest.mark.parametrize("section,key", [("model", "n_speakers"), ("model", "ssl_dim"), ("model", "gin_channels"),
                                         ("model", "inter_channels"), ("data", "hop_length")])
def test_missing_required_field(tmp_path: Path, section: str, key: str) -> None:
    doc = make_config_dict()
    del doc[section][key]
    with pytest.raises(ModelError, match=rf"{section}\.{key} is missing"):
        load_config(_write(tmp_path, doc))


def test_missing_section_and_not_an_object(tmp_path: Path) -> None:
    doc = make_config_dict()
    del doc["model"]
    with pytest.raises(ModelError, match='the "model" section is missing'):
        load_config(_write(tmp_path, doc))
    with pytest.raises(ModelError, match="must hold a JSON object"):
        load_config(_write(tmp_path, [1, 2]))


def test_spk_id_beyond_n_speakers(tmp_path: Path) -> None:
    doc = make_config_dict(n_speakers=2)
    doc["spk"]["extra"] = 2
    with pytest.raises(ModelError, match=r'spk\["extra"\] is 2 but model.n_speakers is 2'):
        load_config(_write(tmp_path, doc))


def test_invalid_json_names_line(tmp_path: Path) -> None:
    text = json.dumps(make_config_dict(), indent=2).splitlines()
    bad_line = next(i for i, line in enumerate(text) if '"n_speakers"' in line)
    text[bad_line] = text[bad_line].rstrip(",")  # drop a comma
    path = _write(tmp_path, "\n".join(text))
    with pytest.raises(ModelError) as info:
        load_config(path)
    assert "config.json is not valid JSON" in str(info.value)
    assert f"line {bad_line + 2}" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"   \n", b"\xff\xfe\x00garbage"], ids=["empty", "blank", "binary"])
def test_empty_or_binary_config(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(content)
    with pytest.raises(ModelError, match="config.json"):
        load_config(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_config(tmp_path / "config.json")


def test_speaker_id(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, make_config_dict(speakers={"alice": 0, "bob": 1}, n_speakers=2)))
    assert cfg.speaker_id("bob") == 1 and cfg.speaker_id(0) == 0 and cfg.speaker_id("1") == 1
    for bad in ("carol", 2, -1, True, "7"):
        with pytest.raises(SpeakerError) as info:
            cfg.speaker_id(bad)
        assert "alice (0), bob (1)" in str(info.value)


def test_only_speaker(tmp_path: Path) -> None:
    solo = load_config(_write(tmp_path, make_config_dict(speakers={"alice": 0}, n_speakers=1)))
    assert solo.only_speaker() == 0 and solo.speaker_id(None) == 0
    duo = load_config(_write(tmp_path, make_config_dict(speakers={"alice": 0, "bob": 1}, n_speakers=2)))
    with pytest.raises(SpeakerError, match=r"has 2 speakers: alice \(0\), bob \(1\)\. Choose one with -s"):
        duo.only_speaker("-s")
    with pytest.raises(SpeakerError, match=r"has 2 speakers: .*Choose one with a speaker name or id"):
        duo.speaker_id(None)
