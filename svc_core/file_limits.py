"""Size limits for files from strangers, checked before anything in them is decompressed, unpickled or parsed.

Every limit lives here, as a named constant with its unit. They are generous for real community files (sizes
measured on the compat fixtures: a so-vits-svc G_*.pth release is 160-210 MB with 757 zip records and a 93 KB
data.pkl; training checkpoints with optimizer state are about three times larger; ContentVec/HuBERT checkpoints
190-380 MB, whisper medium 1.4 GB, feature_and_index.pkl up to 126 MB, kmeans_10000.pt up to 92 MB) and tight
enough that refusing a crafted file reads only headers and costs well under 200 MB of memory.

Zip archives (torch checkpoints, .npz): `check_zip` reads the end-of-central-directory record first (member count
and directory size), then the central directory (each member's declared sizes, method and name), and refuses
before any member is decompressed. Readers never unpack more than a member declares (zipfile and torch's miniz
both stop at the declared size), so the declared sizes bound the work.
"""
from __future__ import annotations

import os
import struct
import zipfile
from dataclasses import dataclass

from .errors import FileLimitError, ModelError

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

# ---- zip archives: torch zip checkpoints (.pth/.pt), numpy .npz
MAX_UNPACKED_BYTES = 3 * GiB  # total declared size of all members (whisper large-v2, 2.9 GB, is the largest we know)
MAX_COMPRESSION_RATIO = 20  # unpacked / file size (torch stores members uncompressed: ratio 1.0; npz of audio ~1-3)
RATIO_FREE_BYTES = 64 * MiB  # archives unpacking to at most this are not held to the ratio
MAX_ZIP_MEMBERS = 20_000  # records (a G_*.pth release has 757, a training checkpoint about 3,000)
MAX_CENTRAL_DIRECTORY_BYTES = 16 * MiB  # the zip's table of contents (757 records take 64 KiB)
MAX_MEMBER_NAME_CHARS = 1024
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}  # what torch's miniz and numpy read

# ---- pickles: data.pkl inside a torch zip, legacy torch files, plain .pkl (feature_and_index.pkl)
MAX_TORCH_PICKLE_BYTES = 16 * MiB  # data.pkl / a legacy file's object pickle (a G_*.pth's is 93 KB)
MAX_PLAIN_PICKLE_BYTES = 2 * GiB  # a whole .pkl file, faiss index bytes included (real ones: up to 126 MB)
MAX_PICKLE_OPCODES = 500_000  # per pickle (data.pkl of a release G_*.pth: 25,000; of a training one: 90,000)
MAX_PICKLE_OBJECT_BYTES = 64 * MiB  # estimated memory of the objects a pickle builds, literal payloads apart
MAX_PICKLE_ALLOCATION_BYTES = 16 * MiB  # one buffer a pickle asks a constructor for (bytearray(n), Storage(n))
MAX_PICKLE_FRAME_BYTES = 16 * MiB  # protocol-4 frames are 64 KiB when pickle writes them
MAX_PICKLE_TEXT_LINE_BYTES = 64 * KiB  # protocol-0 arguments end at a newline

# ---- faiss indexes (inside feature_and_index.pkl, or .index files)
MAX_FAISS_INDEX_BYTES = 2 * GiB  # a .index file (read whole, then checked; real ones are up to a few hundred MB)
MAX_FAISS_DIM = 4096  # feature width (content encoders give 256 to 1280)
MAX_FAISS_LISTS = 1 << 20  # IVF lists (upstream makes min(16 sqrt(n), n / 39): about 50,000 for 10 M frames)

# ---- tensors after loading: a view may not claim more elements than its storage holds (stride-0 expansions)
MAX_TENSOR_EXPANSION_BYTES = 1 * MiB

