"""Bound what a pickle would build before any unpickler sees it.

`scan_pickle(fh, ...)` walks the instruction stream once, without building the objects: it counts
instructions, estimates the memory of the objects they would create, skips literal payloads (a faiss index's
bytes) without reading them into memory, and follows a shallow stack of literals so that a call such as
`bytearray(4_000_000_000)` or numpy's `_reconstruct(ndarray, (10**9,), ...)` is seen with its arguments.
Anything over a limit of svc_core/file_limits.py raises FileLimitError.

Why not pickletools.genops: it reads every argument into memory (a 2 GB BINBYTES8 would be read to be skipped)
and knows nothing of the stack, so it cannot tell `bytearray(n)` from a reference to `bytearray`. We still take
each instruction's argument layout and stack effect from pickletools' opcode table.
"""
from __future__ import annotations

import math
import pickletools
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

from .errors import FileLimitError, ModelError
from .file_limits import (MAX_PICKLE_ALLOCATION_BYTES, MAX_PICKLE_FRAME_BYTES, MAX_PICKLE_OBJECT_BYTES,
                          MAX_PICKLE_OPCODES, MAX_PICKLE_TEXT_LINE_BYTES, format_limit, format_size)

_OPS = {op.code.encode("latin-1"): op for op in pickletools.opcodes}
_MARK = pickletools.markobject
_LENGTH_PREFIX = {pickletools.TAKEN_FROM_ARGUMENT1: ("<B", 1), pickletools.TAKEN_FROM_ARGUMENT4: ("<i", 4),
                  pickletools.TAKEN_FROM_ARGUMENT4U: ("<I", 4), pickletools.TAKEN_FROM_ARGUMENT8U: ("<Q", 8)}
_FIXED_INTS = {"BININT": "<i", "BININT1": "<B", "BININT2": "<H", "BINGET": "<B", "LONG_BINGET": "<I",
               "BINPUT": "<B", "LONG_BINPUT": "<I", "FRAME": "<Q", "PROTO": "<B"}  # fixed-size integer arguments
_INT_LITERALS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4"}
_BYTES_LITERALS = {"SHORT_BINBYTES", "BINBYTES", "BINBYTES8", "SHORT_BINSTRING", "BINSTRING", "BYTEARRAY8"}

# Estimated bytes each instruction makes the unpickler hold (object header, memo entry, list slot); literal
# payloads are counted apart (they are bounded by the file's size, checked before).
_COST_DEFAULT = 16
_COST = {"EMPTY_LIST": 72, "EMPTY_DICT": 104, "EMPTY_SET": 216, "LIST": 72, "DICT": 104, "FROZENSET": 216,
         "TUPLE": 56, "TUPLE1": 56, "TUPLE2": 64, "TUPLE3": 72, "SETITEM": 48, "SETITEMS": 48, "APPEND": 16,
         "APPENDS": 16, "ADDITEMS": 48, "PUT": 104, "BINPUT": 104, "LONG_BINPUT": 104, "MEMOIZE": 104,
         "REDUCE": 128, "BUILD": 64, "NEWOBJ": 128, "NEWOBJ_EX": 128, "OBJ": 128, "INST": 128, "GLOBAL": 64,
         "STACK_GLOBAL": 64, "BINPERSID": 128, "PERSID": 128, "FLOAT": 32, "BINFLOAT": 32, "LONG": 32,
         "LONG1": 32, "LONG4": 32, "INT": 32, "BININT": 32}
