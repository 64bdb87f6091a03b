"""What every browser test launches: Debian's Chromium (never `playwright install`), headless, with every
background connection off (this machine has no internet; Chromium would otherwise try Google's hosts at start)."""
from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--disable-domain-reliability", "--no-pings"]
GUARD_MS = 180_000  # upper bound for browser waits (a hang guard, not a timing assertion)
