"""An uploaded voice across a server restart, in a real headless Chromium (Debian's /usr/bin/chromium + Playwright):
upload through the page, restart the server on the same work folder and port, reload, the voice is offered again
(this browser's token survived in localStorage and the restarted server can read it) and converts; a browser
without the token is not offered it."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from app_process import free_port
from browser_support import CHROMIUM, CHROMIUM_ARGS, GUARD_MS

OPEN_RETRY_MS = 10_000  # the picker's list is asked for again after this long without it (a busy machine)



def _serve(voice, work: Path, port: int):
    """A server as public links run it (each browser sees its own uploads), on a given port: localStorage belongs
    to the origin, so the restarted server must come back on the same one."""
    from svc_core.ui.server import build_app, launch_kwargs
    from svc_core.ui.settings import AppSettings

    settings = AppSettings(port=port, models_dir=voice.models_dir, examples_dir=voice.examples_dir, work_dir=work,
                           shipped_voices=(), quiet=True, show_all_uploads=False).resolve()
    demo, state = build_app(settings)
    _, url, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings, state))
    return SimpleNamespace(url=url.rstrip("/") + "/", demo=demo, state=state)


def _stop(server) -> None:
    server.demo.close()
    server.state.close()


def _offered(page, pick: str | None = None) -> list[str]:
    """The voice picker's labels (the list opened once); then `pick` is chosen, else the list is closed."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    options = page.locator("ul[role=listbox] li")
    for _ in range(GUARD_MS // OPEN_RETRY_MS):  # a click before the dropdown is live opens nothing: click again
        page.click("#model-picker input")
        try:
            options.first.wait_for(timeout=OPEN_RETRY_MS)
            break
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    options.first.wait_for(timeout=GUARD_MS)
    labels = [text.split("\n")[-1].strip() for text in options.all_inner_texts()]  # "✓\nlabel": selected
    if pick is None or pick not in labels:
        page.keyboard.press("Escape")
    else:
        options.filter(has_text=pick).click()
    return labels


def test_an_uploaded_voice_is_offered_again_after_a_restart(web_voice, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from audio_factories import sung_phrase

    examples = tmp_path / "examples"  # a clip of its own: closing a server deletes the files Gradio kept
    examples.mkdir()
    sf.write(examples / "persist.wav", 0.8 * sung_phrase(2.0, gap_every=1.0, gap=0.6), 44100, subtype="PCM_16")
    voice = dataclasses.replace(web_voice, examples_dir=examples)
    upload = tmp_path / "upload"
    upload.mkdir()
    shutil.copyfile(web_voice.models_dir / "demo-voice" / "G_0.pth", upload / "G_800.pth")
    shutil.copyfile(web_voice.models_dir / "demo-voice" / "config.json", upload / "config.json")
    work, port = tmp_path / "work", free_port()

    server = _serve(voice, work, port)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.goto(server.url)
            page.wait_for_selector("#convert-button", timeout=GUARD_MS)
            page.get_by_text("Upload a voice").click()
            page.set_input_files("#model-upload input[type=file]", [str(upload / "G_800.pth"),
                                                                     str(upload / "config.json")])
            page.get_by_role("button", name="Load uploaded voice").click()
            page.wait_for_function("() => document.querySelector('#model-picker input').value.includes('uploaded')",
                                   timeout=GUARD_MS)
            label = page.locator("#model-picker input").input_value()
            assert label.startswith("alto, tenor +1 (uploaded ") and label.endswith(", step 800)")
            _stop(server)

            server = _serve(voice, work, port)  # restarted on the same folder and port
            page.goto(server.url)
            page.wait_for_selector("#convert-button", timeout=GUARD_MS)
            page.wait_for_timeout(500)  # the page-load event refreshes the picker
            assert label in _offered(page, pick=label)
            page.wait_for_function("(label) => document.querySelector('#model-picker input').value === label",
                                   arg=label, timeout=GUARD_MS)
            page.get_by_text("persist.wav", exact=True).click()
            page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)
            page.click("#convert-button")
            page.wait_for_function("() => ['done:', 'error:'].some((t) => "
                                   "document.querySelector('#log-panel textarea').value.includes(t))",
                                   timeout=GUARD_MS)
            assert "done:" in page.input_value("#log-panel textarea")

            stranger = browser.new_context().new_page()  # no token in its localStorage
            stranger.goto(server.url)
            stranger.wait_for_selector("#convert-button", timeout=GUARD_MS)
            stranger.wait_for_timeout(500)
            assert label not in _offered(stranger) and "demo-voice" in " ".join(_offered(stranger))
        finally:
            browser.close()
            _stop(server)
