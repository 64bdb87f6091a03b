"""Uploaded voices shared through the blob store, so a worker on another machine can run a job naming one.

An upload lives in the API server's `<work_dir>/uploads/<key>/` (svc_core.ui.upload_store: the voice's files and
the upload's own manifest.json with its owner, label and hashes). `publish_voice` copies exactly those files to
the blob store (the same store as job inputs and results: a local folder or S3) as `voices/<key>/<name>`, then
writes `voices/<key>.json`, the sync manifest (every file's size and sha256), LAST: a reader that finds the
manifest finds the whole voice. `fetch_voice` (a worker) downloads the files into a temporary folder beside its
uploads folder, checks each size and sha256 against the manifest, and renames the folder to `<uploads>/<key>` in
one step, so the worker's ModelLibrary lists it like an upload made there (same folder layout, same owner).
`unpublish_voice` removes the manifest first (readers stop seeing the voice), then the files. `ensure_voice` is the
worker's side (runner.py): a job naming an upload the worker does not know lists its uploads again, then fetches.

Only upload keys ("upload-<16 hex digits>") are published or fetched, and every file name in a manifest must be a
safe relative name: nothing a store holds can make a worker write outside its uploads folder.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..errors import ModelError
from ..ui.upload_store import KEY_PATTERN, MANIFEST, SUBFOLDERS, FileFact, hash_file
from ..ui.upload_store import KEY_PREFIX as UPLOAD_PREFIX
from . import errors
from .blobs import BlobStore, UnsafeKeyError, check_key
from .errors import BlobNotFound, JobError, VoiceNotFound

log = logging.getLogger("svc_core.jobs")

VOICES_PREFIX = "voices"  # blob keys "voices/<key>/<file name>" and "voices/<key>.json"
SYNC_FORMAT = "svc-studio-voice-sync/1"
MAX_FILES = 32  # an upload holds a handful (model, config, cluster, encoder, diffusion model + yaml, manifest)
MAX_VOICE_BYTES = 8 * 1024**3  # a published voice larger than this is refused before any download
FETCH_FOLDER = ".voice-fetch"  # beside the uploads folder: downloads under way (renamed into uploads when checked)


class VoiceSyncError(JobError):
    """A published voice that cannot be used: incomplete, damaged (size or sha256 differ), or a bad manifest."""

    code, status = errors.MODEL_ERROR, 502


@dataclass(frozen=True)
class PublishedVoice:
    """A sync manifest: the files of one published voice (name relative to the voice folder -> size, sha256)."""

    key: str
    files: dict[str, FileFact]
    published_at: float  # seconds since the epoch

    @property
    def total_bytes(self) -> int:
        return sum(fact.size for fact in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {"format": SYNC_FORMAT, "key": self.key, "published_at": self.published_at,
                "files": {name: {"bytes": f.size, "sha256": f.sha256} for name, f in sorted(self.files.items())}}

    @classmethod
    def from_json(cls, doc: Any, key: str) -> "PublishedVoice":
        """The manifest of voice `key`; VoiceSyncError names what is wrong with it."""
        if not isinstance(doc, dict) or doc.get("format") != SYNC_FORMAT:
            raise VoiceSyncError(f"The shared copy of voice {key} has no {SYNC_FORMAT} manifest.")
        if doc.get("key") != key:
            raise VoiceSyncError(f"The shared manifest of voice {key} names another voice ({doc.get('key')!r}).")
        files = doc.get("files")
        if not isinstance(files, dict) or not files or len(files) > MAX_FILES:
            raise VoiceSyncError(f"The shared manifest of voice {key} lists no files, or more than {MAX_FILES}.")
        facts = {}
        for name, fact in files.items():
            check_file_name(name, key)
            if not (isinstance(fact, dict) and isinstance(fact.get("bytes"), int) and fact["bytes"] >= 0
                    and isinstance(fact.get("sha256"), str) and len(fact["sha256"]) == 64):
                raise VoiceSyncError(f"The shared manifest of voice {key} has no size/sha256 for {name}.")
            facts[name] = FileFact(fact["bytes"], fact["sha256"])
        if MANIFEST not in facts:
            raise VoiceSyncError(f"The shared copy of voice {key} lacks the upload's {MANIFEST}.")
        published_at = doc.get("published_at")
        return cls(key, facts, float(published_at) if isinstance(published_at, (int, float)) else 0.0)


def check_voice_key(key: str) -> str:
    """`key` if it is an upload key ("upload-<16 hex digits>"); else UnsafeKeyError."""
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise UnsafeKeyError(f"Bad voice key {key!r}: only uploaded voices (upload-<16 hex digits>) are shared.")
    return key


def check_file_name(name: Any, key: str = "") -> str:
    """A file name of a voice folder: a plain name, or one inside one of the upload SUBFOLDERS
    ("diffusion/model_1000.pt"); anything else (absolute, "..", deeper folders) -> UnsafeKeyError."""
    if not isinstance(name, str):
        raise UnsafeKeyError(f"Bad file name {name!r} in voice {key}.")
    check_key(name)  # relative, "/"-separated, no "." or ".." parts, no backslashes
    parts = name.split("/")
    if len(parts) > 2 or (len(parts) == 2 and parts[0] not in SUBFOLDERS):
        raise UnsafeKeyError(f"Bad file name {name!r} in voice {key}: not a file of an upload folder.")
    return name


def voice_prefix(key: str) -> str:
    """The blob key prefix of a published voice's files: "voices/<key>/"."""
    return f"{VOICES_PREFIX}/{check_voice_key(key)}/"


