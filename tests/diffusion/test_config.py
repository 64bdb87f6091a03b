"""DiffusionConfig: upstream's config.yaml read, checked and written back; every refusal names file, field and fix."""
from __future__ import annotations

import copy

import pytest
import yaml

from svc_core.diffusion.config import (DiffusionConfig, diffusion_config_from_dict, load_diffusion_config,
                                       template_diffusion_config)
from svc_core.errors import FileLimitError, ModelError
from svc_core.file_limits import MAX_CONFIG_BYTES


@pytest.fixture(scope="module")
def dev_yaml(parity_dir):
    return parity_dir / "diffusion" / "models" / "diffusion_dev" / "config.yaml"


@pytest.fixture()
def doc():
    return template_diffusion_config("vec768l12", {"alto": 0, "tenor": 1}, n_layers=4, n_chans=64, n_hidden=64)


def test_reads_upstream_fixture(dev_yaml):
    cfg = load_diffusion_config(dev_yaml)
    assert (cfg.sampling_rate, cfg.block_size, cfg.encoder, cfg.encoder_out_channels) == (44100, 512, "vec768l12", 768)
    assert (cfg.encoder_sample_rate, cfg.encoder_hop_size, cfg.unit_interpolate_mode) == (16000, 320, "nearest")
    assert (cfg.n_layers, cfg.n_chans, cfg.n_hidden, cfg.use_pitch_aug) == (4, 64, 64, True)
    assert (cfg.timesteps, cfg.k_step_max, cfg.n_spk) == (1000, 0, 2)
    assert cfg.speakers == {"spk0": 0, "spk1": 1}
    assert (cfg.vocoder_type, cfg.vocoder_ckpt) == ("nsf-hifigan", "pretrain/nsf_hifigan/model")
    assert (cfg.infer_speedup, cfg.infer_method) == (10, "dpm-solver++")
    assert cfg.train["lr"] == 0.0001 and cfg.train["interval_force_save"] == 5000
    assert cfg.full_chain and cfg.max_k_step == 1000
    assert cfg.source == "config.yaml"


def test_written_back_unchanged(dev_yaml, tmp_path):
    original = yaml.safe_load(dev_yaml.read_text())
    cfg = load_diffusion_config(dev_yaml)
    assert cfg.to_dict() == original
    cfg.save(tmp_path / "config.yaml")
    again = load_diffusion_config(tmp_path / "config.yaml")
    assert again == cfg and yaml.safe_load((tmp_path / "config.yaml").read_text()) == original


@pytest.mark.parametrize("k_step_max,full,max_k", [(0, True, 1000), (100, False, 100), (999, False, 999),
                                                   (1000, True, 1000), (4000, True, 1000)])
def test_k_step_max_rules(doc, k_step_max, full, max_k):
    doc["model"]["k_step_max"] = k_step_max
    cfg = diffusion_config_from_dict(doc)
    assert (cfg.full_chain, cfg.max_k_step) == (full, max_k)


def test_template_follows_encoder_and_speakers():
    doc = template_diffusion_config("hubertsoft", {"a": 0, "b": 1, "c": 2})
    cfg = diffusion_config_from_dict(doc)
    assert (cfg.encoder, cfg.encoder_out_channels, cfg.n_spk) == ("hubertsoft", 256, 3)
    assert (cfg.n_layers, cfg.n_chans, cfg.n_hidden, cfg.timesteps, cfg.k_step_max) == (20, 512, 256, 1000, 0)
    with pytest.raises(ModelError, match="unknown encoder"):
        template_diffusion_config("nope")


def _ddsp_svc_yaml() -> dict:
    """DDSP-SVC 4.0 / Diffusion-SVC 1.x configs/diffusion.yaml (model.type Diffusion): their encoder names,
    no timesteps / k_step_max / spk / unit_interpolate_mode."""
    return {
        "data": {"f0_extractor": "rmvpe", "sampling_rate": 44100, "block_size": 512, "duration": 2,
                 "encoder": "contentvec768l12", "cnhubertsoft_gate": 10, "encoder_sample_rate": 16000,
                 "encoder_hop_size": 320, "encoder_out_channels": 768,
                 "encoder_ckpt": "pretrain/contentvec/checkpoint_best_legacy_500.pt"},
        "model": {"type": "Diffusion", "n_layers": 20, "n_chans": 512, "n_hidden": 256, "use_pitch_aug": True,
                  "n_spk": 1},
        "device": "cuda", "vocoder": {"type": "nsf-hifigan", "ckpt": "pretrain/nsf_hifigan/model"},
        "infer": {"speedup": 10, "method": "dpm-solver"},
        "train": {"lr": 0.0002},
    }


def test_ddsp_svc_diffusion_yaml_reads_with_upstream_defaults():
    doc = _ddsp_svc_yaml()
    cfg = diffusion_config_from_dict(doc, "diffusion.yaml")
    assert (cfg.encoder, cfg.timesteps, cfg.k_step_max, cfg.full_chain, cfg.speakers) == ("vec768l12", 1000, 0,
                                                                                         True, {})
    assert cfg.unit_interpolate_mode == "nearest" and cfg.infer_method == "dpm-solver"
    assert cfg.to_dict()["data"]["encoder"] == "contentvec768l12"  # written back as the file had it
    doc["data"].update(encoder="contentvec", encoder_out_channels=256)
    assert diffusion_config_from_dict(doc).encoder == "vec256l9"


