"""Uploaded voices shared through the blob store (svc_core.jobs.voice_sync): a voice uploaded to a "server" work
folder is published, fetched into another (empty) uploads folder on a local store and on S3 (moto server), and
listed there like an upload made there (same label and owner); damaged or unsafe shared copies are refused with a
clear error and leave nothing behind; and a worker whose uploads folder is empty runs a conversion naming the
published voice (the real engine, the starter voice)."""
from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from svc_core.jobs import errors
from svc_core.jobs.blobs import LocalBlobStore, S3BlobStore, UnsafeKeyError
from svc_core.jobs.model import DONE, FAILED
from svc_core.jobs.voice_sync import (FETCH_FOLDER, VoiceSyncError, fetch_voice, manifest_key, publish_voice,
                                      published_voices, read_published, unpublish_missing, unpublish_voice)
from jobs.conftest import FAST

TIMEOUT = 600.0  # seconds a job may take at most on a loaded box (never asserted on)
OWNER = "pat-browser-token"


@pytest.fixture(params=["local", "s3"])
def blobs(request, tmp_path):
    """An empty blob store: a local folder, or a fresh prefix of a bucket on a real S3 server (moto)."""
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    import boto3

    endpoint = request.getfixturevalue("s3_server")
    client = boto3.client("s3", endpoint_url=endpoint)
    if "svc-voices" not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket="svc-voices")
    return S3BlobStore("svc-voices", f"t{uuid.uuid4().hex[:8]}", endpoint_url=endpoint)


def server_library(root):
    """The API server's library: no folder voices of its own, uploads in root/work/uploads."""
    from svc_core.ui.models import ModelLibrary
    from svc_core.ui.settings import STARTER_VOICES

    (root / "models").mkdir(parents=True, exist_ok=True)
    return ModelLibrary(root / "models", root / "work" / "uploads", shipped=(STARTER_VOICES,))


def upload_starter(library, owner: str = OWNER, name: str = "Starter copy"):
    """The starter voice (voices/starter) uploaded as a browser would."""
    from svc_core.ui.settings import STARTER_VOICES

    return library.add_upload([STARTER_VOICES / "W_5000.pth", STARTER_VOICES / "config.json"], owner=owner,
                              name=name)


