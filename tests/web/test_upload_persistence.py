"""Uploaded voices across restarts: the library on a real (tiny) voice, then a real server restarted on its folder."""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

from svc_core.errors import ModelError
from svc_core.ui.models import ModelLibrary, upload_label
from svc_core.ui.upload_store import DAY_SECONDS, MANIFEST, UploadBudget, owner_id
from svc_core.ui.workdir import WorkDirInUseError


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _voice_files(web_voice, folder: Path, step: int = 1200) -> list[Path]:
    """The test voice's files as a person would upload them (G_<step>.pth + config.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"G_{step}.pth"
    shutil.copyfile(web_voice.models_dir / "demo-voice" / "G_0.pth", model)
    shutil.copyfile(web_voice.models_dir / "demo-voice" / "config.json", folder / "config.json")
    return [model, folder / "config.json"]


# ------------------------------------------------------------------ labels
def test_upload_labels_tell_uploads_apart():
    at = time.mktime((2026, 12, 6, 5, 41, 0, 0, 0, -1))
    assert upload_label("", ["alto", "tenor", "bass"], "G_1000.pth", 1000, at) == \
        "alto, tenor +1 (uploaded 06 Dec 05:41, step 1000)"
    assert upload_label("", ["soloist"], "G_80.pth", 80, at) == "soloist (uploaded 06 Dec 05:41, step 80)"
    assert upload_label("", ["0", "1"], "nyaru_SoVits.onnx", None, at) == "nyaru (uploaded 06 Dec 05:41)"
    first = upload_label("My band", ["alto"], "G_1.pth", 1, at)
    assert first == "My band (uploaded 06 Dec 05:41, step 1)"
    assert upload_label("My band", ["alto"], "G_1.pth", 1, at, taken=[first]) == first + " #2"
    assert upload_label("My band", ["alto"], "G_1.pth", 1, at, taken=[first, first + " #2"]) == first + " #3"


# ------------------------------------------------------------------ the library across a restart
def test_uploads_are_listed_again_after_a_restart_to_their_browser(web_voice, tmp_path):
    uploads = tmp_path / "uploads"
    library = ModelLibrary(web_voice.models_dir, uploads)
    one = library.add_upload(_voice_files(web_voice, tmp_path / "a"), owner="browser-a", name=" My  band\n")
    two = library.add_upload(_voice_files(web_voice, tmp_path / "b", step=2400), owner="browser-a")
    three = library.add_upload(_voice_files(web_voice, tmp_path / "c", step=2400), owner="browser-b")
    assert one.label.startswith("My band (uploaded ") and one.label.endswith(", step 1200)")
    assert two.label.startswith("alto, tenor +1 (uploaded ") and two.label.endswith(", step 2400)")
    assert three.label != two.label and three.label.startswith(two.label)  # same voice, same minute: "#2"
    manifest = json.loads((uploads / one.key / MANIFEST).read_text())
    assert manifest["summary"]["speakers"] == ["alto", "tenor", "bass"] and manifest["summary"]["step"] == 1200
    assert manifest["summary"]["model_file"] == "G_1200.pth" and manifest["name"] == "My band"
    assert manifest["summary"]["speech_encoder"] == "vec256l9" and manifest["owner"] == owner_id("browser-a")

    restarted = ModelLibrary(web_voice.models_dir, uploads)
    mine = [k for _, k in restarted.choices("browser-a")]
    assert mine == ["demo-voice", one.key, two.key]
    assert [k for _, k in restarted.choices("browser-b")] == ["demo-voice", three.key]
    assert [k for _, k in restarted.choices()] == ["demo-voice"]  # a browser without a token sees no upload
    assert restarted.get(one.key) == one and restarted.get(three.key).label == three.label
    everyone = ModelLibrary(web_voice.models_dir, uploads, show_all_uploads=True)  # a private server
    assert [k for _, k in everyone.choices()] == ["demo-voice", one.key, two.key, three.key]


def test_restart_prunes_to_the_budget_and_drops_tampered_uploads(web_voice, tmp_path, caplog):
    uploads, clock = tmp_path / "uploads", Clock()
    library = ModelLibrary(web_voice.models_dir, uploads, clock=clock)
    old = library.add_upload(_voice_files(web_voice, tmp_path / "a"), owner="b")
    clock.now += 10 * DAY_SECONDS
    keep = library.add_upload(_voice_files(web_voice, tmp_path / "b"), owner="b")
    tampered = library.add_upload(_voice_files(web_voice, tmp_path / "c"), owner="b")
    with open(tampered.model_path, "r+b") as f:  # one byte changed after the check
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 0xFF]))
    clock.now += 5 * DAY_SECONDS  # old: 15 days, over the 7-day budget below
    with caplog.at_level(logging.INFO, logger="svc_core.ui"):
        restarted = ModelLibrary(web_voice.models_dir, uploads, UploadBudget(max_age_seconds=7 * DAY_SECONDS),
                                 clock=clock)
    assert [e.key for e in restarted.upload_entries()] == [keep.key]
    assert sorted(p.name for p in uploads.iterdir()) == [keep.key]  # nothing orphaned
    log = caplog.text
    assert f"{tampered.key}" in log and "sha256 differs" in log and f"removing uploaded voice {old.key}" in log
    with pytest.raises(ModelError, match="no longer kept on this server"):
        restarted.get(old.key)
    # a server left running: `keep` (5 days old) expires at 7 days and goes when the picker is next listed, checked
    # at most every 10 minutes
    clock.now += 2 * DAY_SECONDS - 60
    assert keep.key in [k for _, k in restarted.choices("b")]  # not expired yet (and checked now)
    clock.now += 120
    assert keep.key in [k for _, k in restarted.choices("b")]  # expired, not checked again yet
    clock.now += 600
    assert keep.key not in [k for _, k in restarted.choices("b")] and not any(uploads.iterdir())


def test_an_upload_over_the_whole_budget_is_refused(web_voice, tmp_path):
    library = ModelLibrary(web_voice.models_dir, tmp_path / "uploads", UploadBudget(max_bytes=1000))
    with pytest.raises(ModelError, match="this server keeps at most 0 MB of uploaded voices"):
        library.add_upload(_voice_files(web_voice, tmp_path / "a"))
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


# ------------------------------------------------------------------ a real server, restarted
def _page_event(server, fn_name: str, data: list, session: str) -> list:
    """Run one of the page's own (private) events the way the browser does: queue/join, then read the stream."""
    fn_index = next(i for i, fn in server.demo.fns.items() if fn.name == fn_name)
    base = server.url + "gradio_api/"
    joined = httpx.post(base + "queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                    "event_data": None, "trigger_id": None}, timeout=30)
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    with httpx.stream("GET", base + "queue/data", params={"session_hash": session}, timeout=300) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                assert message["success"], message
                return message["output"]["data"]
    raise AssertionError(f"no result for {fn_name}")


def _send_files(server, paths: list[Path]) -> list[dict]:
    handles = [("files", (p.name, p.read_bytes())) for p in paths]
    stored = httpx.post(server.url + "gradio_api/upload", files=handles, timeout=60).json()
    return [{"path": s, "orig_name": p.name, "meta": {"_type": "gradio.FileData"}} for s, p in zip(stored, paths)]


def test_an_upload_survives_a_server_restart_and_converts(web_voice, make_server, tmp_path):
    import soundfile as sf
    from gradio_client import Client, handle_file

    from audio_factories import sung_phrase

    # a clip of its own (another gain): closing a server deletes the files Gradio kept, by content hash
    examples = tmp_path / "examples"
    examples.mkdir()
    clip = examples / "restart.wav"
    sf.write(clip, 0.9 * sung_phrase(2.0, gap_every=1.0, gap=0.6), 44100, subtype="PCM_16")
    voice = dataclasses.replace(web_voice, examples_dir=examples)
    work = tmp_path / "work"
    token = "browser-" + uuid.uuid4().hex
    first = make_server(voice, work, show_all_uploads=False)  # as on a public link: a browser sees its own
    try:
        with pytest.raises(WorkDirInUseError, match="--work-dir"):  # a second server on the same folder
            make_server(voice, work)
        model, note, returned_token = _page_event(
            first, "on_upload", [_send_files(first, _voice_files(web_voice, tmp_path / "up")), token], "s1")
        assert returned_token == token
        key = model["value"]
        label = dict((k, lbl) for lbl, k in model["choices"])[key]
        assert key.startswith("upload-") and label.startswith("alto, tenor +1 (uploaded ") and label in note
    finally:
        first.demo.close()
        first.state.close()
    assert not (work / "results").exists()

    second = make_server(voice, work, show_all_uploads=False)
    try:
        model = _page_event(second, "show_browser_uploads", [token], "s2")[0]
        assert [label, key] in model["choices"]  # the same label, listed again to the same browser
        others = _page_event(second, "show_browser_uploads", ["another-browser"], "s3")[0]
        assert key not in [k for _, k in others["choices"]] and ["demo-voice"] == [k for _, k in others["choices"]]
        client = Client(second.url, verbose=False, analytics_enabled=False, download_files=str(tmp_path / "dl"))
        audio, log, *_ = client.predict(audio=handle_file(str(clip)), model=key, speaker="tenor",
                                        f0_predictor="pm", api_name="/convert")
        assert "done:" in log and Path(audio).is_file()
    finally:
        second.demo.close()
        second.state.close()


# ------------------------------------------------------------------ settings
def test_upload_budget_and_visibility_options():
    from svc_core.ui.settings import SettingsError, parse_args, parse_duration

    s = parse_args([])
    assert s.work_dir is None  # the per-user cache folder, chosen at start (workdir.default_work_dir)
    assert s.upload_budget == UploadBudget(16, 4 * 1024**3, 14 * DAY_SECONDS)
    s = parse_args(["--max-uploads", "3", "--max-upload-storage", "500mb", "--upload-max-age", "12h",
                    "--work-dir", "somewhere"])
    assert s.upload_budget == UploadBudget(3, 500 * 1024**2, 12 * 3600) and s.work_dir == Path("somewhere").resolve()
    assert parse_duration("90m") == 5400 and parse_duration("2d") == 2 * DAY_SECONDS and parse_duration("30") == 30
    for argv, message in [(["--max-uploads", "0"], "1 or more"), (["--upload-max-age", "soon"], "not a duration"),
                          (["--max-upload-storage", "lots"], "--max-upload-storage 'lots' is not a size")]:
        with pytest.raises(SettingsError, match=message):
            parse_args(argv)
    # every upload listed to everyone only where nobody else can reach the page
    assert parse_args([]).uploads_shown_to_all
    assert not parse_args(["--auth", "ann:pw"]).uploads_shown_to_all
    assert not parse_args(["--host", "0.0.0.0", "--allow-anonymous"]).uploads_shown_to_all
    assert not parse_args(["--root-path", "/svc"]).uploads_shown_to_all
    assert not parse_args(["--tunnel", "frp", "--auth", "a:b"]).uploads_shown_to_all
