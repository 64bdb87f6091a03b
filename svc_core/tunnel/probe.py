"""Bounded checks that a URL answers (standard library only, no proxies: the tunnel checks are direct)."""
from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status_of(url: str, timeout: float = 5.0) -> int | None:
    """The HTTP status a GET of `url` gets, or None when nothing answers."""
    try:
        with _OPENER.open(urllib.request.Request(url, method="GET"), timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def wait_for(url: str, seconds: float, stop: threading.Event | None = None, public: bool = False,
             interval: float = 0.5) -> bool:
    """True once `url` answers within `seconds` (public: only 2xx/3xx count, since a tunnel server answers
    404/502 for a proxy that is not connected; local: any HTTP answer counts). False on timeout or `stop`."""
    deadline = time.monotonic() + seconds
    while True:
        status = status_of(url, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
        if status is not None and (not public or 200 <= status < 400):
            return True
        if time.monotonic() >= deadline or (stop is not None and stop.wait(interval)):
            return False
        if stop is None:
            time.sleep(interval)
