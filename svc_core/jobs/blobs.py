"""Input and result files of jobs: the BlobStore protocol, a local folder (the default) and S3-compatible storage.

Keys are relative, "/"-separated names such as "inputs/<job id>/clip.wav" and "results/<job id>/mix.wav". Every
key is checked (`check_key`): no empty parts, no "." or "..", no absolute paths or backslashes, so a key can never
reach outside the store's folder or prefix. S3BlobStore uses boto3 (imported when one is made); credentials come
from boto3's usual sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION, ~/.aws, ...), the
endpoint of an S3-compatible service (MinIO, Ceph, ...) from the parameter or $SVC_S3_ENDPOINT.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from .errors import BlobNotFound, JobError

S3_ENDPOINT_ENV = "SVC_S3_ENDPOINT"
MAX_KEY_LENGTH = 512
TEMP_PREFIX = ".put-"  # a LocalBlobStore write under way (renamed to its key when complete)
_KEY_PART = re.compile(r"^[A-Za-z0-9._+\-@=, ()\[\]]+$")  # what a part of a key may hold (file names made safe)


class UnsafeKeyError(JobError):
    """A blob key that could reach outside the store."""


def check_key(key: str) -> str:
    """`key` if it is a safe relative key (see the module docstring); else UnsafeKeyError."""
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise UnsafeKeyError(f"Bad file key {key!r}: empty or longer than {MAX_KEY_LENGTH} characters.")
    if key.startswith("/") or "\\" in key or "\0" in key:
        raise UnsafeKeyError(f"Bad file key {key!r}: keys are relative, with '/' between their parts.")
    for part in key.split("/"):
        if part in ("", ".", "..") or not _KEY_PART.match(part):
            raise UnsafeKeyError(f"Bad file key {key!r}: the part {part!r} is not allowed.")
    return key


def check_prefix(prefix: str) -> str:
    """A key prefix for delete_prefix: a safe key, optionally ending with "/"."""
    return check_key(prefix.rstrip("/")) + ("/" if prefix.endswith("/") else "")


class BlobStore(Protocol):
    def put_file(self, key: str, path: Path) -> int: ...

    def put_bytes(self, key: str, data: bytes) -> int: ...

    def get_file(self, key: str, dest: Path) -> Path: ...

    def open(self, key: str) -> BinaryIO: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> int: ...

    def delete(self, key: str) -> bool: ...

    def list_keys(self, prefix: str = "") -> list[str]: ...

    def local_path(self, key: str) -> Path | None: ...


# ----------------------------------------------------------------------------- a local folder
class LocalBlobStore:
    """Blobs as files under `root` (created if missing); writes go through a temporary file and os.replace."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if self.root not in path.parents:  # a symlink inside the store pointing out of it
            raise UnsafeKeyError(f"Bad file key {key!r}: it leads outside the store.")
        return path

    def _missing(self, key: str) -> BlobNotFound:
        return BlobNotFound(f"The file '{key.rsplit('/', 1)[-1]}' is not in the store (key {key}).")

    def put_file(self, key: str, path: Path) -> int:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
        os.close(handle)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return dest.stat().st_size

    def put_bytes(self, key: str, data: bytes) -> int:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=dest.parent)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(data)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return len(data)

    def get_file(self, key: str, dest: Path) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise self._missing(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        return dest

    def open(self, key: str) -> BinaryIO:
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise self._missing(key) from None

    def size(self, key: str) -> int:
        path = self._path(key)
        if not path.is_file():
            raise self._missing(key)
        return path.stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob whose key starts with `prefix` ("inputs/<id>/" removes that folder) -> how many."""
        prefix = check_prefix(prefix)
        base = self._path(prefix.rstrip("/"))
        if prefix.endswith("/") or base.is_dir():
            files = [p for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
            shutil.rmtree(base, ignore_errors=True)
            return len(files)
        parent, stem = base.parent, base.name
        count = 0
        for child in list(parent.iterdir()) if parent.is_dir() else []:
            if child.name.startswith(stem):
                if child.is_dir():
                    count += sum(1 for p in child.rglob("*") if p.is_file())
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
                    count += 1
        return count

    def delete(self, key: str) -> bool:
        """Remove the blob `key` -> whether it was there."""
        path = self._path(key)
        if not path.is_file():
            return False
        path.unlink(missing_ok=True)
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key starting with `prefix` ("" = all; "voices/" = that folder), sorted; temporary files of
        writes under way are left out."""
        if prefix:
            check_prefix(prefix)
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._path(folder) if folder else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.name.startswith(TEMP_PREFIX) or not path.is_file():
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                keys.append(key)
        return sorted(keys)

    def local_path(self, key: str) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


# ----------------------------------------------------------------------------- S3-compatible object storage
class S3BlobStore:
    """Blobs as objects `<prefix>/<key>` in `bucket` (boto3; the endpoint: `endpoint_url`, else $SVC_S3_ENDPOINT,
    else AWS)."""

    def __init__(self, bucket: str, prefix: str = "", endpoint_url: str | None = None,
                 client: Any = None) -> None:
        if not bucket:
            raise JobError("An S3 blob store needs a bucket name: s3://<bucket>/<prefix>.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint_url = endpoint_url or os.environ.get(S3_ENDPOINT_ENV) or None
        if client is None:
            try:
                import boto3
            except ImportError as err:  # pragma: no cover - boto3 is an optional dependency
                raise JobError("S3 storage needs boto3: pip install -r requirements.txt (boto3==1.44.18).") from err
            client = boto3.client("s3", endpoint_url=self.endpoint_url)
        self.client = client

    def __repr__(self) -> str:
        return f"S3BlobStore(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint_url={self.endpoint_url!r})"

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _missing(self, key: str) -> BlobNotFound:
        return BlobNotFound(f"The file '{key.rsplit('/', 1)[-1]}' is not in the store (key {key}).")

    @staticmethod
    def _is_missing(err: Exception) -> bool:
        response = getattr(err, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        return code in ("404", "NoSuchKey", "NotFound")

    def put_file(self, key: str, path: Path) -> int:
        self.client.upload_file(str(path), self.bucket, self._name(key))
        return Path(path).stat().st_size

    def put_bytes(self, key: str, data: bytes) -> int:
        self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        return len(data)

    def get_file(self, key: str, dest: Path) -> Path:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, self._name(key), str(dest))
        except Exception as err:
            if self._is_missing(err):
                raise self._missing(key) from None
            raise
        return dest

    def open(self, key: str) -> BinaryIO:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._name(key))["Body"]
        except Exception as err:
            if self._is_missing(err):
                raise self._missing(key) from None
            raise

    def size(self, key: str) -> int:
        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._name(key))["ContentLength"])
        except Exception as err:
            if self._is_missing(err):
                raise self._missing(key) from None
            raise

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except BlobNotFound:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        name = self._name(check_prefix(prefix).rstrip("/")) + ("/" if prefix.endswith("/") else "")
        count = 0
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=name):
            objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
                count += len(objects)
        return count

    def delete(self, key: str) -> bool:
        """Remove the object `key` -> whether it was there."""
        if not self.exists(key):
            return False
        self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        return True

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every key starting with `prefix` ("" = all of this store's prefix), sorted, without the store's prefix."""
        if prefix:
            check_prefix(prefix)
        base = f"{self.prefix}/" if self.prefix else ""
        keys = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base + prefix):
            keys.extend(item["Key"][len(base):] for item in page.get("Contents", []))
        return sorted(keys)

    def local_path(self, key: str) -> Path | None:
        return None


def open_blob_store(spec: str | Path, endpoint_url: str | None = None) -> BlobStore:
    """A blob store from its spec: "s3://bucket/prefix" -> S3BlobStore; anything else is a folder."""
    text = str(spec)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://"):].partition("/")
        return S3BlobStore(bucket, prefix, endpoint_url)
    return LocalBlobStore(Path(text))
