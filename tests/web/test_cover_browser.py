"""The Cover tab in a real headless Chromium on a real server: upload a short song, pick the HPSS separator and the
starter voice, make the cover, and see the four stem players, the downloads and the summary."""
from __future__ import annotations

import pytest

from browser_support import GUARD_MS, open_page, until
from web.cover_songs import write_song


# ~11 s per cover test here (2 cores, load 5-7) plus ~14 s to start the server: not marked slow
STEM_PLAYERS = ("#cover-original-vocals", "#cover-converted-vocals", "#cover-accompaniment", "#cover-mix")


@pytest.fixture(scope="module")
def cover_page_server(web_voice, make_server, tmp_path_factory):
    from svc_core.ui.settings import STARTER_VOICES

    root = tmp_path_factory.mktemp("cover-browser")
    (root / "examples").mkdir()
    srv = make_server(web_voice, root / "work", shipped_voices=(STARTER_VOICES,), examples_dir=root / "examples",
                      separation_dir=root / "separation_models", concurrency=1, queue_size=4)
    srv.song = write_song(root / "songs" / "browser_song.wav", seconds=2.0, seed=9)
    yield srv
    srv.demo.close()


def open_cover_tab(chromium, server, width: int = 1400, height: int = 1000):
    """A page on the Cover tab, its voice controls set for the first voice (the starter voice)."""
    page = open_page(chromium, server, width, height)
    page.get_by_role("tab", name="Cover").click()
    page.wait_for_selector("#cover-button", timeout=GUARD_MS)
    until(page, "() => document.querySelector('#cover-voice input').value.startsWith('starter')")
    return page


def pick(page, elem_id: str, option_text: str) -> None:
    page.click(f"#{elem_id} input")
    page.locator("ul[role=listbox] li", has_text=option_text).first.click()


def test_a_cover_from_the_page_shows_a_player_for_each_stem(chromium, cover_page_server):
    page = open_cover_tab(chromium, cover_page_server)
    try:
        page.set_input_files("#cover-song input[type=file]", str(cover_page_server.song))
        page.wait_for_selector("#cover-song audio", state="attached", timeout=GUARD_MS)
        pick(page, "cover-separator", "HPSS")
        until(page, "() => document.querySelector('#cover-separator input').value.startsWith('HPSS')")
        pick(page, "cover-f0", "pm:")
        page.click("#cover-button")
        until(page, "() => !!document.querySelector('#cover-progress [data-state=\"done\"], "
                    "#cover-progress [data-state=\"failed\"]')")
        assert page.locator("#cover-progress [data-state='done']").count() == 1, page.input_value(
            "#cover-log textarea")
        for player in STEM_PLAYERS:  # each player has its stem, with a download link
            page.locator(f"{player} a[data-testid='download-link']").wait_for(timeout=GUARD_MS)
            until(page, "(p) => (document.querySelector(p + ' #duration') || {}).textContent === '0:02'", player)
        links = "() => [...document.querySelectorAll('#cover-files a[download]')].map(a => a.getAttribute('download'))"
        until(page, f"() => ({links})().includes('browser_song_cover.zip')")
        files = page.evaluate(links)
        for stem in ("original_vocals", "converted_vocals", "accompaniment", "mix"):
            assert f"browser_song_{stem}.wav" in files  # a download link per stem file
        until(page, "() => document.querySelector('#cover-summary-text').innerText.includes('suggested')")
        assert "LUFS" in page.locator("#cover-summary-text").inner_text()
        assert "stage export" in page.input_value("#cover-log textarea")
    finally:
        page.close()


def test_the_key_switch_shows_the_transpose_slider(chromium, cover_page_server):
    page = open_cover_tab(chromium, cover_page_server)
    try:
        assert not page.locator("#cover-transpose").is_visible()
        page.locator("#cover-key").get_by_text("Manual", exact=True).click()
        page.locator("#cover-transpose").wait_for(state="visible", timeout=GUARD_MS)
        page.locator("#cover-key").get_by_text("Auto", exact=True).click()
        page.locator("#cover-transpose").wait_for(state="hidden", timeout=GUARD_MS)
    finally:
        page.close()


def test_stop_cancels_a_running_cover_and_frees_the_slot(chromium, cover_page_server):
    import time

    long_song = write_song(cover_page_server.song.parent / "long_song.wav", seconds=40.0, seed=10)
    page = open_cover_tab(chromium, cover_page_server)
    try:
        page.set_input_files("#cover-song input[type=file]", str(long_song))
        page.wait_for_selector("#cover-song audio", state="attached", timeout=GUARD_MS)
        page.click("#cover-button")
        until(page, "() => document.querySelector('#cover-log textarea').value.includes('stage separate')")
        page.click("#cover-stop")
        until(page, "() => !!document.querySelector('#cover-progress [data-state=\"stopped\"]')")
        assert "stopped: you pressed Stop" in page.input_value("#cover-log textarea")
        slots = cover_page_server.state.jobs.slots
        end = time.monotonic() + GUARD_MS / 1000  # a hang guard, not a timing
        while slots.running or slots.waiting:
            assert time.monotonic() < end, "the stopped cover kept its slot"
            time.sleep(0.05)
        assert not list(cover_page_server.state.jobs.results_dir.rglob("long_song_mix.wav"))
        until(page, "() => { const b = document.querySelector('#cover-stop'); return !b || b.offsetParent === null; }")
    finally:
        page.close()
