"""Load checkpoints and pickles from strangers without running any code they carry.

Two entry points:
* `load_torch(path, what=...)`: `torch.load(weights_only=True)` plus a small allow-list (numpy arrays, and
  inert stand-ins for a few data-only classes named by the caller, such as fairseq's Dictionary).
* `load_pickle(path, what=..., allowed=...)`: a plain-pickle reader that resolves only the globals the caller
  names; everything else is refused.
Anything outside the allow-list raises `UnsafeFileError` with the offending global named.

Before either reader runs, the file is held to the limits of svc_core/file_limits.py (FileLimitError): a torch
zip's directory (sizes, member count, names) and its data.pkl's instructions (svc_core/pickle_scan.py), a legacy
torch file's or a plain pickle's instructions. After loading, no tensor may claim more elements than its
storage holds.
"""
from __future__ import annotations

import io
import os
import pickle
import zipfile
import re
from typing import Any, Iterable, Mapping

import numpy as np
import torch

from .errors import FileLimitError, ModelError, UnsafeFileError
from .file_limits import (MAX_PLAIN_PICKLE_BYTES, MAX_TENSOR_EXPANSION_BYTES, MAX_TORCH_PICKLE_BYTES,
                          MAX_UNPACKED_BYTES, ZIP_MAGIC, check_file_size, check_zip, format_limit,
                          format_size)
from .paths import require_file
from .pickle_scan import scan_pickle

_UNSUPPORTED_GLOBAL = re.compile(r"(?:GLOBAL|global) ([\w.]+)")


