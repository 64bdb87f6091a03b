"""The server's work folder: where it is by default, who may use it, what is cleaned at start and at exit.

Layout of `<work_dir>/`:
  uploads/      uploaded voices with their manifests (kept, see upload_store.py)
  onnx/         ONNX exports of voices and encoders (a cache: re-made when missing; removed at start after 30 days)
  results/      converted files (temporary: emptied at start and at exit, pruned by age while serving)
  gradio-tmp/   Gradio's own temporary files (GRADIO_TEMP_DIR, set by `python app.py`: emptied at start and exit)
  jobs/, blobs/ the REST API's job records and their input/result files (kept: a restarted server still serves
                finished results; svc_core.jobs.service, --job-store)
  api-incoming/ uploads the REST API is receiving (temporary: emptied at start and removed at exit)
  api-tokens.json  the REST API's tokens, hashed (svc_core/api/tokens.py)
  svc-studio.lock   held while a server uses the folder, so a second server on it refuses to start

The default is the per-user cache folder (`platformdirs.user_cache_dir("svc-studio")`, e.g. ~/.cache/svc-studio), the
same on every start, so uploads survive a restart and nothing piles up under /tmp.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OptionError

log = logging.getLogger("svc_core.ui")

APP_NAME = "svc-studio"
UPLOADS, ONNX_EXPORTS, RESULTS, GRADIO_TEMP = "uploads", "onnx", "results", "gradio-tmp"
LATENT = "latent"  # latent maps: cached projections per voice (kept across restarts) and bounded exports
API_INCOMING = "api-incoming"  # REST API uploads being received (svc_core.api.app)
LOCK_FILE = "svc-studio.lock"
ONNX_EXPORT_MAX_AGE_SECONDS = 30 * 24 * 3600  # exports made longer ago are removed at start (re-made on use)
# Earlier versions made a fresh tempfile.mkdtemp(prefix="svc-studio-") folder per start and never removed it.
LEGACY_TEMP_PATTERN = re.compile(r"^svc-studio-[a-z0-9_]{8}$")
LEGACY_TEMP_CHILDREN = {UPLOADS, ONNX_EXPORTS, RESULTS, "client-downloads"}  # all such a folder ever held
LEGACY_IDLE_SECONDS = 3600  # a legacy folder is removed only when nothing in it changed for this long


class WorkDirInUseError(OptionError):
    """Another server holds the work folder."""


def default_work_dir() -> Path:
    """The per-user cache folder for svc-studio (platformdirs; XDG_CACHE_HOME on Linux, ~/Library/Caches on macOS,
    %LOCALAPPDATA% on Windows)."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def is_partial(path: Path) -> bool:
    """A half-written file: `x.part` (svc_core's atomic writes) or `x.part.wav` (stream.AudioWriter)."""
    return path.name.endswith(".part") or ".part." in path.name


class WorkDirLock:
    """An exclusive advisory lock on `<work_dir>/svc-studio.lock` (flock on POSIX, msvcrt on Windows), released by
    `release()` or when the process ends however it ends, so a crash never leaves a stale lock behind. Written here
    (15 lines) rather than taken from `filelock`, whose 4.x API is larger than this needs."""

    def __init__(self, work_dir: Path) -> None:
        self.path = Path(work_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "WorkDirLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_fd(fd)
        except OSError:
            holder = ""
            try:
                holder = os.read(fd, 200).decode("utf-8", "replace").strip()
            except OSError:
                pass
            os.close(fd)
            raise WorkDirInUseError(
                f"Another svc-studio server is using the work folder {self.path.parent}"
                f"{f' ({holder})' if holder else ''}. Stop it, or start this one with its own folder: "
                "--work-dir <another folder>.") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


@dataclass
class Cleaned:
    """What `clean_at_start` removed (paths), for the log."""

    removed: list[Path] = field(default_factory=list)

    def remove(self, path: Path) -> None:
        """Delete `path` (a file or a folder tree) and note it; a failure is logged, not raised."""
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            return
        except OSError as err:
            log.warning("could not remove %s: %s", path, err)
            return
        self.removed.append(path)


def _empty(folder: Path, cleaned: Cleaned) -> None:
    if folder.is_dir():
        for child in folder.iterdir():
            cleaned.remove(child)


def clean_at_start(work_dir: Path, now: float | None = None) -> Cleaned:
    """Remove what an earlier run left that nobody can use any more (call while holding the WorkDirLock):
    result folders, Gradio's temporary files, half-written `.part` files and ONNX exports made over 30 days ago.
    Uploads are the UploadStore's; `python app.py` also removes earlier versions' /tmp folders (legacy_temp_dirs)."""
    now = time.time() if now is None else now
    cleaned = Cleaned()
    _empty(work_dir / RESULTS, cleaned)
    _empty(work_dir / GRADIO_TEMP, cleaned)
    exports = work_dir / ONNX_EXPORTS
    if exports.is_dir():
        for path in list(exports.rglob("*")):
            try:
                old = path.is_file() and now - path.stat().st_mtime > ONNX_EXPORT_MAX_AGE_SECONDS
            except OSError:
                continue
            if is_partial(path) or old or (path.is_dir() and path.name.startswith("svc-int8-")):
                cleaned.remove(path)
    if cleaned.removed:
        log.info("cleaned %d leftover temporary file(s)/folder(s) from earlier runs", len(cleaned.removed))
    return cleaned


def clean_at_exit(work_dir: Path) -> None:
    """Remove this run's temporaries (results, Gradio's files, API uploads being received); uploads, ONNX exports
    and the API's jobs stay."""
    cleaned = Cleaned()
    for name in (RESULTS, GRADIO_TEMP, API_INCOMING):
        cleaned.remove(work_dir / name)


def legacy_temp_dirs(temp_root: Path | None = None, now: float | None = None) -> list[Path]:
    """Work folders earlier versions left in the temp folder: named svc-studio-XXXXXXXX (tempfile.mkdtemp), ours,
    holding nothing but what those versions wrote there, and untouched for an hour (so a running old server keeps
    its folder)."""
    temp_root = Path(temp_root or tempfile.gettempdir())
    now = time.time() if now is None else now
    found = []
    try:
        candidates = [p for p in temp_root.iterdir() if LEGACY_TEMP_PATTERN.match(p.name)]
    except OSError:
        return []
    for folder in candidates:
        try:
            if folder.is_symlink() or not folder.is_dir() or (hasattr(os, "getuid")
                                                              and folder.stat().st_uid != os.getuid()):
                continue
            if not {child.name for child in folder.iterdir()} <= LEGACY_TEMP_CHILDREN:
                continue
            newest = max([folder.stat().st_mtime] + [p.lstat().st_mtime for p in folder.rglob("*")])
        except OSError:
            continue
        if now - newest > LEGACY_IDLE_SECONDS:
            found.append(folder)
    return found