_TEXT_OPS = {"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_KEEP_LITERAL_BYTES = 256  # strings this short are kept on the simulated stack (global names, small args)
UNICODE_WIDENING = 3  # a str may take up to 4 bytes per UTF-8 byte in memory: count 3 more per payload byte

# Calls whose integer arguments size a buffer -> bytes per unit (8: an upper bound, the widest element); torch's
# typed storages and tensors (torch.FloatStorage(n), torch.cuda.HalfTensor(a, b)) count 8 too.
_SIZED_CONSTRUCTORS = {"builtins.bytearray": 1, "torch.storage.UntypedStorage": 1, "torch.storage.TypedStorage": 8,
                       "torch.Tensor": 8, "numpy.core.multiarray._reconstruct": 8,
                       "numpy._core.multiarray._reconstruct": 8}
_ELEMENT_BYTES_BOUND = 8


class _Global(str):
    """A global the stream names (module.name), as pushed by GLOBAL / STACK_GLOBAL."""


_ANY = object()  # a value the scan does not follow


@dataclass(frozen=True)
class PickleStats:
    """What a scanned pickle holds: instructions, estimated object memory (bytes), literal payload bytes, end
    offset (bytes from where the scan started) and the globals it names."""

    opcodes: int
    object_bytes: int
    payload_bytes: int
    end: int
    globals: frozenset[str]


def _unit_bytes(name: str) -> int:
    """Bytes per unit of size a constructor allocates; 0 when `name` does not allocate from its arguments."""
    if name in _SIZED_CONSTRUCTORS:
        return _SIZED_CONSTRUCTORS[name]
    module, _, leaf = name.rpartition(".")
    return _ELEMENT_BYTES_BOUND if module.startswith("torch") and leaf.endswith(("Storage", "Tensor")) else 0


def _int_leaves(args: Any, depth: int = 0) -> list[int]:
    if isinstance(args, bool):
        return []
    if isinstance(args, int):
        return [args]
    if isinstance(args, tuple) and depth < 2:
        return [n for a in args for n in _int_leaves(a, depth + 1)]
    return []


class _Scanner:
    def __init__(self, fh: BinaryIO, name: str, max_bytes: int) -> None:
        self.fh = fh
        self.name = name
        self.max_bytes = max_bytes
        self.read_bytes = 0
        self.object_bytes = 0
        self.payload_bytes = 0
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.globals: set[str] = set()

    # -- reading
    def _refuse(self, problem: str) -> FileLimitError:
        return FileLimitError(f"'{self.name}' {problem}: refused before unpickling.")

    def _broken(self, problem: str) -> ModelError:
        return ModelError(f"'{self.name}' is not a readable pickle ({problem}; truncated or not a pickle).")

    def read(self, n: int) -> bytes:
        self._advance(n)
        data = self.fh.read(n)
        if len(data) != n:
            raise self._broken("it ends in the middle of an instruction")
        return data

    def skip(self, n: int) -> None:
        """Move past n payload bytes without keeping them."""
        self._advance(n)
        left = n
        while left:
            chunk = self.fh.read(min(left, 1 << 20))
            if not chunk:
                raise self._broken("a literal runs past the end of the file")
            left -= len(chunk)

    def _advance(self, n: int) -> None:
        self.read_bytes += n
        if self.read_bytes > self.max_bytes:
            raise self._refuse(f"holds a pickle longer than {format_limit(self.max_bytes)}")

    def line(self) -> bytes:
        data = self.fh.readline(MAX_PICKLE_TEXT_LINE_BYTES + 1)
        self._advance(len(data))
        if not data.endswith(b"\n"):
            raise self._broken("a text argument has no end of line")
        return data[:-1]

    # -- stack
    def pop(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise self._broken("an instruction takes more values than were pushed")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise self._broken("an instruction needs a MARK that is not there")
        at = self.marks.pop()
        items = self.stack[at:]
        del self.stack[at:]
        return items

    def charge(self, n: int) -> None:
        self.object_bytes += n
        if self.object_bytes > MAX_PICKLE_OBJECT_BYTES:
            raise self._refuse(f"would build more than {format_limit(MAX_PICKLE_OBJECT_BYTES)} of Python objects")

    def check_call(self, func: Any, args: Any) -> None:
        unit = _unit_bytes(func) if isinstance(func, _Global) else 0
        if not unit:
            return
        leaves = _int_leaves(args)
        if not leaves:
            return
        if any(n < 0 for n in leaves):
            raise self._refuse(f"calls {func} with a negative size")
        size = math.prod(min(n, 1 << 62) for n in leaves) * unit
        if size > MAX_PICKLE_ALLOCATION_BYTES:
            raise self._refuse(f"asks {func} for up to {format_size(size)} (limit "
                               f"{format_limit(MAX_PICKLE_ALLOCATION_BYTES)} per buffer declared in the stream)")

    # -- one instruction
    def literal(self, op: pickletools.OpcodeInfo, count: int) -> Any:
        """Read (or skip) a length-prefixed literal of `count` bytes; its value when it is short."""
        if count < 0:
            raise self._broken("a literal has a negative length")
        self.payload_bytes += count
        if op.name in _TEXT_OPS:
            self.charge(UNICODE_WIDENING * count)
        if count > _KEEP_LITERAL_BYTES:
            self.skip(count)
            return _ANY
        data = self.read(count)
        if op.name in _TEXT_OPS:
            return data.decode("utf-8", "replace")
        return data

    def argument(self, op: pickletools.OpcodeInfo) -> Any:
        """The instruction's argument: an int for integer and memo-index arguments, a short literal's value,
        a _Global for GLOBAL/INST, _ANY for what the scan does not follow; None when it takes none."""
        arg = op.arg
        if arg is None:
            return None
        if arg.n in _LENGTH_PREFIX:
            fmt, size = _LENGTH_PREFIX[arg.n]
            count = struct.unpack(fmt, self.read(size))[0]
            if count < 0:
                raise self._broken("a literal has a negative length")
            if op.name in ("LONG1", "LONG4"):
                if count > _KEEP_LITERAL_BYTES:
                    self.skip(count)
                    return _ANY
                return int.from_bytes(self.read(count), "little", signed=True)
            return self.literal(op, count)
        if arg.n == pickletools.UP_TO_NEWLINE:
            text = self.line()
            if arg.name == "stringnl_noescape_pair":
                return _Global(f"{text.decode('utf-8', 'replace')}.{self.line().decode('utf-8', 'replace')}")
            if op.name in ("INT", "LONG", "GET", "PUT"):
                digits = text.rstrip(b"L")
                return int(digits) if digits.lstrip(b"-").isdigit() and len(digits) < 40 else _ANY
            return _ANY
        raw = self.read(arg.n)
        fmt = _FIXED_INTS.get(op.name)
        return struct.unpack(fmt, raw)[0] if fmt else _ANY

    def _skip_any(self, count: int) -> Any:
        self.skip(count)
        return _ANY

    def step(self, code: bytes) -> bool:
        """Run one instruction's stack effect; False at STOP."""
        plan = _PLANS.get(code)
        if plan is None:
            raise self._broken(f"unknown instruction byte {code!r}")
        value = self.argument(plan.op) if plan.op.arg is not None else None
        self.charge(plan.cost)
        if plan.special is not None:
            return plan.special(self, value)
        if plan.has_mark:
            self.pop_mark()
        kept = [self.pop() for _ in range(plan.below)][::-1] if plan.below else ()
        if plan.literal:
            self.stack.append(value)  # followed literals: ints, short strings and bytes (else _ANY)
        elif plan.keeps_first and kept:
            self.stack.append(kept[0])
        elif plan.pushed:
            self.stack.extend([_ANY] * plan.pushed)
        return True

    # -- instructions with their own handling (see _SPECIAL)
    def _frame(self, value: int) -> bool:
        if value > MAX_PICKLE_FRAME_BYTES:
            raise self._refuse(f"declares a {format_size(value)} frame (limit {format_limit(MAX_PICKLE_FRAME_BYTES)})")
        return True

    def _stop(self, value: None) -> bool:
        self.pop()
        return False

    def _mark(self, value: None) -> bool:
        self.marks.append(len(self.stack))
        return True

    def _put(self, value: int) -> bool:
        if not self.stack:
            raise self._broken("it stores an empty stack in the memo")
        self.memo[value] = self.stack[-1]
        return True

    def _memoize(self, value: None) -> bool:
        return self._put(len(self.memo))

    def _get(self, value: int) -> bool:
        if value not in self.memo:
            raise self._broken("it reads a memo entry that was never stored")
        self.stack.append(self.memo[value])
        return True

    def _stack_global(self, value: None) -> bool:
        leaf, module = self.pop(), self.pop()
        found = _Global(f"{module}.{leaf}") if isinstance(module, str) and isinstance(leaf, str) else _ANY
        if found is not _ANY:
            self.globals.add(found)
        self.stack.append(found)
        return True

    def _global(self, value: _Global) -> bool:
        self.globals.add(value)
        self.stack.append(value)
        return True

    def _reduce(self, value: None) -> bool:
        args, func = self.pop(), self.pop()
        self.check_call(func, args)
        self.stack.append(_ANY)
        return True

    def _newobj_ex(self, value: None) -> bool:
        self.pop()
        return self._reduce(value)

    def _tuple(self, value: None) -> bool:
        items = self.pop_mark()
        self.stack.append(tuple(items) if len(items) <= _TUPLE_KEPT else _ANY)
        return True

    def _small_tuple(self, n: int) -> bool:
        items = [self.pop() for _ in range(n)][::-1]
        self.stack.append(tuple(items))
        return True

    def _dup(self, value: None) -> bool:
        top = self.pop()
        self.stack += [top, top]
        return True

    def _obj(self, value: None) -> bool:
        items = self.pop_mark()
        if items:
            self.check_call(items[0], tuple(items[1:]))
        self.stack.append(_ANY)
        return True

    def _inst(self, value: _Global) -> bool:
        items = self.pop_mark()
        self.globals.add(value)
        self.check_call(value, tuple(items))
        self.stack.append(_ANY)
        return True


_TUPLE_KEPT = 8  # tuples up to this length are followed (call arguments, shapes)
_SPECIAL = {
    "FRAME": _Scanner._frame, "STOP": _Scanner._stop, "MARK": _Scanner._mark, "PUT": _Scanner._put,
    "BINPUT": _Scanner._put, "LONG_BINPUT": _Scanner._put, "MEMOIZE": _Scanner._memoize, "GET": _Scanner._get,
    "BINGET": _Scanner._get, "LONG_BINGET": _Scanner._get, "STACK_GLOBAL": _Scanner._stack_global,
    "GLOBAL": _Scanner._global, "REDUCE": _Scanner._reduce, "NEWOBJ": _Scanner._reduce,
    "NEWOBJ_EX": _Scanner._newobj_ex, "TUPLE": _Scanner._tuple, "DUP": _Scanner._dup, "OBJ": _Scanner._obj,
    "INST": _Scanner._inst,
    "EMPTY_TUPLE": lambda self, value: self._small_tuple(0), "TUPLE1": lambda self, value: self._small_tuple(1),
    "TUPLE2": lambda self, value: self._small_tuple(2), "TUPLE3": lambda self, value: self._small_tuple(3),
}
_KEEPS_FIRST = {"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"}  # push back the container


@dataclass(frozen=True)
class _Plan:
    """How the scan runs one instruction: its pickletools description, estimated cost (bytes), its own handler
    or the generic stack effect (values popped below a mark, pushed, container kept, literal pushed)."""

    op: pickletools.OpcodeInfo
    cost: int
    special: Any
    has_mark: bool
    below: int
    pushed: int
    keeps_first: bool
    literal: bool


def _plan(op: pickletools.OpcodeInfo) -> _Plan:
    before = op.stack_before
    has_mark = _MARK in before
    return _Plan(op, _COST.get(op.name, _COST_DEFAULT), _SPECIAL.get(op.name), has_mark,
                 before.index(_MARK) if has_mark else len(before), len(op.stack_after), op.name in _KEEPS_FIRST,
                 op.name in _INT_LITERALS or op.name in _TEXT_OPS or op.name in _BYTES_LITERALS)


_PLANS = {code: _plan(op) for code, op in _OPS.items()}


def scan_pickle(fh: BinaryIO, name: str, max_bytes: int) -> PickleStats:
    """Walk one pickle from fh's position to its STOP; FileLimitError over a limit, ModelError when malformed.

    name: the file name for messages; max_bytes: the longest stream accepted, payloads included.
    """
    scanner = _Scanner(fh, name, max_bytes)
    read, step = fh.read, scanner.step
    for count in range(MAX_PICKLE_OPCODES + 1):
        code = read(1)
        scanner.read_bytes += 1
        if not code:
            raise scanner._broken("it ends before its STOP instruction")
        if scanner.read_bytes > max_bytes:
            scanner._advance(0)
        if not step(code):
            return PickleStats(count + 1, scanner.object_bytes, scanner.payload_bytes, scanner.read_bytes,
                               frozenset(scanner.globals))
    raise scanner._refuse(f"holds more than {MAX_PICKLE_OPCODES:,} pickle instructions")