def manifest_key(key: str) -> str:
    """The blob key of a published voice's sync manifest: "voices/<key>.json"."""
    return f"{VOICES_PREFIX}/{check_voice_key(key)}.json"


def _upload_files(folder: Path, key: str) -> dict[str, FileFact]:
    """The files a committed upload folder holds, by its own manifest (plus the manifest itself), checked against
    the sizes and hashes it records; VoiceSyncError for a folder that is not a committed, intact upload."""
    try:
        doc = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VoiceSyncError(f"{folder} is not a finished upload (its {MANIFEST}: {err}).") from None
    if not isinstance(doc, dict) or doc.get("key") != key or not isinstance(doc.get("files"), dict):
        raise VoiceSyncError(f"{folder}/{MANIFEST} does not describe upload {key}.")
    facts: dict[str, FileFact] = {}
    for name, recorded in doc["files"].items():
        check_file_name(name, key)
        try:
            fact = hash_file(folder / name)
        except OSError as err:
            raise VoiceSyncError(f"{folder}/{name} of upload {key} is unreadable ({err}).") from None
        if not isinstance(recorded, dict) or (recorded.get("bytes"), recorded.get("sha256")) != (fact.size,
                                                                                                fact.sha256):
            raise VoiceSyncError(f"{folder}/{name} differs from what its upload manifest records.")
        facts[name] = fact
    facts[MANIFEST] = hash_file(folder / MANIFEST)
    if len(facts) > MAX_FILES:
        raise VoiceSyncError(f"Upload {key} has more than {MAX_FILES} files.")
    return facts


def _source_folder(source: Any) -> tuple[Path, str]:
    """(folder, key) of a ModelEntry (svc_core.ui.models) or a folder path."""
    if isinstance(source, (str, Path)):
        folder = Path(source)
        return folder, folder.name
    return Path(source.folder), str(source.key)


def read_published(blobs: BlobStore, key: str) -> PublishedVoice | None:
    """The sync manifest of voice `key`, None when it is not published (VoiceSyncError when it is unreadable)."""
    try:
        with blobs.open(manifest_key(key)) as handle:
            data = handle.read()
    except BlobNotFound:
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VoiceSyncError(f"The shared manifest of voice {key} is unreadable ({err}).") from None
    return PublishedVoice.from_json(doc, key)


def publish_voice(blobs: BlobStore, source: Any, key: str | None = None) -> PublishedVoice:
    """Put the uploaded voice `source` (a ModelEntry of an upload, or its folder `<uploads>/<key>`) in `blobs`:
    its files as "voices/<key>/<name>", then the sync manifest "voices/<key>.json". `key` defaults to the entry's
    key (the folder's name) and must equal it. Publishing an already published, unchanged voice uploads nothing."""
    folder, own_key = _source_folder(source)
    key = check_voice_key(key or own_key)
    if key != folder.name:
        raise VoiceSyncError(f"The voice folder {folder} is not the upload {key} (an upload's folder is its key).")
    facts = _upload_files(folder, key)
    try:
        existing = read_published(blobs, key)
    except VoiceSyncError:
        existing = None  # a damaged manifest: publish again over it
    if existing is not None and existing.files == facts:
        return existing
    for name in facts:
        blobs.put_file(voice_prefix(key) + name, folder / name)
    published = PublishedVoice(key, facts, time.time())
    blobs.put_bytes(manifest_key(key), json.dumps(published.to_json(), indent=1).encode("utf-8"))
    log.info("published voice %s (%d files, %.1f MB)", key, len(facts), published.total_bytes / 1024**2)
    return published


def _download(blobs: BlobStore, published: PublishedVoice, folder: Path) -> None:
    """Every file of `published` into `folder`, each checked against the manifest (VoiceSyncError if not)."""
    key = published.key
    root = folder.resolve()
    for name, fact in sorted(published.files.items()):
        dest = (folder / name).resolve()
        if root not in dest.parents:
            raise UnsafeKeyError(f"Bad file name {name!r} in voice {key}: it leads outside the voice folder.")
        try:
            blobs.get_file(voice_prefix(key) + name, dest)
        except BlobNotFound:
            raise VoiceSyncError(f"The shared copy of voice {key} is incomplete: {name} is missing from the "
                                 "store.") from None
        got = hash_file(dest)
        if got.size != fact.size:
            raise VoiceSyncError(f"The shared copy of voice {key} is damaged: {name} has {got.size} bytes, its "
                                 f"manifest says {fact.size}.")
        if got.sha256 != fact.sha256:
            raise VoiceSyncError(f"The shared copy of voice {key} is damaged: the sha256 of {name} differs from "
                                 "its manifest's.")