def _error(doc) -> str:
    with pytest.raises(ModelError) as err:
        diffusion_config_from_dict(doc, "my_diff.yaml")
    return str(err.value)


@pytest.mark.parametrize("edit,field,fix", [
    (lambda d: d.pop("model"), 'the "model" section', 'copy the "model" section'),
    (lambda d: d.pop("data"), 'the "data" section', 'copy the "data" section'),
    (lambda d: d.__setitem__("model", [1, 2]), 'the "model" section', "must be a mapping"),
    (lambda d: d["model"].pop("n_layers"), "model.n_layers", "is missing"),
    (lambda d: d["model"].__setitem__("n_chans", "big"), "model.n_chans", "a positive whole number"),
    (lambda d: d["model"].__setitem__("n_hidden", 0), "model.n_hidden", "a positive whole number"),
    (lambda d: d["model"].__setitem__("n_layers", 2.5), "model.n_layers", "a positive whole number"),
    (lambda d: d["model"].__setitem__("k_step_max", -1), "model.k_step_max", "a whole number >= 0"),
    (lambda d: d["model"].__setitem__("use_pitch_aug", "yes"), "model.use_pitch_aug", "true or false"),
    (lambda d: d["model"].__setitem__("n_spk", 1), "spk['tenor']", "is 1 but model.n_spk is 1"),
    (lambda d: d["spk"].__setitem__("bass", "two"), "spk['bass']", "a speaker id"),
    (lambda d: d["data"].__setitem__("encoder", "whisper-tiny"), "data.encoder", "not a content encoder"),
    (lambda d: d["data"].__setitem__("encoder_out_channels", 256), "data.encoder_out_channels",
     "set data.encoder_out_channels to 768"),
    (lambda d: d["data"].__setitem__("unit_interpolate_mode", "cubic"), "data.unit_interpolate_mode", "use one of"),
    (lambda d: d["vocoder"].__setitem__("type", "bigvgan"), "vocoder.type", "nsf-hifigan-log10"),
    (lambda d: d["infer"].__setitem__("method", "euler"), "infer.method", "dpm-solver++"),
    (lambda d: d["model"].__setitem__("type", "DiffusionV2"), "model.type", "Diffusion-SVC 2.x"),
    (lambda d: d["model"].__setitem__("type", "ReFlow"), "model.type", "rectified-flow"),
    (lambda d: d["model"].__setitem__("type", "Naive"), "model.type", "naive"),
    (lambda d: d["model"].__setitem__("type", "DiffusionNew"), "model.type", "DDSP-SVC"),
    (lambda d: d["model"].__setitem__("type", "Transformer"), "model.type", "not 'Diffusion'"),
    (lambda d: d["model"].__setitem__("use_speaker_encoder", True), "model.use_speaker_encoder", "speaker encoder"),
])
def test_bad_fields_name_file_field_and_fix(doc, edit, field, fix):
    edit(doc)
    message = _error(doc)
    assert message.startswith("my_diff.yaml: ")
    assert field in message and fix in message


def test_not_a_mapping():
    assert "YAML mapping" in _error(["data", "model"])


def test_defaults_for_optional_sections(doc):
    for name in ("vocoder", "infer", "train", "spk", "env", "device"):
        doc.pop(name)
    cfg = diffusion_config_from_dict(copy.deepcopy(doc))
    assert (cfg.vocoder_type, cfg.infer_method, cfg.infer_speedup, cfg.speakers, cfg.train) == (
        "nsf-hifigan", "dpm-solver++", 10, {}, {})


def test_file_errors(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_diffusion_config(tmp_path / "config.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("  \n")
    with pytest.raises(ModelError, match="empty.yaml is empty"):
        load_diffusion_config(empty)
    broken = tmp_path / "broken.yaml"
    broken.write_text("data:\n  sampling_rate: 44100\n model: [1\n")
    with pytest.raises(ModelError, match=r"broken.yaml is not valid YAML: .* at line \d+, column \d+"):
        load_diffusion_config(broken)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ModelError, match="not a text"):
        load_diffusion_config(binary)
    code = tmp_path / "code.yaml"
    code.write_text("data: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ModelError, match="not valid YAML"):
        load_diffusion_config(code)  # safe_load refuses python tags
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(FileLimitError, match="big.yaml"):
        load_diffusion_config(big)


def test_config_is_frozen(doc):
    cfg = diffusion_config_from_dict(doc)
    assert isinstance(cfg, DiffusionConfig)
    with pytest.raises(AttributeError):
        cfg.n_layers = 3  # type: ignore[misc]


def test_alias_bomb_message_stays_short(tmp_path):
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):  # 9**9 items if expanded
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, "
                     f"*{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ndata: {encoder: vec768l12, encoder_out_channels: 768}\n"
                    "model: {n_layers: *i, n_chans: 4, n_hidden: 4, n_spk: 1}\n")
    with pytest.raises(ModelError) as err:
        load_diffusion_config(path)
    assert "model.n_layers must be a positive whole number" in str(err.value) and len(str(err.value)) < 400
