"""A zip-bomb voice uploaded through the page (real server, real Chromium): the person sees why it was refused,
the server's memory hardly moves, and the next conversion works."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from browser_support import CHROMIUM, CHROMIUM_ARGS, GUARD_MS

MAX_GROWTH_BYTES = 200 * 1000 * 1000


def _status(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed")
def test_zip_bomb_upload_is_refused_with_its_reason_and_the_server_keeps_serving(server, client, web_voice,
                                                                                 tmp_path):
    from gradio_client import handle_file
    from playwright.sync_api import sync_playwright

    from safety import bombs

    bomb = bombs.torch_with_pickle(tmp_path / "G_1000.pth", inflates_to=4 * bombs.GiB)
    config = web_voice.models_dir / "demo-voice" / "config.json"
    uploads = server.state.work_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.is_dir() else set()
    with open("/proc/self/clear_refs", "w") as fh:  # the server runs in this process: reset its peak RSS
        fh.write("5")
    rss = _status("VmRSS")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        page.wait_for_selector("#convert-button", timeout=GUARD_MS)
        if not page.locator("#model-upload").is_visible():
            page.get_by_text("Upload a voice", exact=False).first.click()  # open the upload section
        page.locator("#model-upload input[type=file]").set_input_files([str(bomb), str(config)])
        page.get_by_role("button", name="Load uploaded voice").click()
        start = time.perf_counter()
        toast = page.locator(".toast-body", has_text="zip bomb")
        toast.wait_for(timeout=GUARD_MS)
        print(f"refusal shown after {time.perf_counter() - start:.2f} s: {toast.inner_text()!r}")
        message = toast.inner_text()
        browser.close()
    growth = _status("VmHWM") - rss
    print(f"server peak RSS growth {growth / 1e6:.1f} MB")
    assert "'G_1000.pth' would unpack to 4.0 GiB (limit 3 GiB" in message and "Traceback" not in message
    assert growth < MAX_GROWTH_BYTES
    assert (set(uploads.iterdir()) if uploads.is_dir() else set()) == before  # nothing kept
    audio, log, *_ = client.predict(audio=handle_file(str(web_voice.clip)), model="demo-voice", speaker="alto",
                                    transpose=0, f0_predictor="pm", api_name="/convert")  # the server keeps serving
    assert Path(audio).is_file() and "done:" in log
