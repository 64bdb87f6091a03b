"""UVR MDX-Net .onnx through our loader: random-weight files in UVR's layout, settings by .yaml or by hash."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from separation_factories import make_mdx_onnx, write_yaml
from svc_core.errors import ModelError, OptionError
from svc_core.separation import get_separator
from svc_core.separation.community import mdx

RATE = 44100


@pytest.fixture(scope="module")
def mdx_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mdx")
    path = folder / "Tiny_Inst.onnx"
    settings = make_mdx_onnx(path, "small", seed=3)
    return path, settings


def _song(seconds: float = 2.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 220 * t)
    return np.stack([tone + 0.05 * rng.standard_normal(t.size), tone * 0.8]).astype(np.float32)


def test_separates_with_yaml_settings_and_chunks(mdx_file, tmp_path):
    path, settings = mdx_file
    model = tmp_path / path.name
    model.write_bytes(path.read_bytes())
    write_yaml(tmp_path / (path.name + ".yaml"), settings)
    sep = get_separator("mdx", model_path=model)
    assert sep.params.n_fft == 2048 and sep.params.dim_t == 32 and not sep.primary_is_vocals
    sep.chunk_seconds, sep.overlap_seconds = 1.0, 0.25
    calls = []
    song = _song()
    stems = sep.separate(song, RATE, progress=lambda done, total: calls.append((done, total)))
    assert stems.vocals.shape == song.shape and stems.accompaniment.shape == song.shape
    assert np.isfinite(stems.vocals).all() and np.isfinite(stems.accompaniment).all()
    assert calls == [(1, 3), (2, 3), (3, 3)]  # 1 s chunks, 0.25 s overlap over 2.5 s
    # the instrumental is the model's output, the vocals the rest: they add up to the mix
    np.testing.assert_allclose(stems.vocals + stems.accompaniment, song, atol=1e-5)
    assert 0.01 < np.abs(stems.accompaniment).mean() < np.abs(song).mean() * 1.2


def test_primary_matches_a_direct_model_run(mdx_file, tmp_path):
    """One window through the runner equals the STFT -> model -> iSTFT written out by hand (torch, not numpy)."""
    import onnxruntime as ort
    import torch

    path, settings = mdx_file
    sep = mdx.MdxSeparator(path, config_path=write_yaml(tmp_path / "s.yaml", settings), overlap=0.0)
    p = sep.params
    audio = _song(1.0, seed=1)[:, :p.window - 2 * p.trim]
    padded = np.pad(audio, ((0, 0), (p.trim, p.trim)))
    window = torch.hann_window(p.n_fft, periodic=True)
    spec = torch.stft(torch.from_numpy(padded), p.n_fft, 1024, window=window, return_complex=True)
    x = torch.cat([torch.view_as_real(spec[c])[:p.dim_f].permute(2, 0, 1) for c in range(2)])[None]
    y = ort.InferenceSession(str(path)).run(None, {"input": x.numpy()})[0][0]
    full = torch.zeros(2, p.n_fft // 2 + 1, y.shape[-1], dtype=torch.complex64)
    full[:, :p.dim_f] = torch.complex(torch.from_numpy(y[0::2]), torch.from_numpy(y[1::2]))
    wave = torch.istft(full, p.n_fft, 1024, window=window, length=padded.shape[1]).numpy()
    want = wave[:, p.trim:p.trim + audio.shape[1]] * p.compensate
    np.testing.assert_allclose(sep.primary(audio), want, atol=2e-4)


def test_settings_from_the_known_model_table(mdx_file, tmp_path, monkeypatch):
    path, _ = mdx_file
    digest = mdx.model_hash(path)
    assert digest == hashlib.md5(path.read_bytes()).hexdigest()  # a file under 10,000 KiB: the whole file
    with pytest.raises(ModelError, match=r"UVR hash .*\.yaml"):
        mdx.read_params(path)
    monkeypatch.setitem(mdx.KNOWN_MDX_MODELS, digest, (2048, 256, 5, 1.02, "Vocals", False, "Tiny"))
    sep = mdx.MdxSeparator(path)
    assert sep.primary_is_vocals and sep.label == "MDX-Net Tiny" and sep.params.compensate == 1.02


def test_known_table_holds_the_ranked_models():
    rows = {row[-1]: row for row in mdx.KNOWN_MDX_MODELS.values() if row[-1]}
    assert rows["UVR-MDX-NET-Inst_HQ_3"][:5] == (6144, 3072, 8, 1.033, "Instrumental")
    assert rows["Kim_Vocal_2"][:5] == (7680, 3072, 8, 1.009, "Vocals")


def test_hash_reads_only_the_tail(tmp_path):
    big = tmp_path / "big.onnx"
    data = np.random.default_rng(0).bytes(mdx.HASH_TAIL_BYTES + 1000)
    big.write_bytes(data)
    assert mdx.model_hash(big) == hashlib.md5(data[-mdx.HASH_TAIL_BYTES:]).hexdigest()


def test_settings_for_another_model_are_refused(mdx_file, tmp_path):
    path, settings = mdx_file
    wrong = dict(settings, mdx_dim_f_set=128)
    with pytest.raises(ModelError, match="belong to another model"):
        mdx.MdxSeparator(path, config_path=write_yaml(tmp_path / "w.yaml", wrong))
    with pytest.raises(ModelError, match="separates drums, not vocals"):
        mdx.MdxSeparator(path, config_path=write_yaml(tmp_path / "d.yaml", dict(settings, primary_stem="Drums")))
    with pytest.raises(ModelError, match="lacks mdx_n_fft_scale_set"):
        mdx.MdxSeparator(path, config_path=write_yaml(tmp_path / "x.yaml", {"mdx_dim_f_set": 256}))


def test_truncated_and_wrong_family_files(mdx_file, tmp_path):
    path, settings = mdx_file
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    write_yaml(tmp_path / "cut.onnx.yaml", settings)
    with pytest.raises(ModelError, match="cut.onnx"):
        mdx.MdxSeparator(cut)
    torch_file = tmp_path / "demucs.onnx"
    torch_file.write_bytes(b"PK\x03\x04" + bytes(200))
    write_yaml(tmp_path / "demucs.onnx.yaml", settings)
    with pytest.raises(ModelError, match="demucs.onnx"):
        mdx.MdxSeparator(torch_file)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        mdx.MdxSeparator(empty)


def test_an_onnx_of_another_shape_is_not_mdx(tmp_path):
    import torch

    other = tmp_path / "encoder.onnx"
    torch.onnx.export(torch.nn.Linear(10, 3), (torch.randn(1, 10),), str(other), dynamo=False,
                      input_names=["x"])
    write_yaml(tmp_path / "encoder.onnx.yaml", {"n_fft": 2048, "dim_f": 256, "dim_t": 32})
    with pytest.raises(ModelError, match="not an MDX-Net model"):
        mdx.MdxSeparator(other)


def test_overlapped_windows_blend_to_the_same_length(mdx_file, tmp_path):
    path, settings = mdx_file
    config = write_yaml(tmp_path / "s.yaml", settings)
    song = _song(1.7, seed=3)
    plain = mdx.MdxSeparator(path, config_path=config, overlap=0.0).primary(song)
    blended = mdx.MdxSeparator(path, config_path=config, overlap=0.5).primary(song)
    assert plain.shape == blended.shape == song.shape and np.isfinite(blended).all()
    # the first window's kept part starts at 0 in both; where only it covers the song, both agree
    np.testing.assert_allclose(blended[:, :1000], plain[:, :1000], atol=1e-5)
    with pytest.raises(OptionError, match="overlap"):
        mdx.MdxSeparator(path, config_path=config, overlap=1.0)
