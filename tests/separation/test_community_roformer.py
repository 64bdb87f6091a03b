"""BS-RoFormer / Mel-Band RoFormer .ckpt + .yaml through our loader and network (MSST's layout, random weights)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from separation_factories import make_roformer, roformer_state, roformer_yaml, separate_in_two_chunks
from svc_core.errors import ModelError, UnsafeFileError
from svc_core.separation import get_separator
from svc_core.separation.community import roformer

RATE = 44100


def _song(seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return np.stack([0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(t.size),
                     0.2 * np.sin(2 * np.pi * 440 * t)]).astype(np.float32)


@pytest.mark.parametrize("kind", ["bs", "mel"])
def test_separates_a_clip_in_chunks(kind, tmp_path):
    ckpt, _ = make_roformer(tmp_path, kind, seed=4)
    sep = get_separator("roformer", model_path=ckpt)
    assert sep.net.cfg.kind == kind and sep.outputs == ["vocals"] and sep.window_size == 22050
    song = _song()
    stems = separate_in_two_chunks(sep, song, RATE)
    assert np.isfinite(stems.vocals).all() and np.abs(stems.vocals).max() > 1e-4
    np.testing.assert_allclose(stems.vocals + stems.accompaniment, song, atol=1e-5)


@pytest.mark.parametrize("kind", ["bs", "mel"])
def test_identity_mask_gives_back_the_input(kind, tmp_path):
    """With every band's mask forced to 1 + 0j the network must return its input (DC removed): checks the band
    split / mel-band bookkeeping, the STFT round trip and the overlapped windows (DC kept: zero_dc false)."""
    state = roformer_state(kind, seed=5)
    for key in [k for k in state if k.startswith("mask_estimators.0.") and k.endswith(".weight")]:
        band, layer = key.split(".")[3], int(key.split(".")[5])
        last = max(int(k.split(".")[5]) for k in state if k.startswith(f"mask_estimators.0.to_freqs.{band}."))
        if layer == last:
            state[key].zero_()
            bias = state[key[:-len("weight")] + "bias"]
            half = bias.numel() // 2
            bias.zero_()
            bias[0:half:2] = 1.0  # real parts 1, imaginary 0
            bias[half:] = 30.0  # GLU gate open
    ckpt = tmp_path / "ident.ckpt"
    torch.save(state, ckpt)
    (tmp_path / "ident.yaml").write_text(roformer_yaml(kind).replace("  stft_normalized: false\n",
                                                                       "  stft_normalized: false\n  zero_dc: false\n"))
    sep = roformer.RoformerSeparator(ckpt)
    song = _song(1.3, seed=2)
    assert not sep.net.cfg.zero_dc
    out = sep.model_stems(song)[0]
    np.testing.assert_allclose(out, song, atol=2e-5)


def test_lightning_wrapped_and_prefixed_state(tmp_path):
    state = roformer_state("bs", seed=1)
    torch.save({"state_dict": {"model." + k: v for k, v in state.items()}, "epoch": 3}, tmp_path / "w.ckpt")
    (tmp_path / "w.yaml").write_text(roformer_yaml("bs"))
    sep = roformer.RoformerSeparator(tmp_path / "w.ckpt")
    torch.testing.assert_close(sep.net.state_dict()["final_norm.gamma"], state["final_norm.gamma"])


def test_instrumental_target(tmp_path):
    ckpt, _ = make_roformer(tmp_path, "mel", target="instrumental")
    sep = roformer.RoformerSeparator(ckpt)
    song = _song(1.0)
    out = sep.separate_chunk(song)
    np.testing.assert_allclose(out["vocals"], song - out["accompaniment"], atol=1e-6)


def test_missing_wrong_and_damaged_configs(tmp_path):
    ckpt, config = make_roformer(tmp_path, "bs")
    config.unlink()
    with pytest.raises(ModelError, match="needs its config"):
        roformer.RoformerSeparator(ckpt)
    config.write_text(roformer_yaml("mel"))
    with pytest.raises(ModelError, match="does not match the Mel-Band RoFormer"):
        roformer.RoformerSeparator(ckpt)
    config.write_text("audio: {chunk_size: 1000}\nmodel: {dim: 8, depth: 1}\n")
    with pytest.raises(ModelError, match="neither a BS-RoFormer"):
        roformer.RoformerSeparator(ckpt)
    config.write_text("model: [unclosed\n")
    with pytest.raises(ModelError, match="not readable yaml"):
        roformer.RoformerSeparator(ckpt)
    config.write_text(roformer_yaml("bs").replace("  - 9\n", "  - 10\n"))
    with pytest.raises(ModelError, match="freqs_per_bands sum"):
        roformer.RoformerSeparator(ckpt)


def test_damaged_and_unsafe_checkpoints(tmp_path):
    ckpt, config = make_roformer(tmp_path, "bs")
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(ckpt.read_bytes()[:5000])
    (tmp_path / "cut.yaml").write_text(config.read_text())
    with pytest.raises(ModelError, match="cut.ckpt"):
        roformer.RoformerSeparator(cut)
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": roformer_state("bs"), "hook": torch.nn.Linear(2, 2)}, evil)
    (tmp_path / "evil.yaml").write_text(config.read_text())
    with pytest.raises(UnsafeFileError, match="torch.nn"):
        roformer.RoformerSeparator(evil)
    demucs_like = tmp_path / "d.ckpt"
    torch.save({"klass_args": [1, 2]}, demucs_like)
    (tmp_path / "d.yaml").write_text(config.read_text())
    with pytest.raises(ModelError, match="not a RoFormer checkpoint"):
        roformer.RoformerSeparator(demucs_like)