def folder_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def uploaded(tmp_path_factory):
    """One upload in a server work folder, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("server")
    library = server_library(root)
    return library, upload_starter(library)


def test_publish_then_fetch_gives_the_same_upload_with_its_owner(uploaded, blobs, tmp_path):
    from svc_core.ui.models import ModelLibrary

    library, entry = uploaded
    published = publish_voice(blobs, entry)
    key = entry.key
    assert published.key == key and set(published.files) == {"W_5000.pth", "config.json", "manifest.json"}
    assert blobs.list_keys("voices/") == sorted([manifest_key(key)] + [f"voices/{key}/{n}" for n in
                                                                        published.files])
    assert published_voices(blobs) == [key] and read_published(blobs, key) == published
    assert publish_voice(blobs, entry.folder) == published  # unchanged: nothing published again

    uploads = tmp_path / "worker" / "uploads"
    fetched = fetch_voice(blobs, key, uploads)
    assert fetched == uploads / key
    assert folder_files(fetched) == folder_files(entry.folder)  # byte for byte, the upload's manifest included
    assert not any((tmp_path / "worker" / FETCH_FOLDER).iterdir())  # no download left half-way
    assert fetch_voice(blobs, key, uploads) == fetched  # there already: nothing downloaded

    worker = ModelLibrary(tmp_path / "worker" / "models", uploads)  # lists it like an upload made there
    got = worker.get(key)
    assert got.uploaded and got.label == entry.label and got.speakers == entry.speakers
    assert (got.label, key) in worker.choices(OWNER) and (got.label, key) not in worker.choices("someone else")

    assert unpublish_voice(blobs, key) == 4 and blobs.list_keys("voices/") == [] and published_voices(blobs) == []
    assert fetch_voice(blobs, key, tmp_path / "other" / "uploads") is None
    assert unpublish_voice(blobs, key) == 0


def test_unpublish_missing_keeps_the_voices_the_server_still_holds(uploaded, blobs):
    library, entry = uploaded
    publish_voice(blobs, entry)
    other = "upload-" + "0" * 16
    blobs.put_bytes(manifest_key(other), b"{}")  # a voice the server no longer holds (pruned)
    blobs.put_bytes(f"voices/{other}/W_1.pth", b"x")
    assert unpublish_missing(blobs, [e.key for e in library.upload_entries()]) == [other]
    assert published_voices(blobs) == [entry.key] and not blobs.list_keys(f"voices/{other}")


@pytest.mark.parametrize("damage, message", [
    (lambda data: bytes([data[0] ^ 0xFF]) + data[1:], "the sha256 of W_5000.pth differs from its manifest's"),
    (lambda data: data[:-10], "W_5000.pth has 7832235 bytes, its manifest says 7832245"),
    (None, "incomplete: W_5000.pth is missing from the store"),
])
def test_a_damaged_shared_copy_is_refused_and_nothing_is_kept(uploaded, blobs, tmp_path, damage, message):
    _, entry = uploaded
    publish_voice(blobs, entry)
    blob = f"voices/{entry.key}/W_5000.pth"
    if damage is None:
        blobs.delete(blob)
    else:
        with blobs.open(blob) as handle:
            blobs.put_bytes(blob, damage(handle.read()))
    uploads = tmp_path / "worker" / "uploads"
    with pytest.raises(VoiceSyncError, match=f"The shared copy of voice {entry.key} is .*{message}") as caught:
        fetch_voice(blobs, entry.key, uploads)
    assert errors.error_code(caught.value) == errors.MODEL_ERROR
    assert not (uploads / entry.key).exists() and not any((tmp_path / "worker" / FETCH_FOLDER).iterdir())


def _manifest(key: str, files: dict[str, bytes]) -> bytes:
    facts = {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()} for name, data in files.items()}
    return json.dumps({"format": "svc-studio-voice-sync/1", "key": key, "published_at": 0, "files": facts}).encode()


@pytest.mark.parametrize("name", ["../escaped.pth", "/etc/escaped", "diffusion/../../escaped", "a/b/escaped",
                                  "other/escaped.pth", "x\\..\\escaped"])
def test_file_names_that_leave_the_voice_folder_are_refused(tmp_path, name):
    blobs = LocalBlobStore(tmp_path / "blobs")
    key = "upload-" + "1" * 16
    files = {"manifest.json": b"{}", name: b"evil"}
    blobs.put_bytes(manifest_key(key), _manifest(key, files))
    blobs.put_bytes(f"voices/{key}/manifest.json", b"{}")
    with pytest.raises(UnsafeKeyError, match="Bad file"):
        fetch_voice(blobs, key, tmp_path / "work" / "uploads")
    assert not list(tmp_path.rglob("escaped*"))


@pytest.mark.parametrize("key", ["../upload-1111111111111111", "upload-1111111111111111/..", "starter",
                                 "upload-XYZ", "/tmp/upload-1111111111111111"])
def test_keys_other_than_upload_keys_are_refused(tmp_path, key):
    blobs = LocalBlobStore(tmp_path / "blobs")
    for call in (lambda: fetch_voice(blobs, key, tmp_path / "uploads"), lambda: unpublish_voice(blobs, key),
                 lambda: publish_voice(blobs, tmp_path, key)):
        with pytest.raises(UnsafeKeyError, match="only uploaded voices"):
            call()


def test_a_manifest_for_another_voice_or_a_folder_that_is_no_upload_is_refused(uploaded, tmp_path):
    _, entry = uploaded
    blobs = LocalBlobStore(tmp_path / "blobs")
    other = "upload-" + "2" * 16
    blobs.put_bytes(manifest_key(other), _manifest(entry.key, {"manifest.json": b"{}"}))
    with pytest.raises(VoiceSyncError, match="names another voice"):
        fetch_voice(blobs, other, tmp_path / "uploads")
    blobs.put_bytes(manifest_key(other), b"not json")
    with pytest.raises(VoiceSyncError, match="unreadable"):
        fetch_voice(blobs, other, tmp_path / "uploads")
    with pytest.raises(VoiceSyncError, match="is not the upload"):
        publish_voice(blobs, entry.folder, other)  # a key that is not the folder's
    bare = tmp_path / other
    bare.mkdir()
    (bare / "W_5000.pth").write_bytes(b"x")
    with pytest.raises(VoiceSyncError, match="not a finished upload"):
        publish_voice(blobs, bare)
    assert published_voices(blobs) == [other]  # only the hand-made manifest: nothing was published


# ---------------------------------------------------------------------------- a worker on another machine
class _Handed:
    """The queue of a JobService whose jobs this test runs itself (run_job on the worker's env)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def submit(self, record) -> None:
        self.ids.append(record.id)


def test_a_worker_with_an_empty_uploads_folder_runs_a_job_on_a_published_voice(blobs, clip, tmp_path):
    from svc_core.jobs.runner import make_worker_env, run_job
    from svc_core.jobs.service import JobService
    from svc_core.jobs.store import FileJobStore
    from svc_core.ui.settings import STARTER_VOICES

    server = server_library(tmp_path / "server")
    entry = upload_starter(server)
    publish_voice(blobs, entry)  # what the API's upload route does
    kept_back = upload_starter(server, name="never published")
    store = FileJobStore(tmp_path / "jobs")
    queue = _Handed()
    api = JobService(store, blobs, queue, server)

    (tmp_path / "worker" / "models").mkdir(parents=True)
    env = make_worker_env(tmp_path / "worker" / "models", tmp_path / "worker" / "work", store, blobs, threads=1,
                          shipped=(STARTER_VOICES,), separation_dir=tmp_path / "separation_models")
    uploads = env.jobs.library.uploads_dir
    assert not uploads.exists() or not any(uploads.iterdir())
    assert entry.key not in {e.key for e in env.jobs.library.upload_entries()}

    record = api.submit("convert", "pat", dict(FAST, model=entry.key), {"audio": clip})
    done = run_job(queue.ids[-1], env)
    assert done.id == record.id and done.status == DONE, done.error
    assert done.results[0].name.startswith(f"speech_slt_{entry.key}_fest_ked")
    assert blobs.size(done.results[0].key) == done.results[0].size > 44
    fetched = env.jobs.library.get(entry.key)
    assert fetched.uploaded and fetched.label == entry.label and fetched.folder == uploads / entry.key
    assert folder_files(fetched.folder) == folder_files(entry.folder)

    missing = api.submit("convert", "pat", dict(FAST, model=kept_back.key), {"audio": clip})
    failed = run_job(queue.ids[-1], env)
    assert failed.id == missing.id and failed.status == FAILED
    assert failed.error["code"] == errors.VOICE_NOT_FOUND
    assert kept_back.key in failed.error["message"] and "not in the shared store" in failed.error["message"]
    assert not (uploads / kept_back.key).exists()


def test_a_voice_with_a_diffusion_subfolder_and_two_fetches_at_once(tmp_path):
    """The upload layout's subfolder (diffusion/) travels too; two threads fetching the same voice end with one
    complete folder and no leftovers."""
    import threading

    from svc_core.ui.upload_store import UploadStore

    store = UploadStore(tmp_path / "server" / "uploads")
    folder = store.new_folder()
    (folder / "W_1.pth").write_bytes(b"generator" * 1000)
    (folder / "config.json").write_text("{}")
    (folder / "diffusion").mkdir()
    (folder / "diffusion" / "model_1000.pt").write_bytes(b"diffusion" * 1000)
    (folder / "diffusion" / "config.yaml").write_text("x: 1\n")
    store.commit(folder, "owner", "a label")
    blobs = LocalBlobStore(tmp_path / "blobs")
    published = publish_voice(blobs, folder)
    assert {"diffusion/model_1000.pt", "diffusion/config.yaml"} <= set(published.files)

    uploads = tmp_path / "worker" / "uploads"
    got, failures = [], []

    def fetch() -> None:
        try:
            got.append(fetch_voice(blobs, folder.name, uploads))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            failures.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and got == [uploads / folder.name] * 2
    assert folder_files(uploads / folder.name) == folder_files(folder)
    assert [r.key for r in UploadStore(uploads).load()] == [folder.name]  # the upload store's own checks pass
    assert not any((tmp_path / "worker" / FETCH_FOLDER).iterdir())
