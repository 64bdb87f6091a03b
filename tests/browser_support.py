"""What every browser test launches: Debian's Chromium (never `playwright install`), headless, with every
background connection off (this machine has no internet; Chromium would otherwise try Google's hosts at start)."""
from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-domain-reliability", "--no-pings"]
GUARD_MS = 180_000  # upper bound for browser waits (a hang guard, not a timing assertion)


def until(page, script: str, arg=None, limit_ms: int = GUARD_MS) -> None:
    """Wait until the JavaScript `script` (called with `arg`) returns true in `page` (a hang guard, not a timing)."""
    page.wait_for_function(script, arg=arg, timeout=limit_ms, polling=200)


def pick_voice(page, key: str) -> None:
    """Choose the voice whose picker entry starts with `key (` and wait until the picker shows it."""
    page.click("#model-picker input")
    page.locator("ul[role=listbox] li", has_text=f"{key} (").first.click()
    until(page, "(k) => document.querySelector('#model-picker input').value.startsWith(k)", key)


def shown(page, selector: str) -> bool:
    return page.locator(selector).is_visible()


def open_page(chromium, server, width: int = 1400, height: int = 1000):
    """A new page on the demo at `server.url`, once its Convert button is there."""
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.goto(server.url)
    page.wait_for_selector("#convert-button", timeout=GUARD_MS)
    return page


def launched_chromium():
    """Debian's Chromium through Playwright, headless, as a generator for a pytest fixture (`yield from`); skips
    when it is not installed."""
    from pathlib import Path

    import pytest

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