# ---- ONNX files (protobuf): 2 GiB is protobuf's own limit for one message
MAX_ONNX_FILE_BYTES = 2 * GiB
MAX_ONNX_EXTERNAL_BYTES = 4 * GiB  # weights kept in external-data files beside the .onnx (total)
MAX_ONNX_NODES = 50_000  # operators in all graphs (so-vits-svc export: 3,581; ContentVec: 1,113; RMVPE: 471)
MAX_ONNX_FIELDS = 500_000  # protobuf fields walked, ~1 s (so-vits-svc export: 40,000; ContentVec: 11,000)
MAX_ONNX_PARSE_OVERHEAD_BYTES = 128 * MiB  # estimated memory of the parsed messages, tensor payloads apart

# ---- text files
MAX_CONFIG_BYTES = 1 * MiB  # config.json / MoeVoiceStudio descriptor (real ones are 2-5 KB)


def format_size(n: int | float) -> str:
    """Bytes for people: '4.0 GiB', '3.9 MiB', '812 bytes'."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


def format_limit(n: int) -> str:
    """A limit as written in messages: '3 GiB', '16 MiB', '20,000'."""
    return format_size(n).replace(".0 ", " ")


def check_file_size(path: str | os.PathLike, limit: int, what: str) -> int:
    """The file's size in bytes; FileLimitError when it is larger than `limit`."""
    size = os.path.getsize(path)
    if size > limit:
        raise FileLimitError(f"{what} '{os.path.basename(os.fspath(path))}' is {format_size(size)}, larger than "
                             f"the {format_limit(limit)} accepted for such files: refused without reading it.")
    return size


# ------------------------------------------------------------------------------------------- zip archives

_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record
_EOCD_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
_MAX_COMMENT = 65535
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class ZipDirectory:
    """What a zip's end records declare: member count and the central directory's size (bytes)."""

    members: int
    directory_bytes: int


def read_zip_directory_size(fh, file_size: int) -> ZipDirectory | None:
    """The member count and directory size from the end records (zip64 too), reading at most 64 KiB; None when
    the file has no end record (not a zip, or truncated).

    zipfile reads the same records but goes on to build every member's ZipInfo at once; this lets the caller
    refuse a directory of millions of members before that happens.
    """
    tail = min(file_size, _EOCD.size + _MAX_COMMENT)
    fh.seek(file_size - tail)
    data = fh.read(tail)
    at = data.rfind(_EOCD_SIGNATURE)
    if at < 0 or len(data) - at < _EOCD.size:
        return None
    _, _, _, _, count, cd_size, cd_offset, _ = _EOCD.unpack_from(data, at)
    eocd_pos = file_size - tail + at
    if (count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF) and eocd_pos >= _ZIP64_LOCATOR.size:
        fh.seek(eocd_pos - _ZIP64_LOCATOR.size)
        sig, _, z64_pos, _ = _ZIP64_LOCATOR.unpack(fh.read(_ZIP64_LOCATOR.size))
        if sig == _ZIP64_LOCATOR_SIGNATURE and 0 <= z64_pos <= file_size - _ZIP64_EOCD.size:
            fh.seek(z64_pos)
            record = fh.read(_ZIP64_EOCD.size)
            if record[:4] == _ZIP64_EOCD_SIGNATURE:
                _, _, _, _, _, _, _, count, cd_size, _ = _ZIP64_EOCD.unpack(record)
    return ZipDirectory(int(count), int(cd_size))


@dataclass(frozen=True)
class ZipSummary:
    """A checked zip: its members' directory entries, declared unpacked total (bytes) and file size (bytes)."""

    infos: tuple[zipfile.ZipInfo, ...]
    unpacked_bytes: int
    file_bytes: int


def _bad_name(name: str) -> str | None:
    if len(name) > MAX_MEMBER_NAME_CHARS:
        return f"a member name of {len(name)} characters"
    if any(ord(ch) < 32 for ch in name):
        return "a member name with control characters"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
        return f"a member name that points outside the archive ({name[:80]!r})"
    return None


