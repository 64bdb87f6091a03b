"""Uploaded voices on disk: one folder per upload under `<work_dir>/uploads/`, with the manifest of what was checked.

`<uploads>/<key>/manifest.json` is written last (through `manifest.json.part`, then renamed), after the voice passed
its load check, and records each file's size and sha256, the config summary, the upload time, its label and the
owner (a hash of the uploading browser's token). At start the store lists the folders again and checks them
cheaply, with no unpickling: manifest readable, the folder holding exactly the recorded files, sizes and hashes
equal. A folder failing that (half-written, corrupt manifest, files changed or added) is removed with a log line
saying why, so nothing is orphaned. `over_budget` says what to remove to fit an `UploadBudget` (count, bytes,
age). `upload_label` makes the picker's label an upload keeps.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..errors import ModelError

log = logging.getLogger("svc_core.ui")

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "svc-studio-upload/1"
BROWSER_KEYS = ".browser-keys.json"  # the page's gr.BrowserState storage key and secret, stable across restarts
SUBFOLDERS = ("diffusion",)  # the only folders an upload may hold (a diffusion model + yaml, models.py layout)
KEY_PREFIX = "upload-"
KEY_HEX_DIGITS = 16  # 64 random bits: the key is what the page and the API name the voice by
KEY_PATTERN = re.compile(rf"^{KEY_PREFIX}[0-9a-f]{{{KEY_HEX_DIGITS}}}$")
HASH_CHUNK_BYTES = 1 << 20  # files are hashed in 1 MiB reads (bounded memory whatever their size)
UPLOAD_NAME_CHARS = 40  # longest name an uploader may give a voice
LABEL_SPEAKERS = 2  # speaker names shown in an upload's label ("alto, tenor +1")
LABEL_TIME_FORMAT = "%d %b %H:%M"  # server-local upload time in an upload's label: "06 Dec 05:41"
DAY_SECONDS = 24 * 3600
DEFAULT_MAX_COUNT = 16  # uploads kept, all visitors together
DEFAULT_MAX_BYTES = 4 * 1024**3  # their total size on disk
DEFAULT_MAX_AGE_SECONDS = 14 * DAY_SECONDS  # an upload older than this is removed at the next start or upload


@dataclass(frozen=True)
class UploadBudget:
    """How much the upload store keeps; the oldest uploads go first when a limit is passed."""

    max_count: int = DEFAULT_MAX_COUNT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS


@dataclass(frozen=True)
class FileFact:
    """What the manifest records about one file: its size (bytes) and sha256 (hex)."""

    size: int
    sha256: str


@dataclass(frozen=True)
class UploadRecord:
    """One stored upload as its manifest describes it."""

    key: str
    folder: Path
    owner: str  # owner_id() of the uploading browser's token; "" = nobody's (listed only when all are shown)
    label: str  # what the voice picker shows (unique when it was made)
    name: str  # the name the uploader gave, or ""
    uploaded_at: float  # seconds since the epoch
    files: dict[str, FileFact]
    summary: dict[str, Any] = field(default_factory=dict)  # the config summary and original file names

    @property
    def total_bytes(self) -> int:
        return sum(fact.size for fact in self.files.values())

    def to_json(self) -> dict[str, Any]:
        return {"format": MANIFEST_FORMAT, "key": self.key, "owner": self.owner, "label": self.label,
                "name": self.name, "uploaded_at": self.uploaded_at,
                "files": {name: {"bytes": f.size, "sha256": f.sha256} for name, f in sorted(self.files.items())},
                "summary": self.summary}


def clean_name(text: str | None) -> str:
    """An uploader's name for a voice: printable, single-spaced, at most UPLOAD_NAME_CHARS characters."""
    text = " ".join("".join(ch for ch in str(text or "") if ch.isprintable()).split())
    return text[:UPLOAD_NAME_CHARS].strip()


