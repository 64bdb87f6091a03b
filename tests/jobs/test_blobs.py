"""Blob stores: a local folder, and S3 through a real S3-compatible server (moto's, on a free port of 127.0.0.1)
with boto3 as a deployment uses it (credentials from the AWS variables, endpoint from $SVC_S3_ENDPOINT)."""
from __future__ import annotations

import pytest

from svc_core.jobs.blobs import LocalBlobStore, S3BlobStore, UnsafeKeyError, check_key, open_blob_store
from svc_core.jobs.errors import BlobNotFound

UNSAFE_KEYS = ["", "/etc/passwd", "../outside", "inputs/../../outside", "inputs//x", "inputs/./x", "a\\b",
               "inputs/x\0y", "inputs/" + "x" * 600]


def exercise(store, tmp_path) -> None:
    """The BlobStore contract, the same for every implementation."""
    src = tmp_path / "clip.wav"
    src.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    assert store.put_file("inputs/job1/clip.wav", src) == src.stat().st_size
    assert store.put_bytes("results/job1/out.wav", b"abc") == 3
    store.put_bytes("results/job1/more/log.txt", b"x")
    store.put_bytes("results/job10/out.wav", b"other job")
    assert store.exists("inputs/job1/clip.wav") and not store.exists("inputs/job1/nothing.wav")
    assert store.size("inputs/job1/clip.wav") == src.stat().st_size
    got = store.get_file("inputs/job1/clip.wav", tmp_path / "down" / "clip.wav")
    assert got.read_bytes() == src.read_bytes()
    with store.open("results/job1/out.wav") as handle:
        assert handle.read() == b"abc"
    for call in (lambda: store.size("results/job1/none.wav"), lambda: store.open("results/job1/none.wav"),
                 lambda: store.get_file("results/job1/none.wav", tmp_path / "none.wav")):
        with pytest.raises(BlobNotFound):
            call()
    assert store.delete_prefix("results/job1/") == 2  # the job's folder only: job10 stays
    assert not store.exists("results/job1/out.wav") and store.exists("results/job10/out.wav")
    assert store.delete_prefix("results/job1/") == 0
    for key in UNSAFE_KEYS:
        with pytest.raises(UnsafeKeyError):
            store.put_bytes(key, b"no")
        with pytest.raises(UnsafeKeyError):
            store.exists(key)


def test_keys_are_checked():
    assert check_key("inputs/0123/My clip (1).wav") == "inputs/0123/My clip (1).wav"
    for key in UNSAFE_KEYS:
        with pytest.raises(UnsafeKeyError):
            check_key(key)


def test_local_blob_store(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    exercise(store, tmp_path)
    assert store.local_path("results/job10/out.wav") == tmp_path / "blobs" / "results" / "job10" / "out.wav"
    assert store.local_path("results/job10/none.wav") is None
    assert not list((tmp_path / "blobs").rglob(".put-*"))  # no temporary files left
    assert isinstance(open_blob_store(str(tmp_path / "other")), LocalBlobStore)


def test_a_symlink_out_of_the_local_store_is_refused(tmp_path):
    store = LocalBlobStore(tmp_path / "blobs")
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "key.txt").write_text("no")
    (tmp_path / "blobs" / "inputs").mkdir()
    (tmp_path / "blobs" / "inputs" / "link").symlink_to(tmp_path / "secret")
    with pytest.raises(UnsafeKeyError):
        store.open("inputs/link/key.txt")


def test_s3_blob_store_against_a_real_s3_server(s3_server, tmp_path):
    import boto3

    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="svc-test")
    store = open_blob_store("s3://svc-test/studio/one")  # endpoint from $SVC_S3_ENDPOINT
    assert isinstance(store, S3BlobStore) and store.endpoint_url == s3_server
    exercise(store, tmp_path)
    assert store.local_path("results/job10/out.wav") is None
    names = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_server)
             .list_objects_v2(Bucket="svc-test")["Contents"]]
    assert sorted(names) == ["studio/one/inputs/job1/clip.wav", "studio/one/results/job10/out.wav"]
    other = S3BlobStore("svc-test", "studio/two", endpoint_url=s3_server)  # another prefix sees nothing of it
    assert not other.exists("results/job10/out.wav")
