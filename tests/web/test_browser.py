"""The page in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright), on a real server.

Flow: load the page, pick the example clip, convert, see the output audio, log lines, timing table and F0 plot;
save a screenshot of the first screen (docs/screenshot.png with SVC_UPDATE_SCREENSHOT=1; the committed picture was
taken on the starter voice instead, which sings rather than hisses). Then a bad upload shows the readable error and the next conversion still works. Every
request the browser makes must go to the test server on 127.0.0.1.
"""
from __future__ import annotations

import shutil
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, GUARD_MS

REPO_ROOT = Path(__file__).resolve().parents[2]
# The README's picture is refreshed only on request (SVC_UPDATE_SCREENSHOT=1), so a test run leaves the tree clean.
README_SCREENSHOT = REPO_ROOT / "docs" / "screenshot.png"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    import soundfile as sf

    from audio_factories import sung_phrase

    # The page's microphone: Chromium's fake capture device plays this sung phrase (in a loop) when recording.
    mic = tmp_path_factory.mktemp("microphone") / "sung.wav"
    sf.write(mic, 0.8 * sung_phrase(2.0), 44100, subtype="PCM_16")
    fake_mic = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic}"]
    with sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM,
                                                       args=CHROMIUM_ARGS + fake_mic, headless=True,
                                                       viewport={"width": 1400, "height": 1000},
                                                       permissions=["microphone"])
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    requests: list[str] = []
    page = browser.new_page()
    page.on("request", lambda r: requests.append(r.url))
    page.goto(server.url)
    page.wait_for_selector("#convert-button", timeout=GUARD_MS)
    yield page
    page.close()
    server_netloc = urlsplit(server.url).netloc
    foreign = sorted({u for u in requests if urlsplit(u).scheme in ("http", "https", "ws", "wss")
                      and urlsplit(u).netloc != server_netloc})
    assert not foreign, f"the page contacted something besides the server: {foreign}"


def _until(page, script: str, arg=None, limit_ms: int = GUARD_MS) -> None:
    """Evaluate `script` (a JS function) every 200 ms until it returns something truthy (hang guard only)."""
    waited = 0
    while not page.evaluate(script, arg):
        if waited > limit_ms:
            raise AssertionError(f"page never satisfied: {script}; log: {_log(page)!r}")
        page.wait_for_timeout(200)
        waited += 200


def _log(page) -> str:
    return page.input_value("#log-panel textarea")


def _convert_and_wait(page, expect: str) -> None:
    """Convert and wait for `expect` in the log; an unexpected "error:" fails at once instead of at the guard."""
    before = _log(page)  # a previous job's log stays until the new job starts writing
    page.click("#convert-button")
    _until(page, "([text, before]) => { const log = document.querySelector('#log-panel textarea').value; "
                 "return log !== before && ['error:', text].some((t) => log.includes(t)); }", [expect, before])
    assert expect in _log(page), _log(page)


def test_example_convert_listen(page, web_voice, tmp_path):
    assert page.locator("#model-picker input").input_value().startswith("demo-voice")
    assert page.locator("#speaker-picker input").input_value() == "alto"
    page.get_by_text("sung_phrase.wav", exact=True).click()
    page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)

    page.click("#convert-button")
    _until(page, "() => document.querySelector('#log-panel textarea').value.includes('converting')")
    # the log stays visible while the job runs: no progress overlay on it
    assert page.locator("#log-panel").is_visible()
    tracker = page.locator("#log-panel [data-testid='status-tracker']")
    assert tracker.count() == 0 or "hide" in (tracker.first.get_attribute("class") or "")
    _until(page, "() => document.querySelector('#log-panel textarea').value.includes('done:')")

    log = _log(page)
    assert "reading sung_phrase.wav" in log and "piece 1/" in log and "synthesizer" in log
    link = page.locator("#output-audio a[data-testid='download-link']")
    link.wait_for(timeout=GUARD_MS)
    assert link.get_attribute("download") == "sung_phrase_demo-voice_alto_+0.wav"
    download = page.request.get(link.get_attribute("href"))
    assert download.ok and download.body()[:4] == b"RIFF"
    # the player loaded the result: its waveform shows the 2 s duration
    _until(page, "() => (document.querySelector('#output-audio #duration') || {}).textContent === '0:02'")
    assert page.locator("#job-progress .svc-progress[data-state='done']").count() == 1
    page.get_by_text("Time per stage").click()
    _until(page, "() => (document.querySelector('#timing-table') || {innerText: ''}).innerText"
                 ".includes('real-time factor')")  # the accordion renders the table when it opens
    assert "real-time factor" in page.locator("#timing-summary").inner_text()
    page.wait_for_selector("#f0-plot svg path, #f0-plot canvas", state="attached", timeout=GUARD_MS)
    page.wait_for_timeout(500)  # let the plot finish drawing before the picture
    shot = README_SCREENSHOT if os.environ.get("SVC_UPDATE_SCREENSHOT") else tmp_path / "screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot))  # the first screen (1400x1000), as a person sees it
    assert shot.stat().st_size > 10_000