def upload_label(name: str, speakers: Iterable[str], model_file: str, step: int | None, uploaded_at: float,
                 taken: Iterable[str] = ()) -> str:
    """The picker's label of an upload, unique among `taken`: the given name, else the speaker names (else the
    export's name), then when it was uploaded and the training step, e.g.
    "alto, tenor +1 (uploaded 06 Dec 05:41, step 1000)"; " #2", " #3" ... when that label exists already."""
    speakers = [s for s in speakers if s]
    if not name:
        if speakers and not all(s.isdigit() for s in speakers):  # upstream names unnamed speakers "0", "1", ...
            name = ", ".join(speakers[:LABEL_SPEAKERS]) + (f" +{len(speakers) - LABEL_SPEAKERS}"
                                                           if len(speakers) > LABEL_SPEAKERS else "")
        else:
            stem = Path(model_file).stem
            name = stem[:-len("_SoVits")] if stem.lower().endswith("_sovits") else stem
    details = [f"uploaded {time.strftime(LABEL_TIME_FORMAT, time.localtime(uploaded_at))}"]
    if step is not None:
        details.append(f"step {step}")
    label = f"{name} ({', '.join(details)})"
    taken = set(taken)
    number, unique = 2, label
    while unique in taken:
        unique, number = f"{label} #{number}", number + 1
    return unique


class ManifestError(ModelError):
    """A manifest or upload folder that does not match (internal: the folder is dropped, never shown to users)."""


def owner_id(token: str | None) -> str:
    """The owner recorded for a browser token (a hash, so the work folder does not hold the tokens); "" for none."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:32] if token else ""


def hash_file(path: Path) -> FileFact:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(HASH_CHUNK_BYTES):
            digest.update(block)
            size += len(block)
    return FileFact(size, digest.hexdigest())


def _parse_manifest(doc: Any, folder: Path) -> UploadRecord:
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise ManifestError(f"not a {MANIFEST_FORMAT} manifest")
    if doc.get("key") != folder.name:
        raise ManifestError(f"its key {doc.get('key')!r} is not the folder's name")
    files = doc.get("files")
    if not isinstance(files, dict) or not files:
        raise ManifestError("it lists no files")
    facts = {}
    for name, fact in files.items():
        if not _stored_name(name):
            raise ManifestError(f"it lists a file name that is not a plain name: {name!r}")
        if not (isinstance(fact, dict) and isinstance(fact.get("bytes"), int) and isinstance(fact.get("sha256"), str)):
            raise ManifestError(f"the entry of {name} has no bytes/sha256")
        facts[name] = FileFact(fact["bytes"], fact["sha256"])
    uploaded_at, label = doc.get("uploaded_at"), doc.get("label")
    if not isinstance(uploaded_at, (int, float)) or not isinstance(label, str) or not label:
        raise ManifestError("it has no upload time or label")
    summary = doc.get("summary") if isinstance(doc.get("summary"), dict) else {}
    return UploadRecord(folder.name, folder, str(doc.get("owner") or ""), label, str(doc.get("name") or ""),
                        float(uploaded_at), facts, summary)


def _stored_name(name: object) -> bool:
    """A manifest's file name: a plain name, or one inside one of SUBFOLDERS ("diffusion/model_1000.pt")."""
    if not isinstance(name, str):
        return False
    parts = name.split("/")
    if len(parts) == 2 and parts[0] in SUBFOLDERS:
        parts = parts[1:]
    return len(parts) == 1 and Path(parts[0]).name == parts[0] and parts[0] not in ("", ".", "..", MANIFEST)


def _listing(folder: Path) -> dict[str, Path]:
    """The upload folder's entries by manifest name: top-level entries, and the files of SUBFOLDERS (a
    subfolder's own entry is left out; any other folder is listed as itself, so it does not match)."""
    out: dict[str, Path] = {}
    for path in folder.iterdir():
        if path.name in SUBFOLDERS and path.is_dir() and not path.is_symlink():
            out.update({f"{path.name}/{p.name}": p for p in path.iterdir()})
        else:
            out[path.name] = path
    return out


def _verify_files(record: UploadRecord) -> None:
    """The folder holds exactly the recorded files with their sizes and hashes (sizes first: cheap)."""
    present = set(_listing(record.folder)) - {MANIFEST}
    if present != set(record.files):
        missing, extra = sorted(set(record.files) - present), sorted(present - set(record.files))
        raise ManifestError("files changed: " + "; ".join(
            part for part in (f"missing {', '.join(missing)}" if missing else "",
                              f"not in the manifest {', '.join(extra)}" if extra else "") if part))
    for name, fact in record.files.items():
        path = record.folder / name
        if not path.is_file() or path.stat().st_size != fact.size:
            raise ManifestError(f"{name} changed size")
    for name, fact in record.files.items():
        if hash_file(record.folder / name).sha256 != fact.sha256:
            raise ManifestError(f"{name} changed (sha256 differs)")