def _numpy_globals() -> list:
    """numpy objects that a pickled ndarray references (numpy 1.x and 2.x spell the module differently)."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    found: list = [np.ndarray, np.dtype]
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        found.append((multiarray._reconstruct, f"{module}._reconstruct"))
        found.append((multiarray.scalar, f"{module}.scalar"))
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and name.endswith("DType") and "Object" not in name and "Void" not in name:
                found.append(cls)
    return found


def inert_class(qualified_name: str) -> type:
    """A data-only stand-in for a class we refuse to import (e.g. 'fairseq.data.dictionary.Dictionary').

    Unpickling fills the instance's __dict__ and nothing else; no method of the real class ever runs.
    """
    module, _, name = qualified_name.rpartition(".")
    cls = type(name, (), {"__module__": module, "__doc__": f"Inert stand-in for {qualified_name}."})
    cls.__qualname__ = name
    return cls


def _refusal(path: str, what: str, err: Exception) -> UnsafeFileError:
    found = _UNSUPPORTED_GLOBAL.search(str(err))
    culprit = f" ({found.group(1)})" if found else ""
    return UnsafeFileError(
        f"Refused to load {what} '{os.path.basename(path)}': it contains a Python object{culprit} that could run "
        "code when loaded. Only tensors, numbers, strings, lists, dicts and numpy arrays are accepted. "
        "Re-save the weights as a plain state dict in a trusted environment if you need this file."
    )


def _check_readable(path: str, what: str) -> None:
    require_file(path, what, ModelError, empty_hint="; the download or copy probably failed")


LEGACY_PICKLES = 5  # a legacy torch file: magic number, protocol, sys info, the object, storage keys; then data


def _is_zip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(len(ZIP_MAGIC)) == ZIP_MAGIC


def check_torch_file(path: str, what: str) -> bool:
    """Hold a torch.save() file to the limits before torch reads it; True for the zip format.

    Zip: the directory (check_zip), then every member pickle (data.pkl) for its declared size and its
    instructions, read from the archive in a stream. Legacy: the file's size (its storages are read into
    memory) and the instructions of its leading pickles.
    """
    name = os.path.basename(path)
    if _is_zip(path):
        summary = check_zip(path, what)
        pickles = [info for info in summary.infos if info.filename.endswith(".pkl")]
        for info in pickles:
            if info.file_size > MAX_TORCH_PICKLE_BYTES:
                raise FileLimitError(
                    f"{what} '{name}' holds a {format_size(info.file_size)} {info.filename.rsplit('/', 1)[-1]} (limit "
                    f"{format_limit(MAX_TORCH_PICKLE_BYTES)}; a so-vits-svc training checkpoint's is about 250 KiB): "
                    "refused before unpickling.")
        with zipfile.ZipFile(path) as archive:
            for info in pickles:
                with archive.open(info) as member:
                    scan_pickle(member, name, MAX_TORCH_PICKLE_BYTES)
        return True
    check_file_size(path, MAX_UNPACKED_BYTES, what)
    with open(path, "rb") as fh:
        for _ in range(LEGACY_PICKLES):
            if not fh.peek(1):
                break
            scan_pickle(fh, name, MAX_TORCH_PICKLE_BYTES)
    return False


def check_tensors(obj: Any, path: str, what: str) -> None:
    """FileLimitError for a loaded tensor that claims more data than its storage holds (a stride-0 view of a few
    bytes declared as gigabytes, which the first copy would materialise), or that is not a plain dense CPU
    tensor."""
    name = os.path.basename(path)
    todo, seen = [obj], set()
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            if item.layout != torch.strided or item.is_meta or item.is_quantized or item.is_nested:
                raise FileLimitError(f"{what} '{name}' holds a {item.layout} tensor without plain data "
                                     f"(shape {list(item.shape)}); only dense tensors are accepted.")
            logical = item.numel() * item.element_size()
            stored = item.untyped_storage().nbytes()
            if logical > stored + MAX_TENSOR_EXPANSION_BYTES:
                raise FileLimitError(f"{what} '{name}' declares a tensor of shape {list(item.shape)} "
                                     f"({format_size(logical)}) over {format_size(stored)} of data: refused.")
        elif isinstance(item, Mapping):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo.extend(item)
        elif hasattr(item, "__dict__") and not isinstance(item, type):
            todo.extend(vars(item).values())


def load_torch(path: str | os.PathLike, what: str = "checkpoint", inert: Iterable[str] = (), mmap: bool = True,
               allowed: Iterable[Any] = ()) -> Any:
    """Read a torch.save() file with weights_only=True; tensors land on the CPU.

    `inert` lists fully qualified class names to replace by data-only stand-ins (see `inert_class`).
    `allowed`: more globals the caller vouches for (value classes such as fractions.Fraction, which the file may
    call with its own arguments: nothing with effects beyond building a value).
    mmap (zip-format files): tensors are mapped from the file, not read, so parts a caller never touches (the
    optimizer state inside a training G_*.pth, about twice the model) cost no memory.
    Raises UnsafeFileError for anything that would need other globals, ModelError for unreadable files.
    """
    path = os.fspath(path)
    _check_readable(path, what)
    is_zip = check_torch_file(path, what)
    permitted = _numpy_globals() + [inert_class(name) for name in inert] + list(allowed)
    try:
        with torch.serialization.safe_globals(permitted):
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap and is_zip)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" in str(err) or "Unsupported global" in str(err):
            raise _refusal(path, what, err) from None
        raise ModelError(f"{what} '{os.path.basename(path)}' could not be read as a PyTorch file: {err}") from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as err:
        raise ModelError(
            f"{what} '{os.path.basename(path)}' is not a readable PyTorch file (truncated or a different format): "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None
    check_tensors(obj, path, what)
    return obj


NPY_SUFFIX = ".npy"


def load_npz(path: str | os.PathLike, what: str = "array file") -> dict[str, np.ndarray]:
    """Read a numpy .npz (np.savez / savez_compressed) as {name: array}, never unpickling anything.

    Before any array is read: the zip's directory (check_zip), then each member's .npy header, whose shape and
    dtype must fit in the bytes the member declares (numpy allocates the array from the header first).
    """
    path = os.fspath(path)
    _check_readable(path, what)
    name = os.path.basename(path)
    summary = check_zip(path, what)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with zipfile.ZipFile(path) as archive:
        for info in summary.infos:
            if not info.filename.endswith(NPY_SUFFIX):
                raise ModelError(f"{what} '{name}' holds '{info.filename}', which is not a .npy array.")
            with archive.open(info) as member:
                try:
                    version = np.lib.format.read_magic(member)
                    shape, _, dtype = readers[version](member)
                except (ValueError, KeyError, EOFError, OSError) as err:
                    raise ModelError(f"{what} '{name}': '{info.filename}' is not a readable .npy array "
                                     f"({err or 'unknown format version'}).") from None
            if dtype.hasobject:
                raise UnsafeFileError(f"Refused to load {what} '{name}': '{info.filename}' holds Python objects, "
                                      "which would be unpickled.")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if declared > info.file_size:
                raise FileLimitError(f"{what} '{name}': '{info.filename}' declares a {list(shape)} {dtype} array "
                                     f"({format_size(declared)}) in a {format_size(info.file_size)} member: refused "
                                     "before reading it.")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
        raise ModelError(f"{what} '{name}' is not a readable .npz file: {err}") from None


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, allowed: Mapping[tuple[str, str], Any]) -> None:
        super().__init__(file)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name}") from None


def load_pickle(path: str | os.PathLike, allowed: Mapping[tuple[str, str], Any], what: str = "file") -> Any:
    """Read a plain pickle resolving only the (module, name) globals in `allowed`."""
    path = os.fspath(path)
    _check_readable(path, what)
    size = check_file_size(path, MAX_PLAIN_PICKLE_BYTES, what)
    with open(path, "rb") as fh:
        scan_pickle(fh, os.path.basename(path), size)
    try:
        with open(path, "rb") as fh:
            return _AllowListUnpickler(fh, allowed).load()
    except pickle.UnpicklingError as err:
        if str(err).startswith("global "):
            raise _refusal(path, what, err) from None
        raise ModelError(f"{what} '{os.path.basename(path)}' is not a readable pickle: {err}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
        raise ModelError(f"{what} '{os.path.basename(path)}' is not a readable pickle (truncated?): {err}") from None
