"""The redesigned page in a real headless Chromium on a real server of its own: the first screen on a laptop, the
Stop button, the example chips, the per-voice controls, the upload error that stays.

The server lists the shipped WORLD starter voice (first, so selected at start) and the test's so-vits voice
`demo-voice`; its examples folder has an examples.json that titles the clip and suggests a transpose and speaker.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from browser_support import GUARD_MS, open_page

CHIP_TITLE = "A sung phrase"
CHIP_TRANSPOSE = 5
CHIP_SPEAKER = "tenor"
LONG_CLIP_SECONDS = 60.0  # long enough that Stop lands while the conversion runs
LAPTOPS = [(1400, 1000), (1280, 800)]
STOP_HIDDEN = "() => { const b = document.querySelector('#stop-button'); return !b || b.offsetParent === null; }"
STARTER_FIRST_SPEAKER = "festival ked_diphone (US English, male)"  # fest_ked, named by the manifest


@pytest.fixture(scope="module")
def page_server(web_voice, tmp_path_factory, make_server):
    import soundfile as sf

    from audio_factories import sung_phrase
    from svc_core.ui.settings import STARTER_VOICES

    examples = tmp_path_factory.mktemp("page-examples")
    shutil.copyfile(web_voice.clip, examples / "phrase.wav")
    (examples / "examples.json").write_text(json.dumps([
        {"file": "phrase.wav", "title": CHIP_TITLE, "suggested_transpose": CHIP_TRANSPOSE, "speaker": CHIP_SPEAKER}]))
    long_clip = tmp_path_factory.mktemp("page-long") / "long_song.wav"
    sf.write(long_clip, sung_phrase(LONG_CLIP_SECONDS, gap_every=2.0, gap=0.5), 44100, subtype="PCM_16")
    server = make_server(web_voice, tmp_path_factory.mktemp("page-work"), examples_dir=examples,
                         shipped_voices=(STARTER_VOICES,), concurrency=1, queue_size=4)
    server.long_clip = long_clip
    server.short_clip = long_clip.parent / "after_stop.wav"
    shutil.copyfile(web_voice.clip, server.short_clip)
    yield server
    server.demo.close()


def _until(page, script: str, arg=None, limit_ms: int = GUARD_MS) -> None:
    waited = 0
    while not page.evaluate(script, arg):
        if waited > limit_ms:
            raise AssertionError(f"page never satisfied: {script}; log: {_log(page)!r}; progress: "
                                 f"{page.locator('#job-progress').inner_text()!r}; toasts: "
                                 f"{page.locator('.toast-body').all_inner_texts()!r}")
        page.wait_for_timeout(200)
        waited += 200


def _log(page) -> str:
    return page.input_value("#log-panel textarea")


def _pick(page, elem_id: str, option_text: str) -> None:
    page.click(f"#{elem_id} input")
    page.locator("ul[role=listbox] li", has_text=option_text).first.click()


def _in_viewport(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    view = page.viewport_size
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= view["height"] \
        and box["x"] + box["width"] <= view["width"]


def _upload(page, path: Path) -> None:
    page.set_input_files("#input-audio input[type=file]", str(path))
    page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)


def _choose_demo_voice(page) -> None:
    _pick(page, "model-picker", "demo-voice")
    _until(page, "() => document.querySelector('#speaker-picker input').value === 'alto'")


@pytest.mark.parametrize("width,height", LAPTOPS)
def test_first_screen_has_voice_clip_and_convert_and_shows_progress_and_log(chromium, page_server, width, height):
    page = open_page(chromium, page_server, width, height)
    try:
        for selector in ("#model-picker", "#speaker-picker", "#input-audio", "#example-chips", "#transpose",
                         "#convert-button", "#job-progress"):
            assert _in_viewport(page, selector), f"{selector} is not in the first {width}x{height} screen"
        _choose_demo_voice(page)
        page.get_by_role("button", name=CHIP_TITLE).click()
        page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
        page.click("#convert-button")
        _until(page, "() => document.querySelector('#log-panel textarea').value.includes('converting')")
        assert page.evaluate("() => window.scrollY") == 0
        for selector in ("#job-progress", "#log-panel"):  # (Stop may be gone already: the clip is short)
            assert _in_viewport(page, selector), f"{selector} is not visible after Convert at {width}x{height}"
        # one progress display: ours; Gradio's overlay stays hidden on every output while the job runs
        trackers = page.locator("#result-column [data-testid='status-tracker']")
        assert all("hide" in (trackers.nth(i).get_attribute("class") or "") for i in range(trackers.count()))
        _until(page, "() => document.querySelector('#log-panel textarea').value.includes('done:')")
        _until(page, "() => document.querySelector('#job-progress [data-state=\"done\"]') !== null")
        assert _in_viewport(page, "#output-audio")
        _until(page, STOP_HIDDEN)  # idle again once the event has finished
    finally:
        page.close()


def test_stop_cancels_the_conversion_and_the_next_one_works(chromium, page_server):
    page = open_page(chromium, page_server)
    try:
        _choose_demo_voice(page)
        _upload(page, page_server.long_clip)
        page.click("#convert-button")
        _until(page, "() => document.querySelector('#log-panel textarea').value.includes('piece 1/')")
        page.click("#stop-button")
        _until(page, "() => document.querySelector('#job-progress [data-state=\"stopped\"]') !== null")
        assert "Stopped" in page.locator("#job-progress").inner_text()
        assert "stopped: you pressed Stop" in _log(page) and "done:" not in _log(page)
        _until(page, STOP_HIDDEN)
        assert page.locator("#convert-button").is_visible()

        page.locator("#input-audio button[aria-label='Clear']").first.click()
        _upload(page, page_server.short_clip)
        page.click("#convert-button")
        _until(page, "() => document.querySelector('#log-panel textarea').value.includes('done:')")
        assert "reading after_stop.wav" in _log(page)
        _until(page, "() => document.querySelector('#job-progress [data-state=\"done\"]') !== null")
    finally:
        page.close()


def test_example_chip_applies_its_transpose_and_speaker(chromium, page_server):
    page = open_page(chromium, page_server)
    try:
        _choose_demo_voice(page)
        page.get_by_role("button", name=f"{CHIP_TITLE} · +{CHIP_TRANSPOSE} st").click()
        page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
        _until(page, "(n) => document.querySelector('#transpose input[type=number]').value === String(n)",
               CHIP_TRANSPOSE)
        assert page.locator("#speaker-picker input").input_value() == CHIP_SPEAKER
    finally:
        page.close()


def test_controls_follow_the_voice(chromium, page_server):
    page = open_page(chromium, page_server)
    try:
        assert page.locator("#model-picker input").input_value().startswith("starter")  # the WORLD voice
        page.get_by_text("More settings").click()
        page.wait_for_selector("#slice-db", state="visible", timeout=GUARD_MS)
        assert "WORLD voice" in page.locator("#voice-note").inner_text()
        for hidden in ("#noise-scale", "#auto-f0", "#backend-picker", "#precision-picker", "#cluster-ratio"):
            assert not page.locator(hidden).is_visible(), hidden
        assert page.locator("#speaker-picker input").input_value() == STARTER_FIRST_SPEAKER  # its manifest's name

        _choose_demo_voice(page)
        page.wait_for_selector("#noise-scale", state="visible", timeout=GUARD_MS)
        for shown in ("#auto-f0", "#backend-picker"):  # updates land one by one: wait for each (busy machines)
            page.wait_for_selector(shown, state="visible", timeout=GUARD_MS)
        assert not page.locator("#cluster-ratio").is_visible()  # demo-voice has no kmeans / index file
        page.locator("#backend-picker").get_by_text("Fast (ONNX Runtime", exact=False).click()
        page.wait_for_selector("#auto-f0", state="hidden", timeout=GUARD_MS)  # upstream's ONNX export has none
        page.click("#precision-picker input")
        options = page.locator("ul[role=listbox] li").all_inner_texts()
        assert any("int8" in o for o in options) and not any("bf16" in o for o in options)
    finally:
        page.close()


def test_a_failed_voice_upload_leaves_its_message_in_the_page(chromium, page_server, tmp_path):
    page = open_page(chromium, page_server)
    try:
        broken = tmp_path / "G_100.pth"
        broken.write_bytes(b"this is no checkpoint")
        config = tmp_path / "config.json"
        config.write_text("{}")
        page.get_by_text("Upload a voice").click()
        page.set_input_files("#model-upload input[type=file]", [str(broken), str(config)])
        _until(page, "() => document.querySelector('#model-upload').innerText.includes('G_100')")
        page.click("#load-upload")
        status = page.locator("#upload-status")
        _until(page, "() => document.querySelector('#upload-status').innerText.includes('Could not load')")
        page.locator(".toast-body", has_text="Could not load this voice").wait_for(timeout=GUARD_MS)
        page.locator(".toast-body").first.wait_for(state="detached", timeout=GUARD_MS)  # the toast fades...
        text = status.inner_text()  # ...the message stays
        assert "Could not load this voice" in text and "/tmp/" not in text and "Traceback" not in text
        assert page.locator("[data-testid='status-tracker'].error").count() == 0  # no bare red "Error" pills
    finally:
        page.close()