def fetch_voice(blobs: BlobStore, key: str, uploads_dir: Path, tmp_root: Path | None = None) -> Path | None:
    """Download the published voice `key` into `uploads_dir/<key>` -> that folder; None when it is not published.

    The files go to a temporary folder under `tmp_root` (default: FETCH_FOLDER beside `uploads_dir`, on the same
    file system), are checked (VoiceSyncError: incomplete or damaged, nothing is kept), then the folder is renamed
    into place at once. When `uploads_dir/<key>` exists already (another thread fetched it first), it is returned
    as it is: the library's listing checks it like any upload."""
    key = check_voice_key(key)
    uploads_dir = Path(uploads_dir)
    dest = uploads_dir / key
    if dest.is_dir():
        return dest
    published = read_published(blobs, key)
    if published is None:
        return None
    if published.total_bytes > MAX_VOICE_BYTES:
        raise VoiceSyncError(f"The shared voice {key} is {published.total_bytes / 1024**3:.1f} GB; at most "
                             f"{MAX_VOICE_BYTES / 1024**3:.0f} GB are fetched.")
    tmp_root = Path(tmp_root) if tmp_root is not None else uploads_dir.parent / FETCH_FOLDER
    tmp_root.mkdir(parents=True, exist_ok=True)
    uploads_dir.mkdir(parents=True, exist_ok=True)
    folder = tmp_root / f"{key}-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        _download(blobs, published, folder)
        try:
            os.rename(folder, dest)
        except OSError:
            if not dest.is_dir():
                raise
            log.info("voice %s was fetched by another thread meanwhile", key)
            return dest
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    log.info("fetched voice %s from the shared store (%d files, %.1f MB)", key, len(published.files),
             published.total_bytes / 1024**2)
    return dest


def unpublish_voice(blobs: BlobStore, key: str) -> int:
    """Remove the published voice `key`: its manifest first (readers stop seeing it), then its files -> how many
    blobs were removed (0: it was not published)."""
    removed = int(blobs.delete(manifest_key(key)))
    removed += blobs.delete_prefix(voice_prefix(key))
    if removed:
        log.info("unpublished voice %s (%d blobs)", key, removed)
    return removed


def published_voices(blobs: BlobStore) -> list[str]:
    """The keys of the voices whose sync manifest is in `blobs` (a publish under way is not listed yet)."""
    keys = []
    for name in blobs.list_keys(f"{VOICES_PREFIX}/"):
        rest = name[len(VOICES_PREFIX) + 1:]
        if "/" not in rest and rest.endswith(".json") and KEY_PATTERN.match(rest[:-len(".json")]):
            keys.append(rest[:-len(".json")])
    return keys


def unpublish_missing(blobs: BlobStore, keep: Iterable[str]) -> list[str]:
    """Unpublish every published voice not in `keep` (the uploads the server still holds, after it pruned its
    upload budget) -> the keys removed. Only for a store whose voices one server publishes."""
    keep = set(keep)
    gone = [key for key in published_voices(blobs) if key not in keep]
    for key in gone:
        unpublish_voice(blobs, key)
    return gone


# ----------------------------------------------------------------------------- the worker side (runner.py)
def _knows(library: Any, key: str) -> bool:
    try:
        library.get(key)
    except ModelError:
        return False
    return True


def _relist_uploads(library: Any) -> None:
    """List the library's stored uploads again (ModelLibrary.reload_uploads)."""
    library.reload_uploads()


def refresh_uploads(library: Any, key: str) -> None:
    """A worker process started before a voice was uploaded (to the work folder it shares with the API server)
    lists the stored uploads again when a job asks for an upload it does not know."""
    if key.startswith(UPLOAD_PREFIX) and not _knows(library, key):
        _relist_uploads(library)


def ensure_voice(library: Any, blobs: BlobStore, key: str) -> None:
    """Make sure the worker's `library` (a ModelLibrary) knows voice `key`, else VoiceNotFound (voice_not_found).

    An upload it does not know: list the uploads folder again (a worker sharing the server's work folder, started
    before the upload), then fetch the voice the API server published to the blob store (voice_sync: a worker on
    another machine) into the library's uploads folder and list again. A damaged shared copy is VoiceSyncError
    (code model_error) with the file named."""
    if not key or _knows(library, key):
        return
    where = ""
    if key.startswith(UPLOAD_PREFIX):
        refresh_uploads(library, key)
        if _knows(library, key):
            return
        fetched = fetch_voice(blobs, key, library.uploads_dir)
        if fetched is not None:
            _relist_uploads(library)
            if _knows(library, key):
                return
            where = (" It was fetched from the shared store, but this worker's uploads folder did not keep it "
                     "(the worker's log says why).")
        else:
            where = " It is not in the shared store either (was it published by the server?)."
    try:
        library.get(key)
    except ModelError as err:
        raise VoiceNotFound(f"{err}{where}") from None