class UploadStore:
    """The upload folders under `root`; not thread-safe (ModelLibrary serialises calls)."""

    def __init__(self, root: Path, budget: UploadBudget = UploadBudget(),
                 clock: Callable[[], float] = time.time) -> None:
        self.root = Path(root)
        self.budget = budget
        self.clock = clock

    def new_folder(self) -> Path:
        """A fresh, empty folder for an upload being checked (no manifest yet: dropped at start if left so)."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f"{KEY_PREFIX}{uuid.uuid4().hex[:KEY_HEX_DIGITS]}"
        folder.mkdir()
        return folder

    def commit(self, folder: Path, owner: str, label: str, name: str = "",
               summary: dict[str, Any] | None = None) -> UploadRecord:
        """Record the checked files of `folder` in its manifest (written atomically, last)."""
        files = {name: hash_file(p) for name, p in sorted(_listing(folder).items())
                 if p.is_file() and name != MANIFEST}
        record = UploadRecord(folder.name, folder, owner, label, name, float(self.clock()), files, summary or {})
        partial = folder / (MANIFEST + ".part")
        partial.write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
        os.replace(partial, folder / MANIFEST)
        return record

    def remove(self, key: str) -> None:
        if KEY_PATTERN.match(key):
            shutil.rmtree(self.root / key, ignore_errors=True)

    def load(self) -> list[UploadRecord]:
        """The stored uploads whose manifest and files check out, oldest first. Anything else under the root
        (half-written or tampered folders, stray files) is removed, each with a warning naming the reason."""
        if not self.root.is_dir():
            return []
        records = []
        for path in sorted(self.root.iterdir()):
            if path.name == BROWSER_KEYS:
                continue
            try:
                if not path.is_dir() or not KEY_PATTERN.match(path.name):
                    raise ManifestError("not an upload folder")
                if not (path / MANIFEST).is_file():
                    raise ManifestError("no manifest (an upload that did not finish)")
                try:
                    doc = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
                    raise ManifestError(f"unreadable manifest ({err})") from None
                record = _parse_manifest(doc, path)
                _verify_files(record)
            except (ManifestError, OSError) as err:
                log.warning("removing %s from the upload store: %s", path, err)
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
                continue
            records.append(record)
        return sorted(records, key=lambda r: (r.uploaded_at, r.key))

    def over_budget(self, records: Iterable[UploadRecord], keep: str | None = None) -> list[str]:
        """Keys to remove so that `records` fit the budget: the expired ones, then while there are too many or
        they are too big, the oldest upload of whoever holds the most (so one visitor filling the store evicts
        their own voices before anyone else's). `keep` (the upload just made) is never chosen."""
        now = self.clock()
        ordered = sorted(records, key=lambda r: (r.uploaded_at, r.key))
        drop = [r.key for r in ordered if r.key != keep and now - r.uploaded_at > self.budget.max_age_seconds]
        alive = [r for r in ordered if r.key not in drop]
        while len(alive) > self.budget.max_count or sum(r.total_bytes for r in alive) > self.budget.max_bytes:
            held = Counter(r.owner for r in alive)
            candidates = [r for r in alive if r.key != keep]
            if not candidates:
                break
            victim = min(candidates, key=lambda r: (-held[r.owner], r.uploaded_at, r.key))
            drop.append(victim.key)
            alive.remove(victim)
        return drop


def browser_keys(root: Path) -> dict[str, str]:
    """`storage_key` and `secret` for the page's gr.BrowserState holding the owner token, made once and kept in
    `root`. Gradio draws both at random per start when not given, so a restarted server could no longer read what
    browsers stored and every visitor would lose their uploads."""
    import secrets

    path = Path(root) / BROWSER_KEYS
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict) and all(isinstance(doc.get(k), str) and doc[k] for k in ("storage_key", "secret")):
            return {"storage_key": doc["storage_key"], "secret": doc["secret"]}
    except (OSError, ValueError):
        pass
    keys = {"storage_key": f"svc-studio-{secrets.token_hex(6)}", "secret": secrets.token_urlsafe(24)}
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    with open(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
        json.dump(keys, f)
    os.replace(partial, path)
    return keys


def new_owner_token() -> str:
    """A browser's owner token (kept in its localStorage by the page)."""
    import secrets

    return secrets.token_urlsafe(24)
