"""Demucs v4 files through our loader: random-weight htdemucs .th in demucs's layout, a bag .yaml, refusals."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from separation_factories import (demucs_package, make_demucs_safetensors, make_demucs_th, separate_in_two_chunks,
                                  write_yaml)
from svc_core.errors import ModelError, UnsafeFileError
from svc_core.separation import get_separator
from svc_core.separation.community import demucs

RATE = 44100
RAN = []  # filled by record() / Evil's constructor whenever code named by a file runs


def record(what: str) -> str:
    RAN.append(what)
    return what


class Evil:
    """A class a hostile checkpoint could name; building or unpickling it records that code ran."""

    def __init__(self, *args, **kwargs):
        RAN.append("init")

    def __reduce__(self):
        return (record, ("reduce",))


@pytest.fixture(scope="module")
def th_file(tmp_path_factory):
    return make_demucs_th(tmp_path_factory.mktemp("demucs") / "955dfd88-00000000.th", seed=1)


def _song(seconds: float = 2.5) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.2 * rng.standard_normal((2, int(seconds * RATE)))).astype(np.float32)


def test_htdemucs_file_separates_in_chunks(th_file):
    sep = get_separator("demucs", model_path=th_file)
    assert sep.sources == ["drums", "bass", "other", "vocals"] and sep.sample_rate == RATE
    song = _song()
    stems = separate_in_two_chunks(sep, song, RATE)
    assert set(stems.extra) == {"drums", "bass", "other"}
    for y in [stems.vocals, stems.accompaniment, *stems.extra.values()]:
        assert y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() > 1e-4
    np.testing.assert_allclose(stems.accompaniment, sum(stems.extra.values()), atol=1e-4)


def test_loaded_weights_are_the_files(th_file):
    model = demucs.load_demucs_file(th_file)
    package = demucs_package(seed=1)
    for key, value in package["state"].items():
        torch.testing.assert_close(model.state_dict()[key], value.float())
    assert model.segment == package["kwargs"]["segment"]


def test_bag_of_models_yaml(th_file, tmp_path):
    (tmp_path / th_file.name).write_bytes(th_file.read_bytes())
    make_demucs_th(tmp_path / "a1b2c3d4.th", seed=2)
    bag = write_yaml(tmp_path / "htdemucs_ft.yaml", {"models": ["955dfd88", "a1b2c3d4"],
                                                      "weights": [[1, 0, 0, 0], [0, 0, 0, 1]]})
    sep = demucs.DemucsSeparator(bag)
    assert len(sep.model.models) == 2
    out = sep.separate_chunk(_song(1.0))
    assert out["vocals"].shape == (2, RATE)
    missing = write_yaml(tmp_path / "other.yaml", {"models": ["955dfd88", "ffffffff"]})
    with pytest.raises(ModelError, match="ffffffff"):
        demucs.DemucsSeparator(missing)
    with pytest.raises(ModelError, match="not a demucs bag"):
        demucs.DemucsSeparator(write_yaml(tmp_path / "x.yaml", {"audio": {"chunk_size": 1}}))


def test_a_class_outside_the_allow_list_is_refused_without_running(tmp_path):
    hostile = tmp_path / "evil.th"
    torch.save(demucs_package(klass=Evil), hostile)
    with pytest.raises(UnsafeFileError, match="Evil"):
        demucs.DemucsSeparator(hostile)
    reducer = tmp_path / "reduce.th"
    package = demucs_package()
    package["kwargs"]["channels"] = Evil()
    torch.save(package, reducer)
    torch.load(reducer, weights_only=False)  # what demucs's own loader does: it runs the file's code
    assert RAN == ["init", "reduce"]  # our Evil() above, then the unsafe load
    RAN.clear()
    with pytest.raises(UnsafeFileError, match="record"):
        demucs.DemucsSeparator(reducer)
    assert RAN == []
    plain = tmp_path / "plain.th"
    plain.write_bytes(pickle.dumps({"klass": Evil}))
    with pytest.raises(ModelError):
        demucs.DemucsSeparator(plain)
    assert RAN == []


def test_a_torch_class_that_is_not_a_demucs_model_is_refused(tmp_path):
    other = tmp_path / "linear.th"
    package = demucs_package()
    package["klass"] = torch.nn.Linear
    torch.save(package, other)
    with pytest.raises(UnsafeFileError, match="torch.nn"):
        demucs.DemucsSeparator(other)


def test_damaged_and_wrong_files(th_file, tmp_path):
    cut = tmp_path / "cut.th"
    cut.write_bytes(th_file.read_bytes()[: th_file.stat().st_size // 2])
    with pytest.raises(ModelError, match="cut.th"):
        demucs.DemucsSeparator(cut)
    bare = tmp_path / "state.th"
    torch.save({"weight": torch.zeros(3)}, bare)
    with pytest.raises(ModelError, match="not a demucs model file"):
        demucs.DemucsSeparator(bare)
    edited = tmp_path / "edited.th"
    package = demucs_package()
    package["kwargs"]["channels"] = 16
    torch.save(package, edited)
    with pytest.raises(ModelError, match="do not match"):
        demucs.DemucsSeparator(edited)
    novocals = tmp_path / "drums.th"
    package = demucs_package()
    package["kwargs"]["sources"] = ["drums", "bass", "other", "piano"]
    torch.save(package, novocals)
    with pytest.raises(ModelError, match="without vocals"):
        demucs.DemucsSeparator(novocals)


def test_safetensors_file_is_the_same_model(th_file, tmp_path):
    st = make_demucs_safetensors(tmp_path / "955dfd88.safetensors", seed=1)
    song = _song(1.0)
    a = demucs.DemucsSeparator(th_file).separate_chunk(song)
    b = demucs.DemucsSeparator(st).separate_chunk(song)
    np.testing.assert_allclose(a["vocals"], b["vocals"], atol=1e-6)
    bag = write_yaml(tmp_path / "htdemucs.yaml", {"models": ["955dfd88"]})
    assert len(demucs.DemucsSeparator(bag).model.models) == 1


def test_safetensors_naming_another_class_is_refused(tmp_path):
    st = make_demucs_safetensors(tmp_path / "x.safetensors", klass="subprocess.Popen")
    with pytest.raises(UnsafeFileError, match="subprocess.Popen"):
        demucs.DemucsSeparator(st)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(st.read_bytes()[:3000])
    with pytest.raises(ModelError, match="cut.safetensors"):
        demucs.DemucsSeparator(cut)
