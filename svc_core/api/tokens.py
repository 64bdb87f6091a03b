"""API tokens: named, scoped, revocable; only their sha256 hashes are kept, in <work_dir>/api-tokens.json.

A token is "svc_" + 40 URL-safe characters (240 random bits), shown once when it is made
(`python -m svc_core tokens create --name NAME --scope convert --scope read`). The file holds, per token: its name
(unique; the owner of the token's jobs and uploads), the sha256 of the token, its scopes, when it was made and when
it was revoked. A running server re-reads the file when it changes, so `tokens revoke NAME` takes effect at once.
Checking a token compares its hash with every stored hash in constant time (hmac.compare_digest), found or not.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import SvcError

TOKENS_FILE = "api-tokens.json"  # in the server's work folder
TOKEN_PREFIX = "svc_"
TOKEN_RANDOM_BYTES = 30  # -> 40 URL-safe base64 characters
SCOPES = ("read", "convert", "voices", "admin")
DEFAULT_SCOPES = ("read", "convert")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
FILE_VERSION = 1


class TokenError(SvcError):
    """A token name or scope that cannot be used, or a token file that cannot be read."""


@dataclass
class TokenRecord:
    """One token as stored: never the token itself."""

    name: str
    sha256: str  # hex digest of the token
    scopes: list[str]
    created: float  # unix seconds
    revoked: float | None = None  # unix seconds, None while valid

    @property
    def active(self) -> bool:
        return self.revoked is None

    def public(self) -> dict:
        """What `tokens list` shows (the hash is left out)."""
        return {"name": self.name, "scopes": list(self.scopes), "created": self.created, "revoked": self.revoked}


@dataclass(frozen=True)
class TokenMatch:
    """The result of checking a presented token: its record, or None for an unknown token."""

    record: TokenRecord | None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> list[str]:
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise TokenError(f"Unknown scope {', '.join(unknown)}; use one or more of: {', '.join(SCOPES)}.")
    return sorted(set(scopes), key=SCOPES.index) or list(DEFAULT_SCOPES)


@dataclass
class TokenStore:
    """The token file of a work folder. Safe to share between threads; other processes may change the file (the
    CLI), which is noticed by its modification time and size."""

    path: Path
    _records: list[TokenRecord] = field(default_factory=list, init=False, repr=False)
    _stamp: tuple[int, int] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def in_work_dir(cls, work_dir: Path) -> "TokenStore":
        return cls(Path(work_dir) / TOKENS_FILE)

    # ------------------------------------------------------------------ reading
    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size

    def _load(self) -> list[TokenRecord]:
        """The records, re-read when the file changed (call with the lock held)."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            if stamp is None:
                self._records = []
            else:
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                    self._records = [TokenRecord(**item) for item in data.get("tokens", [])]
                except (OSError, ValueError, TypeError) as err:
                    raise TokenError(f"The token file {self.path} cannot be read ({err}); fix or remove it.") from err
            self._stamp = stamp
        return self._records

    def records(self) -> list[TokenRecord]:
        with self._lock:
            return list(self._load())

    def any_active(self) -> bool:
        """Some token exists that is not revoked (then the API asks every caller for credentials)."""
        return any(record.active for record in self.records())

    def any(self) -> bool:
        """Some token was ever made here (revoked ones count: the server was meant to be closed)."""
        return bool(self.records())

    def check(self, token: str) -> TokenMatch:
        """Find the record of a presented token (revoked ones too, so the caller can say "revoked")."""
        digest = hash_token(token)
        found = None
        with self._lock:
            for record in self._load():  # every hash is compared, so the time does not tell which one matched
                if hmac.compare_digest(record.sha256, digest):
                    found = record
        return TokenMatch(found)

    # ------------------------------------------------------------------ changing
    def _save(self, records: list[TokenRecord]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        payload = {"version": FILE_VERSION, "tokens": [asdict(r) for r in records]}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # hashes only, still nobody else's business
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
        os.replace(tmp, self.path)
        self._records, self._stamp = records, self._file_stamp()

    def create(self, name: str, scopes: list[str] | tuple[str, ...] = DEFAULT_SCOPES) -> str:
        """Make a token -> the token (shown once; only its hash is stored)."""
        if not NAME_PATTERN.match(name or ""):
            raise TokenError(f"Token name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-'.")
        scopes = check_scopes(list(scopes))
        token = new_token()
        with self._lock:
            records = list(self._load())
            if any(r.name == name for r in records):
                raise TokenError(f"A token named '{name}' exists already; revoke it or pick another name.")
            records.append(TokenRecord(name, hash_token(token), scopes, time.time()))
            self._save(records)
        return token

    def revoke(self, name: str) -> TokenRecord:
        """Mark the token `name` revoked (kept in the file, so its name stays taken and its jobs stay its own)."""
        with self._lock:
            records = list(self._load())
            for i, record in enumerate(records):
                if record.name == name:
                    if record.revoked is None:
                        records[i] = TokenRecord(record.name, record.sha256, record.scopes, record.created,
                                                 time.time())
                        self._save(records)
                    return records[i]
        raise TokenError(f"No token named '{name}'. Known: {', '.join(r.name for r in records) or 'none'}.")
