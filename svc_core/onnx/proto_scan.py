"""Hold an ONNX file to the limits of svc_core/file_limits.py before onnx or ONNX Runtime parse it.

`check_onnx_file(path)` walks the protobuf wire format of the ModelProto once, seeking over tensor payloads
instead of reading them, and refuses (FileLimitError) a file that is too large, has too many operators or
fields, declares tensors larger than the bytes it holds (an initializer of dims [10**12] with 16 bytes of data, a
sparse initializer whose dense shape is terabytes: ONNX Runtime densifies those when it opens the file), or keeps
weights in external-data files outside the model's folder or past their ends.

Why walk the wire format ourselves: onnx.load and ONNX Runtime build every message in memory first, so a file
of millions of empty nodes costs tens of times its size before anyone can count them.
"""
from __future__ import annotations

import math
import mmap
import os
from dataclasses import dataclass, field

from ..errors import FileLimitError, ModelError
from ..file_limits import (MAX_ONNX_EXTERNAL_BYTES, MAX_ONNX_FIELDS, MAX_ONNX_FILE_BYTES, MAX_ONNX_NODES,
                           MAX_ONNX_PARSE_OVERHEAD_BYTES, check_file_size, format_limit, format_size)

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5  # protobuf wire types

# Field numbers (onnx/onnx.proto3) of the messages we descend into; other length-delimited fields are skipped.
MODEL_GRAPH, MODEL_FUNCTIONS = 7, 25
GRAPH_NODE, GRAPH_INITIALIZER, GRAPH_SPARSE_INITIALIZER = 1, 5, 15
NODE_ATTRIBUTE = 5
FUNCTION_NODE = 7
ATTR_T, ATTR_G, ATTR_TENSORS, ATTR_GRAPHS, ATTR_SPARSE, ATTR_SPARSES = 5, 6, 10, 11, 22, 23
TENSOR_DIMS, TENSOR_TYPE, TENSOR_RAW, TENSOR_EXTERNAL, TENSOR_LOCATION = 1, 2, 9, 13, 14
TENSOR_TYPED = {4: 4, 5: 0, 7: 0, 10: 8, 11: 0}  # float_data, int32_data, int64_data, double_data, uint64_data
# -> bytes per element in the wire (0: varint, at least 1 byte each)
SPARSE_VALUES, SPARSE_INDICES, SPARSE_DIMS = 1, 2, 3
ENTRY_KEY, ENTRY_VALUE = 1, 2
EXTERNAL_LOCATION = 1  # TensorProto.DataLocation.EXTERNAL

# onnx.TensorProto.DataType -> bits per element (strings are not sized)
ELEMENT_BITS = {1: 32, 2: 8, 3: 8, 4: 16, 5: 16, 6: 32, 7: 64, 9: 8, 10: 16, 11: 64, 12: 32, 13: 64, 14: 64,
                15: 128, 16: 16, 17: 8, 18: 8, 19: 8, 20: 8, 21: 4, 22: 4, 23: 4, 24: 8, 25: 2, 26: 2}
MESSAGE_COST = 192  # estimated bytes of a parsed message (header, field table)
FIELD_COST = 16  # estimated bytes of one parsed field, payload apart
SKIPPED_MESSAGE_FACTOR = 8  # a message we do not walk may expand to this many times its wire size


@dataclass
class OnnxStats:
    """What a checked ONNX file declares: operators, fields walked, estimated parse overhead (bytes), tensor
    bytes declared (dense) and held in the file or in external files."""

    nodes: int = 0
    fields: int = 0
    overhead_bytes: int = 0
    declared_bytes: int = 0
    stored_bytes: int = 0
    external_bytes: int = 0
    external_files: dict[str, int] = field(default_factory=dict)