def test_bad_upload_then_good(page, web_voice, tmp_path):
    fake = tmp_path / "broken.wav"
    fake.write_text("not audio at all\n" * 50)
    page.set_input_files("#input-audio input[type=file]", str(fake))
    page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
    _convert_and_wait(page, "error:")
    toast = page.locator(".toast-body").first
    toast.wait_for(timeout=GUARD_MS)
    message = toast.inner_text()
    assert "Could not read 'broken.wav'" in message
    assert "Traceback" not in message and "/tmp/" not in message
    # the message stays in the page under Convert (the toast fades), and the page is idle again: no Stop button
    _until(page, "() => document.querySelector('#job-progress [data-state=\"failed\"]') !== null")
    assert "Could not read 'broken.wav'" in page.locator("#job-progress").inner_text()
    _until(page, "() => !document.querySelector('#stop-button') || "
                 "document.querySelector('#stop-button').offsetParent === null")

    good = tmp_path / "good.wav"
    shutil.copyfile(web_voice.clip, good)
    page.locator("#input-audio button[aria-label='Clear']").first.click()
    page.set_input_files("#input-audio input[type=file]", str(good))
    page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)
    _convert_and_wait(page, "done:")
    assert "reading good.wav" in _log(page)


def test_record_with_the_microphone_then_convert(page):
    """The page's other input: a recording (Chromium's fake microphone plays a sung phrase) is converted like an
    upload; a silent or unreadable recording would stop at an error, not at "done:"."""
    import re

    page.click("#input-audio button[aria-label='Record audio']")
    page.get_by_role("button", name="Record", exact=True).click()
    page.wait_for_timeout(3000)  # record about 3 s (how long is not asserted)
    page.locator("#input-audio button", has_text="Stop").first.click()
    page.wait_for_selector("#input-audio audio", state="attached", timeout=GUARD_MS)
    _convert_and_wait(page, "done:")
    seconds = re.search(r"input: ([0-9.]+) s at (\d+) Hz", _log(page))
    assert seconds and float(seconds.group(1)) >= 1.0, _log(page)
    page.locator("#output-audio a[data-testid='download-link']").wait_for(timeout=GUARD_MS)


def test_backend_choice_shows_the_execution_provider(page, web_voice, tmp_path):
    clip = tmp_path / "onnx_clip.wav"
    shutil.copyfile(web_voice.clip, clip)
    page.set_input_files("#input-audio input[type=file]", str(clip))
    page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)
    page.get_by_text("More settings").click()
    page.locator("#backend-picker").get_by_text("ONNX Runtime", exact=False).click()
    _convert_and_wait(page, "done:")
    assert "backend: onnxruntime CPUExecutionProvider" in _log(page)
    # the summary is rendered with the result, which can reach the page just after the log's last line
    _until(page, "() => document.querySelector('#timing-summary').innerText.includes('Synthesizer backend')")
    assert "Synthesizer backend: onnxruntime CPUExecutionProvider" in page.locator("#timing-summary").inner_text()


def test_encoder_precision_picker(page, web_voice, tmp_path):
    """The page's encoder-precision dropdown lists what is fast here (in words, the name in brackets); picking bf16
    runs the encoder in bf16."""
    from svc_core.precision import available_precisions
    from svc_core.ui.views import PRECISION_LABELS

    offered = available_precisions("cpu")
    page.get_by_text("More settings").click()
    page.click("#encoder-precision-picker input")
    options = page.locator("ul[role=listbox] li")
    options.first.wait_for(timeout=GUARD_MS)
    assert [o.split("\n")[-1].strip() for o in options.all_inner_texts()] == [PRECISION_LABELS[v] for v in offered]
    if "bf16" not in offered:
        return
    options.filter(has_text="bf16").click()
    clip = tmp_path / "bf16_clip.wav"
    shutil.copyfile(web_voice.clip, clip)
    page.set_input_files("#input-audio input[type=file]", str(clip))
    page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)
    _convert_and_wait(page, "done:")
    assert "; encoder bf16" in _log(page)


def test_status_tab_shows_doctor(page):
    page.get_by_role("tab", name="About / Status").click()
    panel = page.locator("#status-panel")
    panel.wait_for(timeout=GUARD_MS)
    text = panel.inner_text()
    assert "torch" in text and "gradio" in text and "Threads" in text and "ffmpeg:" in text
    assert "vec256l9" in text and "fcpe" in text and "rmvpe.pt" in text  # rmvpe missing, with where to get it


def test_no_outbound_connections_from_the_server_process(outbound):
    assert outbound() == []