def _bomb(name: str, unpacked: int, limit: str, file_bytes: int) -> FileLimitError:
    return FileLimitError(f"'{name}' would unpack to {format_size(unpacked)} ({limit}, file is "
                          f"{format_size(file_bytes)}): refused as a possible zip bomb.")


def check_zip(path: str | os.PathLike, what: str, max_unpacked: int = MAX_UNPACKED_BYTES) -> ZipSummary:
    """Refuse a zip whose directory declares too much (FileLimitError) before any member is decompressed.

    Checked: member count and directory size (from the end records, before zipfile lists the members), each
    member's name, method and compression ratio, the declared unpacked total against `max_unpacked` and against
    MAX_COMPRESSION_RATIO x the file size, and that the members' compressed data fits in the file without overlap.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    file_bytes = os.path.getsize(path)
    with open(path, "rb") as fh:
        directory = read_zip_directory_size(fh, file_bytes)
        if directory is None:
            raise ModelError(f"{what} '{name}' is not a readable zip archive (no central directory; truncated?).")
        if directory.members > MAX_ZIP_MEMBERS:
            raise FileLimitError(f"{what} '{name}' has {directory.members:,} members (limit {MAX_ZIP_MEMBERS:,}): "
                                 "refused as a possible zip bomb.")
        if directory.directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
            raise FileLimitError(f"{what} '{name}' has a {format_size(directory.directory_bytes)} table of "
                                 f"contents (limit {format_limit(MAX_CENTRAL_DIRECTORY_BYTES)}): refused as a possible "
                                 "zip bomb.")
        fh.seek(0)
        try:
            with zipfile.ZipFile(fh) as archive:
                infos = tuple(archive.infolist())
        except (zipfile.BadZipFile, ValueError, OSError, struct.error) as err:
            raise ModelError(f"{what} '{name}' is not a readable zip archive: {err}") from None
    if len(infos) > MAX_ZIP_MEMBERS:  # the end record may understate it
        raise FileLimitError(f"{what} '{name}' has {len(infos):,} members (limit {MAX_ZIP_MEMBERS:,}): refused as a "
                             "possible zip bomb.")
    seen: set[str] = set()
    unpacked = packed = 0
    for info in infos:
        problem = _bad_name(info.filename)
        if problem is None and info.filename in seen:
            problem = f"the member {info.filename[:80]!r} twice"
        if problem is None and info.compress_type not in ZIP_METHODS:
            problem = f"a member compressed with method {info.compress_type} (only stored or deflated are read)"
        if problem is None and info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
            problem = f"a stored member ({info.filename[:80]!r}) whose two declared sizes differ"
        if problem is None and info.header_offset + info.compress_size > file_bytes:
            problem = f"a member ({info.filename[:80]!r}) that reaches past the end of the file (truncated?)"
        if problem:
            raise FileLimitError(f"{what} '{name}' has {problem}: refused.")
        seen.add(info.filename)
        unpacked += info.file_size
        packed += info.compress_size
    if packed > file_bytes:
        raise FileLimitError(f"{what} '{name}': its members claim {format_size(packed)} of compressed data in a "
                             f"{format_size(file_bytes)} file (overlapping members): refused as a possible zip bomb.")
    if unpacked > max_unpacked:
        raise _bomb(name, unpacked, f"limit {format_limit(max_unpacked)}", file_bytes)
    if unpacked > RATIO_FREE_BYTES and unpacked > MAX_COMPRESSION_RATIO * file_bytes:
        raise _bomb(name, unpacked, f"more than {MAX_COMPRESSION_RATIO} times its size", file_bytes)
    for info in infos:
        if info.file_size > RATIO_FREE_BYTES and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
            raise _bomb(name, unpacked, f"member '{info.filename[:80]}' is compressed "
                        f"{info.file_size / max(info.compress_size, 1):,.0f}:1, limit {MAX_COMPRESSION_RATIO}:1",
                        file_bytes)
    return ZipSummary(infos, unpacked, file_bytes)
