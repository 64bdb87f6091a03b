"""Files crafted to run code when unpickled must be refused before anything runs (UnsafeFileError)."""
from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from svc_core.checkpoint import read_generator_state
from svc_core.errors import ModelError, UnsafeFileError
from svc_core.safe_load import load_pickle, load_torch

FAIRSEQ_DICTIONARY = "fairseq.data.dictionary.Dictionary"


def _payload(kind: str, marker: Path) -> tuple[Any, str]:
    """(object whose unpickling creates `marker`, name of the global it needs).

    Only the bare name is checked: pickle protocol 2 may write Python 2 module names (commands.Popen).
    """
    if kind == "os.system":
        call: Callable = os.system
        args: tuple = (f"touch {marker}",)
    elif kind == "exec":
        call, args = builtins.exec, (f"open({str(marker)!r}, 'w').close()",)
    elif kind == "popen":
        call, args = subprocess.Popen, (["touch", str(marker)],)
    else:
        raise AssertionError(kind)

    class Exploit:
        def __reduce__(self):
            return call, args

    return Exploit(), call.__name__


def _checkpoint_with(obj: Any, payload_first: bool = False) -> dict[str, Any]:
    """A real-looking G_*.pth dict with the payload tucked in next to valid tensors.

    payload_first puts the optimizer entry first: in a plain pickle the tensors themselves need a refused
    global (torch.storage._load_from_bytes), and the loader reports the first refused global it meets.
    """
    state = {"emb_g.weight": torch.randn(2, 8), "pre.weight": torch.randn(8, 16, 5),
             "enc_p.proj.weight": torch.randn(16, 8, 1)}
    optimizer = {"state": {}, "param_groups": [{"lr": 1e-4, "hook": obj}]}
    if payload_first:
        return {"optimizer": optimizer, "model": state, "iteration": 0, "learning_rate": 1e-4}
    return {"model": state, "iteration": 0, "optimizer": optimizer, "learning_rate": 1e-4}


def _write(fmt: str, obj: Any, path: Path) -> None:
    if fmt == "pickle":
        path.write_bytes(pickle.dumps(obj, protocol=2))
    elif fmt == "zip":
        torch.save(obj, path)
    elif fmt == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        raise AssertionError(fmt)


KINDS = ["os.system", "exec", "popen"]
FORMATS = ["pickle", "zip", "legacy"]


@pytest.mark.parametrize("kind", KINDS)
def test_payloads_are_real(tmp_path: Path, kind: str) -> None:
    """Control: an unrestricted pickle.load of the crafted bytes does create the marker."""
    marker = tmp_path / "pwned"
    obj, _ = _payload(kind, marker)
    result = pickle.loads(pickle.dumps(obj, protocol=2))
    if isinstance(result, subprocess.Popen):
        result.wait()
    assert marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("nested", [False, True], ids=["bare", "in_checkpoint"])
def test_generator_loader_refuses(tmp_path: Path, kind: str, fmt: str, nested: bool) -> None:
    marker = tmp_path / "pwned"
    obj, global_name = _payload(kind, marker)
    path = tmp_path / "G_0.pth"
    _write(fmt, _checkpoint_with(obj, payload_first=fmt == "pickle") if nested else {"model": obj}, path)
    with pytest.raises(UnsafeFileError) as info:
        read_generator_state(path)
    assert global_name in str(info.value)
    assert "G_0.pth" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("fmt", FORMATS)
def test_load_torch_refuses(tmp_path: Path, fmt: str) -> None:
    marker = tmp_path / "pwned"
    obj, global_name = _payload("os.system", marker)
    path = tmp_path / "weights.pt"
    # plain pickles report the first refused global, and a pickled tensor needs one too: payload first there
    _write(fmt, [obj, torch.zeros(3)] if fmt == "pickle" else [torch.zeros(3), obj], path)
    with pytest.raises(UnsafeFileError, match=global_name):
        load_torch(path, what="content encoder")
    assert not marker.exists()


@pytest.mark.parametrize("kind", KINDS)
def test_load_pickle_refuses(tmp_path: Path, kind: str) -> None:
    marker = tmp_path / "pwned"
    obj, global_name = _payload(kind, marker)
    path = tmp_path / "feature_and_index.pkl"
    path.write_bytes(pickle.dumps({"speaker0": obj}, protocol=4))
    with pytest.raises(UnsafeFileError) as info:
        load_pickle(path, allowed={}, what="feature index")
    assert global_name in str(info.value)
    assert not marker.exists()


def test_load_pickle_allows_named_globals_only(tmp_path: Path) -> None:
    path = tmp_path / "ok.pkl"
    path.write_bytes(pickle.dumps({"a": [1, 2.5, "x"], "when": complex(1, 2)}, protocol=4))
    with pytest.raises(UnsafeFileError, match="builtins.complex"):
        load_pickle(path, allowed={})
    assert load_pickle(path, allowed={("builtins", "complex"): complex}) == {"a": [1, 2.5, "x"], "when": 1 + 2j}


@pytest.fixture()
def fake_fairseq(tmp_path: Path):
    """A stand-in 'fairseq.data.dictionary' module whose Dictionary writes a marker when unpickled."""
    marker = tmp_path / "dictionary_code_ran"

    class Dictionary:
        def __init__(self) -> None:
            self.symbols = ["<s>", "<pad>", "</s>", "<unk>"]
            self.indices = {s: i for i, s in enumerate(self.symbols)}

        def index(self, sym: str) -> int:
            return self.indices[sym]

        def __setstate__(self, state: dict) -> None:
            marker.touch()
            self.__dict__.update(state)

    names = ["fairseq", "fairseq.data", "fairseq.data.dictionary"]
    saved = {n: sys.modules.get(n) for n in names}
    for n in names:
        sys.modules[n] = types.ModuleType(n)
    Dictionary.__module__ = "fairseq.data.dictionary"
    Dictionary.__qualname__ = "Dictionary"
    sys.modules["fairseq.data.dictionary"].Dictionary = Dictionary
    try:
        yield Dictionary, marker
    finally:
        for n, mod in saved.items():
            if mod is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = mod


def test_fairseq_dictionary_needs_inert(tmp_path: Path, fake_fairseq) -> None:
    dictionary_cls, marker = fake_fairseq
    path = tmp_path / "checkpoint_best_legacy_500.pt"
    torch.save({"model": {"w": torch.ones(2)}, "task_state": {"dictionaries": [dictionary_cls()]}}, path)
    with pytest.raises(UnsafeFileError, match=FAIRSEQ_DICTIONARY.replace(".", r"\.")):
        load_torch(path, what="ContentVec checkpoint")
    loaded = load_torch(path, what="ContentVec checkpoint", inert=[FAIRSEQ_DICTIONARY])
    stand_in = loaded["task_state"]["dictionaries"][0]
    assert stand_in.symbols == ["<s>", "<pad>", "</s>", "<unk>"]
    assert stand_in.indices["</s>"] == 2
    assert not isinstance(stand_in, dictionary_cls)
    assert not hasattr(stand_in, "index")
    assert not marker.exists()
    assert torch.equal(loaded["model"]["w"], torch.ones(2))


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"PK\x03\x04 not really a zip", b"{\"model\": 1}"],
                         ids=["empty", "zeros", "fake_zip", "json"])
def test_garbage_is_model_error_not_traceback(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "G_0.pth"
    path.write_bytes(content)
    with pytest.raises(ModelError):
        read_generator_state(path)
