"""The page's jobs in a real headless Chromium: "Run in background" on the Convert tab queues a job in the server's
job service (svc_core.jobs), the page is closed, and a new page (a reconnect) finds the job in the Jobs tab with
its result; the same job is visible through the REST API with the same (open, local) caller."""
from __future__ import annotations

import re
import shutil

import pytest

from browser_support import GUARD_MS, launched_chromium, open_page, until


@pytest.fixture(scope="module")
def chromium():
    yield from launched_chromium()


def test_a_background_job_survives_closing_the_page(chromium, make_server, web_voice, tmp_path):
    import httpx
    import soundfile as sf

    server = make_server(web_voice, tmp_path / "work", concurrency=1)
    try:
        page = open_page(chromium, server)
        clip = tmp_path / "background_clip.wav"
        shutil.copyfile(web_voice.clip, clip)
        page.set_input_files("#input-audio input[type=file]", str(clip))
        page.wait_for_selector("#input-audio audio, #input-audio canvas", state="attached", timeout=GUARD_MS)
        page.click("#background-button")
        until(page, "() => document.querySelector('#background-note').innerText.includes('queued')")
        short = re.search(r"Job (\w{8}) queued", page.locator("#background-note").inner_text()).group(1)
        page.close()  # the page goes away; the job does not

        record = server.state.job_setup.service.wait(
            next(r.id for r in server.state.job_setup.service.list("local") if r.id.startswith(short)), 300)
        assert record.status == "done", record.error

        again = open_page(chromium, server)  # a reconnect: a new page, nothing carried over in the browser
        again.get_by_role("tab", name="Jobs").click()
        until(again, "(s) => document.querySelector('#jobs-table').innerText.includes(s)", short)
        until(again, "() => document.querySelector('#jobs-details').innerText.includes('done')")
        again.locator("#jobs-audio audio, #jobs-audio a[download]").first.wait_for(state="attached",
                                                                                  timeout=GUARD_MS)
        assert "done" in again.locator("#jobs-table").inner_text()

        # the same job through the REST API (an open local caller is "local", as the page without --auth)
        api = httpx.get(f"{server.url}api/v1/jobs/{record.id}", timeout=30)
        assert api.status_code == 200 and api.json()["status"] == "done"
        name = api.json()["results"][0]["name"]
        audio = httpx.get(f"{server.url}api/v1/jobs/{record.id}/results/{name}", timeout=30)
        out = tmp_path / name
        out.write_bytes(audio.content)
        data, rate = sf.read(out)
        assert abs(len(data) / rate - sf.info(web_voice.clip).duration) < 0.1
    finally:
        server.demo.close()
        server.state.close()
