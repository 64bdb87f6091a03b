"""The upload store (manifests, listing again, pruning) and the work folder (lock, clean-up), on plain files."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time

import pytest

from svc_core.errors import SvcError
from svc_core.ui.upload_store import (MANIFEST, UploadBudget, UploadStore, browser_keys, new_owner_token,
                                      owner_id)
from svc_core.ui.workdir import (GRADIO_TEMP, ONNX_EXPORTS, RESULTS, WorkDirInUseError, WorkDirLock,
                                 clean_at_exit, clean_at_start, default_work_dir, legacy_temp_dirs)

DAY = 24 * 3600.0


class Clock:
    """A settable clock for the store (seconds since the epoch)."""

    def __init__(self, now: float = 1_760_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _stored(store: UploadStore, payload: bytes = b"weights", owner: str = "", label: str = "voice",
            config: bytes = b'{"spk": {}}'):
    folder = store.new_folder()
    (folder / "G_1000.pth").write_bytes(payload)
    (folder / "config.json").write_bytes(config)
    return store.commit(folder, owner_id(owner), label, summary={"step": 1000})


def test_manifest_records_what_was_checked(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", clock=clock)
    record = _stored(store, b"x" * 3000, owner="token-a", label="alto (uploaded 06 Dec 05:41, step 1000)")
    doc = json.loads((record.folder / MANIFEST).read_text())
    assert doc["format"] == "svc-studio-upload/1" and doc["key"] == record.folder.name
    assert doc["files"]["G_1000.pth"] == {"bytes": 3000, "sha256": hashlib.sha256(b"x" * 3000).hexdigest()}
    assert set(doc["files"]) == {"G_1000.pth", "config.json"}  # the manifest does not list itself
    assert doc["uploaded_at"] == clock.now and doc["summary"] == {"step": 1000}
    assert doc["owner"] == owner_id("token-a") and "token-a" not in json.dumps(doc)  # a hash, not the token
    assert doc["label"] == "alto (uploaded 06 Dec 05:41, step 1000)"
    assert not list(record.folder.glob("*.part"))
    assert record.total_bytes == 3000 + len(b'{"spk": {}}')


def test_listed_again_oldest_first(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", clock=clock)
    first = _stored(store, b"one", label="one")
    clock.now += 60
    second = _stored(store, b"two", label="two")
    again = UploadStore(tmp_path / "uploads", clock=clock).load()
    assert [r.key for r in again] == [first.key, second.key]
    assert again[0].files == first.files and again[1].label == "two" and again[1].uploaded_at == second.uploaded_at


def _break(record, how: str) -> None:
    model = record.folder / "G_1000.pth"
    if how == "corrupt manifest":
        (record.folder / MANIFEST).write_text("{not json")
    elif how == "manifest of another folder":
        doc = json.loads((record.folder / MANIFEST).read_text())
        doc["key"] = "upload-0000000000000000"
        (record.folder / MANIFEST).write_text(json.dumps(doc))
    elif how == "same size, other bytes":
        model.write_bytes(b"X" + model.read_bytes()[1:])
    elif how == "other size":
        model.write_bytes(model.read_bytes() + b"!")
    elif how == "file removed":
        model.unlink()
    elif how == "file added":
        (record.folder / "G_9999.pth").write_bytes(b"newer generator, never checked")
    elif how == "no manifest":
        (record.folder / MANIFEST).unlink()
    elif how == "path in manifest":
        doc = json.loads((record.folder / MANIFEST).read_text())
        doc["files"]["../outside"] = {"bytes": 1, "sha256": "00"}
        (record.folder / MANIFEST).write_text(json.dumps(doc))


@pytest.mark.parametrize("how, reason", [
    ("corrupt manifest", "unreadable manifest"),
    ("manifest of another folder", "not the folder's name"),
    ("same size, other bytes", "sha256 differs"),
    ("other size", "changed size"),
    ("file removed", "missing G_1000.pth"),
    ("file added", "not in the manifest G_9999.pth"),
    ("no manifest", "did not finish"),
    ("path in manifest", "not a plain name"),
])
def test_a_folder_that_does_not_check_out_is_dropped_with_a_log_line(tmp_path, caplog, how, reason):
    store = UploadStore(tmp_path / "uploads")
    good = _stored(store, b"good", label="good")
    bad = _stored(store, b"bad weights", label="bad")
    _break(bad, how)
    with caplog.at_level(logging.WARNING, logger="svc_core.ui"):
        listed = UploadStore(tmp_path / "uploads").load()
    assert [r.key for r in listed] == [good.key]
    assert not bad.folder.exists()  # nothing orphaned
    lines = [r.getMessage() for r in caplog.records if bad.key in r.getMessage()]
    assert len(lines) == 1 and reason in lines[0], lines


def test_strays_in_the_store_are_removed_but_the_browser_keys_stay(tmp_path):
    root = tmp_path / "uploads"
    keys = browser_keys(root)
    (root / "upload-abc").mkdir()  # not a key the store makes
    (root / "notes.txt").write_text("?")
    assert UploadStore(root).load() == []
    assert sorted(p.name for p in root.iterdir()) == [".browser-keys.json"]
    assert browser_keys(root) == keys and len(keys["secret"]) >= 24 and keys["storage_key"]
    assert oct((root / ".browser-keys.json").stat().st_mode & 0o777) == "0o600"
    assert new_owner_token() != new_owner_token()


def test_pruned_by_age(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", UploadBudget(max_age_seconds=7 * DAY), clock=clock)
    old = _stored(store, b"old")
    clock.now += 5 * DAY
    young = _stored(store, b"young")
    clock.now += 3 * DAY  # old is 8 days old, young 3
    assert store.over_budget([old, young]) == [old.key]


def test_pruned_by_count_oldest_first_never_the_new_one(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", UploadBudget(max_count=2), clock=clock)
    records = []
    for n in range(4):
        records.append(_stored(store, b"%d" % n))
        clock.now += 1
    assert store.over_budget(records) == [records[0].key, records[1].key]
    assert store.over_budget(records, keep=records[0].key) == [records[1].key, records[2].key]


def test_whoever_holds_the_most_loses_their_oldest_first(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", UploadBudget(max_count=4), clock=clock)
    alice = _stored(store, b"alice's only voice", owner="alice")
    clock.now += 1
    flood = []
    for n in range(4):  # one visitor uploads again and again
        flood.append(_stored(store, b"%d" % n, owner="mallory"))
        clock.now += 1
    assert store.over_budget([alice, *flood], keep=flood[-1].key) == [flood[0].key]
    bob = _stored(store, b"bob", owner="bob")
    assert store.over_budget([alice, *flood[1:], bob], keep=bob.key) == [flood[1].key]


def test_pruned_by_bytes(tmp_path):
    clock = Clock()
    store = UploadStore(tmp_path / "uploads", UploadBudget(max_bytes=2500), clock=clock)
    records = []
    for size in (1000, 1000, 1000):
        records.append(_stored(store, b"w" * size, config=b""))
        clock.now += 1
    assert store.over_budget(records) == [records[0].key]  # 3000 -> 2000 bytes
    assert store.over_budget(records[1:]) == []
    records.append(_stored(store, b"w" * 2400, config=b""))
    assert store.over_budget(records, keep=records[-1].key) == [r.key for r in records[:3]]


# ------------------------------------------------------------------ the work folder
def test_default_work_dir_is_the_per_user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert default_work_dir() == tmp_path / "cache" / "svc-studio"


def test_a_second_server_on_the_folder_is_refused(tmp_path):
    lock = WorkDirLock(tmp_path / "work").acquire()
    with pytest.raises(WorkDirInUseError) as err:
        WorkDirLock(tmp_path / "work").acquire()
    message = str(err.value)
    assert str(tmp_path / "work") in message and "--work-dir" in message and f"pid {os.getpid()}" in message
    assert isinstance(err.value, SvcError)
    lock.release()
    WorkDirLock(tmp_path / "work").acquire().release()  # free again


def test_clean_at_start_and_exit(tmp_path):
    work = tmp_path / "work"
    (work / RESULTS / "0123abcd").mkdir(parents=True)
    (work / RESULTS / "0123abcd" / "clip_voice.wav").write_bytes(b"RIFF")
    (work / GRADIO_TEMP / "f00d").mkdir(parents=True)
    (work / GRADIO_TEMP / "f00d" / "upload.wav").write_bytes(b"RIFF")
    exports = work / ONNX_EXPORTS
    exports.mkdir()
    for name in ("fresh.onnx", "half.onnx.part", "half.part.wav", "old.onnx"):
        (exports / name).write_bytes(b"onnx")
    (exports / "svc-int8-xyz").mkdir()  # an int8 calibration's temporary folder
    old = time.time() - 31 * DAY
    os.utime(exports / "old.onnx", (old, old))
    (work / "uploads").mkdir()
    (work / "uploads" / "keep.txt").write_text("the upload store's")
    cleaned = clean_at_start(work)
    assert sorted(p.name for p in exports.iterdir()) == ["fresh.onnx"]
    assert list((work / RESULTS).iterdir()) == [] and list((work / GRADIO_TEMP).iterdir()) == []
    assert (work / "uploads" / "keep.txt").exists() and len(cleaned.removed) == 6
    clean_at_exit(work)
    assert sorted(p.name for p in work.iterdir()) == [ONNX_EXPORTS, "uploads"]


def test_legacy_temp_folders_are_recognised_carefully(tmp_path):
    now = time.time()
    made = {}
    for name, children in [("svc-studio-ab12cd_z", ["uploads", "results", "onnx"]),  # an old work folder
                           ("svc-studio-k3j4h5g6", []),  # empty
                           ("svc-studio-q1w2e3r4", ["uploads", "thesis.tex"]),  # something else in it
                           ("svc-studio-notours", ["uploads"]),  # not a mkdtemp name
                           ("svc-studio-recent1_", ["results"])]:  # in use (changed a minute ago)
        folder = tmp_path / name
        folder.mkdir()
        for child in children:
            (folder / child).mkdir() if "." not in child else (folder / child).write_text("x")
        made[name] = folder
    stamp = now - 2 * 3600
    for folder in made.values():
        for path in [*folder.rglob("*"), folder]:
            os.utime(path, (stamp, stamp))
    os.utime(made["svc-studio-recent1_"] / "results", (now - 60, now - 60))
    (tmp_path / "svc-studio-filezzzz").write_text("a file, not a folder")
    found = sorted(p.name for p in legacy_temp_dirs(tmp_path, now=now))
    assert found == ["svc-studio-ab12cd_z", "svc-studio-k3j4h5g6"]
