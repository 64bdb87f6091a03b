"""load_mel_vocoder: openvpi files load (either weight layout); wrong files get messages naming file and field."""
from __future__ import annotations

import json

import pytest
import torch

from svc_core.noise import TorchNoise
from svc_core.errors import FileLimitError, ModelError, OptionError, UnsafeFileError
from svc_core.models.weight_norm import compose
from svc_core.vocoders import VocoderNeeds, load_mel_vocoder
from vocoder_factories import make_vocoder, vocoder_config_dict, vocoder_state


@pytest.fixture(scope="module")
def small_state():
    return vocoder_state(vocoder_config_dict(), seed=2)


def _audio(vocoder):
    gen = torch.Generator().manual_seed(1)
    mel = torch.randn(1, 20, 128, generator=gen) - 5
    return vocoder.decode(mel, torch.full((1, 20), 200.0), noise=TorchNoise.seeded(1))


def test_folder_or_file_and_plain_weights(tmp_path, small_state):
    """The folder and the file load the same vocoder; a file with weight norm already removed (plain `.weight`
    keys) gives the same audio."""
    model = make_vocoder(tmp_path / "wn", state=small_state)
    a = _audio(load_mel_vocoder(model.parent))
    assert torch.equal(a, _audio(load_mel_vocoder(model)))
    plain = {}
    for key, value in small_state.items():
        if key.endswith(".weight_g"):
            continue
        if key.endswith(".weight_v"):
            plain[key[:-2]] = compose(small_state[key[:-2] + "_g"], value)
        else:
            plain[key] = value
    b = _audio(load_mel_vocoder(make_vocoder(tmp_path / "plain", state=plain)))
    assert float((a - b).abs().max()) < 1e-6


def test_missing_files(tmp_path, small_state):
    with pytest.raises(ModelError, match="has no 'model' file"):
        load_mel_vocoder(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        load_mel_vocoder(tmp_path / "nope" / "model")
    model = make_vocoder(tmp_path / "v", state=small_state)
    (model.parent / "config.json").unlink()
    with pytest.raises(ModelError, match=r"needs its config\.json beside it"):
        load_mel_vocoder(model)


@pytest.mark.parametrize("overrides, field", [
    ({"hop_size": 256}, "hop_size"),
    ({"num_mels": 80}, "num_mels"),
    ({"upsample_rates": [8, 8, 4, 2], "upsample_kernel_sizes": [16, 16, 8, 4]}, "upsample_rates"),
    ({"upsample_initial_channel": 64}, "upsample_initial_channel"),
    ({"resblock": "2"}, "resblock"),
    ({"resblock_kernel_sizes": [3, 7], "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5]]}, "resblock_kernel_sizes"),
    ({"upsample_kernel_sizes": [16, 16, 4, 4]}, "upsample_kernel_sizes"),
    ({"fmax": 30000}, "fmax"),
    ({"sampling_rate": "44100"}, "sampling_rate"),
])
def test_config_that_does_not_fit(tmp_path, small_state, overrides, field):
    model = make_vocoder(tmp_path, state=small_state, **overrides)
    with pytest.raises(ModelError, match=field) as err:
        load_mel_vocoder(model)
    assert "config.json" in str(err.value)


def test_needs_mismatch(tmp_path, small_state):
    model = make_vocoder(tmp_path, state=small_state)
    load_mel_vocoder(model, needs=VocoderNeeds(44100, 512, 128))
    with pytest.raises(ModelError, match=r"sampling_rate 44100, but diffusion\.yaml needs 32000"):
        load_mel_vocoder(model, needs=VocoderNeeds(sample_rate=32000, source="diffusion.yaml"))
    with pytest.raises(ModelError, match="hop_size 512"):
        load_mel_vocoder(model, needs=VocoderNeeds(hop_size=320))


def test_sovits_generator_is_named(tmp_path):
    from factories import make_upstream_checkpoint

    g, _ = make_upstream_checkpoint(tmp_path, seed=0)
    with pytest.raises(ModelError, match=r"so-vits-svc voice model \(G_\*\.pth\)"):
        load_mel_vocoder(g)


def test_diffusion_model_is_named(tmp_path):
    path = tmp_path / "model_0.pt"
    torch.save({"global_step": 0, "model": {"unit_embed.weight": torch.zeros(4, 8),
                                             "decoder.betas": torch.zeros(10)}}, path)
    (tmp_path / "config.json").write_text(json.dumps(vocoder_config_dict()))
    with pytest.raises(ModelError, match=r"shallow-diffusion model \(model_\*\.pt\)"):
        load_mel_vocoder(path)


def test_other_content_and_unsafe_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(vocoder_config_dict()))
    torch.save({"weights": torch.zeros(3)}, tmp_path / "model")
    with pytest.raises(ModelError, match="has no 'generator' entry"):
        load_mel_vocoder(tmp_path)
    torch.save({"generator": {"conv_pre.bias": [1, 2]}}, tmp_path / "model")
    with pytest.raises(ModelError, match="not named tensors"):
        load_mel_vocoder(tmp_path)
    torch.save({"generator": {"x": torch.nn.Linear(2, 2)}}, tmp_path / "model")
    with pytest.raises(UnsafeFileError):
        load_mel_vocoder(tmp_path)


def test_oversized_config(tmp_path, small_state):
    model = make_vocoder(tmp_path, state=small_state)
    (tmp_path / "config.json").write_text(json.dumps({**vocoder_config_dict(), "pad": "x" * (2 << 20)}))
    with pytest.raises(FileLimitError):
        load_mel_vocoder(model)


def test_unknown_kind(tmp_path, small_state):
    with pytest.raises(OptionError, match="nsf-hifigan-log10"):
        load_mel_vocoder(make_vocoder(tmp_path, state=small_state), kind="hifigan")


def test_loading_leaves_the_global_rng_alone(tmp_path, small_state):
    model = make_vocoder(tmp_path, state=small_state)
    before = torch.get_rng_state()
    load_mel_vocoder(model)
    assert torch.equal(before, torch.get_rng_state())