class _Walker:
    def __init__(self, data, path: str, size: int) -> None:
        self.data = data  # the file, memory-mapped: walking touches only the pages of the headers
        self.at = 0
        self.path = path
        self.name = os.path.basename(path)
        self.folder = os.path.dirname(os.path.abspath(path))
        self.size = size
        self.stats = OnnxStats()

    # -- wire format
    def _broken(self, what: str) -> ModelError:
        return ModelError(f"'{self.name}' is not a readable ONNX file ({what}).")

    def _refuse(self, what: str) -> FileLimitError:
        return FileLimitError(f"ONNX file '{self.name}' {what}: refused before loading it.")

    def varint(self) -> int:
        data, at, size = self.data, self.at, self.size
        shift = result = 0
        while True:
            if at >= size:
                raise self._broken("it ends inside a number")
            byte = data[at]
            at += 1
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.at = at
                return result
            shift += 7
            if shift > 63:
                raise self._broken("a number is longer than 10 bytes")

    def fields(self, end: int):
        """(field number, wire type, value or payload length) up to offset `end`; LENGTH payloads are left
        unread at the current position for the caller to walk or skip."""
        stats = self.stats
        while self.at < end:
            key = self.varint()
            number, wire = key >> 3, key & 7
            stats.fields += 1
            stats.overhead_bytes += FIELD_COST
            if stats.fields > MAX_ONNX_FIELDS:
                raise self._refuse(f"has more than {MAX_ONNX_FIELDS:,} protobuf fields")
            if stats.overhead_bytes > MAX_ONNX_PARSE_OVERHEAD_BYTES:
                raise self._refuse(f"would take more than {format_limit(MAX_ONNX_PARSE_OVERHEAD_BYTES)} of memory "
                                   "to parse (many tiny messages)")
            if wire == VARINT:
                yield number, wire, self.varint()
            elif wire == FIXED64:
                self.at += 8
                yield number, wire, None
            elif wire == FIXED32:
                self.at += 4
                yield number, wire, None
            elif wire == LENGTH:
                length = self.varint()
                start = self.at
                if start + length > end:
                    raise self._broken("a field runs past the end of its message")
                yield number, wire, length
                if self.at == start:
                    self.at = start + length  # the caller did not walk it
                elif self.at != start + length:
                    raise self._broken("a message does not end where its length says")
            else:
                raise self._broken(f"unsupported wire type {wire}")
        if self.at != end:
            raise self._broken("a field runs past the end of its message")

    def skip(self, n: int) -> None:
        self.at += n

    def message(self) -> None:
        self.stats.overhead_bytes += MESSAGE_COST

    def skipped_message(self, length: int) -> None:
        """A submessage we do not walk (value info, opset ids, ...): charge its worst-case expansion."""
        self.stats.overhead_bytes += SKIPPED_MESSAGE_FACTOR * length
        self.skip(length)

    # -- messages
    def model(self) -> None:
        for number, wire, value in self.fields(self.size):
            if wire != LENGTH:
                continue
            if number == MODEL_GRAPH:
                self.graph(self.at + value)
            elif number == MODEL_FUNCTIONS:
                self.function(self.at + value)
            else:
                self.skipped_message(value)

    def graph(self, end: int) -> None:
        self.message()
        for number, wire, value in self.fields(end):
            if wire != LENGTH:
                continue
            if number == GRAPH_NODE:
                self.node(self.at + value)
            elif number == GRAPH_INITIALIZER:
                self.tensor(self.at + value)
            elif number == GRAPH_SPARSE_INITIALIZER:
                self.sparse(self.at + value)
            else:
                self.skipped_message(value)

    def function(self, end: int) -> None:
        self.message()
        for number, wire, value in self.fields(end):
            if wire == LENGTH and number == FUNCTION_NODE:
                self.node(self.at + value)
            elif wire == LENGTH:
                self.skipped_message(value)

    def node(self, end: int) -> None:
        self.message()
        self.stats.nodes += 1
        if self.stats.nodes > MAX_ONNX_NODES:
            raise self._refuse(f"has more than {MAX_ONNX_NODES:,} operators")
        for number, wire, value in self.fields(end):
            if wire == LENGTH and number == NODE_ATTRIBUTE:
                self.attribute(self.at + value)
            elif wire == LENGTH:
                self.skipped_message(value)

    def attribute(self, end: int) -> None:
        self.message()
        for number, wire, value in self.fields(end):
            if wire != LENGTH:
                continue
            here = self.at
            if number in (ATTR_T, ATTR_TENSORS):
                self.tensor(here + value)
            elif number in (ATTR_G, ATTR_GRAPHS):
                self.graph(here + value)
            elif number in (ATTR_SPARSE, ATTR_SPARSES):
                self.sparse(here + value)
            else:
                self.skipped_message(value)

    def dims(self, wire: int, value: int, into: list[int]) -> None:
        if wire == VARINT:
            into.append(value)
            return
        end = self.at + value
        while self.at < end:
            into.append(self.varint())
        self.stats.overhead_bytes += 8 * value

    def tensor(self, end: int) -> tuple[int, int]:
        """Check one TensorProto; (declared elements, element bytes)."""
        self.message()
        dims: list[int] = []
        dtype, location, stored, typed_elements = 0, 0, None, 0
        external: dict[str, str] = {}
        for number, wire, value in self.fields(end):
            if number == TENSOR_DIMS:
                self.dims(wire, value, dims)
            elif number == TENSOR_TYPE and wire == VARINT:
                dtype = value
            elif number == TENSOR_LOCATION and wire == VARINT:
                location = value
            elif number == TENSOR_RAW and wire == LENGTH:
                stored = value
            elif number in TENSOR_TYPED:
                wire_width = TENSOR_TYPED[number]
                if wire == LENGTH:
                    typed_elements += value // wire_width if wire_width else value
                    self.stats.overhead_bytes += value if wire_width else 8 * value
                else:
                    typed_elements += 1
            elif number == TENSOR_EXTERNAL and wire == LENGTH:
                key, text = self.entry(self.at + value)
                external[key] = text
            elif wire == LENGTH:
                self.skipped_message(value)
        if any(d < 0 or d >= 1 << 62 for d in dims):
            raise self._refuse(f"declares a tensor dimension of {max(dims):,}")
        elements = math.prod(dims) if dims else 1
        bits = ELEMENT_BITS.get(dtype, 0)
        declared = -(-elements * bits // 8)
        width = -(-bits // 8)  # bytes per element in the typed fields
        if location == EXTERNAL_LOCATION:
            held = self.external(external)
        else:  # raw_data, else the typed fields (varint ones: at most one element per byte)
            held = stored if stored is not None else typed_elements * max(width, 1)
            self.stats.stored_bytes += held
        if declared > held:
            raise self._refuse(f"declares a tensor of shape {dims} ({format_size(declared)}) but holds "
                               f"{format_size(held)} of data for it")
        self.stats.declared_bytes += declared
        return elements, width

    def sparse(self, end: int) -> None:
        """A sparse tensor: its values and indices are checked as tensors; its dense shape counts as declared
        bytes, since ONNX Runtime densifies sparse initializers when it opens the file."""
        self.message()
        dims: list[int] = []
        width = 4
        for number, wire, value in self.fields(end):
            if number in (SPARSE_VALUES, SPARSE_INDICES) and wire == LENGTH:
                _, element = self.tensor(self.at + value)
                if number == SPARSE_VALUES:
                    width = max(element, 1)
            elif number == SPARSE_DIMS:
                self.dims(wire, value, dims)
            elif wire == LENGTH:
                self.skipped_message(value)
        dense = (math.prod(dims) if dims else 1) * width
        held = self.size + self.stats.external_bytes
        if dense > held:
            raise self._refuse(f"declares a sparse tensor of dense shape {dims} ({format_size(dense)}), more than "
                               f"the {format_size(held)} of data the file holds")
        self.stats.declared_bytes += dense

    def entry(self, end: int) -> tuple[str, str]:
        key = text = ""
        for number, wire, value in self.fields(end):
            if wire == LENGTH and number in (ENTRY_KEY, ENTRY_VALUE):
                data = bytes(self.data[self.at : self.at + min(value, 4096)]).decode("utf-8", "replace")
                self.skip(value)
                key, text = (data, text) if number == ENTRY_KEY else (key, data)
        return key, text

    def external(self, entry: dict[str, str]) -> int:
        """Bytes an external-data reference holds, after checking it stays inside the model's folder."""
        location = entry.get("location", "")
        parts = location.replace("\\", "/").split("/")
        target = os.path.realpath(os.path.join(self.folder, location.replace("\0", "")))
        inside = target.startswith(os.path.realpath(self.folder) + os.sep)
        if not location or os.path.isabs(location) or ".." in parts or not inside or "\0" in location:
            raise self._refuse(f"keeps weights in other files ('{location[:120]}', outside the model's folder)")
        if not os.path.isfile(target):
            raise ModelError(f"ONNX file '{self.name}' keeps weights in other files ('{location[:120]}', which is "
                             "not beside it).")
        file_size = self.stats.external_files.setdefault(target, os.path.getsize(target))
        try:
            offset = int(entry.get("offset", "0") or 0)
            length = int(entry["length"]) if entry.get("length") else file_size - offset
        except ValueError:
            raise self._broken(f"external data of '{location}' has an unreadable offset or length") from None
        if offset < 0 or length < 0 or offset + length > file_size:
            raise self._refuse(f"reads {format_size(length)} at offset {offset:,} of '{location}', which is "
                               f"{format_size(file_size)}")
        self.stats.external_bytes += length
        if self.stats.external_bytes > MAX_ONNX_EXTERNAL_BYTES:
            raise self._refuse(f"keeps more than {format_size(MAX_ONNX_EXTERNAL_BYTES)} of weights in external "
                               "files")
        return length


def check_onnx_file(path: str | os.PathLike) -> OnnxStats:
    """Walk an ONNX file's messages (without building them); FileLimitError over a limit of file_limits.py,
    ModelError when the bytes are not protobuf."""
    path = os.fspath(path)
    size = check_file_size(path, MAX_ONNX_FILE_BYTES, "ONNX file")
    if size == 0:
        raise ModelError(f"ONNX file '{os.path.basename(path)}' is empty (0 bytes).")
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        walker = _Walker(data, path, size)
        walker.model()
    return walker.stats
