"""Environment switches that keep Gradio and huggingface_hub from contacting anything outside this machine.

Call `apply()` before the first `import gradio`: Gradio reads GRADIO_ANALYTICS_ENABLED when a Blocks is made and
would otherwise start a version check (api.gradio.app) and telemetry (huggingface.co) in background threads.
"""
from __future__ import annotations

import os

OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",  # no telemetry, no pkg-version check
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_OFFLINE": "1",  # huggingface_hub never goes online (we load nothing from the Hub)
    "GRADIO_MCP_SERVER": "False",
    "GRADIO_SSR_MODE": "False",  # no Node server
    "GRADIO_RUN_HISTORY": "False",
    "GRADIO_SHARE": "False",  # never open a public tunnel
    "DO_NOT_TRACK": "1",
}


def apply() -> None:
    """Set the switches (values already set to the same meaning are left alone; share is always off)."""
    for key, value in OFFLINE_ENV.items():
        if key in ("GRADIO_ANALYTICS_ENABLED", "GRADIO_SHARE", "HF_HUB_DISABLE_TELEMETRY"):
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)


URL_REFUSAL = ("This server does not fetch audio from URLs: upload or record the file instead (a public link must "
               "not make the server reach out to other machines).")


def refuse_url_inputs() -> None:
    """Make Gradio refuse file inputs given as http(s) URLs instead of downloading them.

    The page always uploads files; only API callers can pass a URL, which Gradio would fetch server-side. Its SSRF
    guard blocks private addresses but then asks dns.google about the hostname, and public URLs are fetched: both are
    outbound connections this server promises not to make. Call after `import gradio`."""
    import gradio
    from gradio import processing_utils

    async def refuse_async(url: str, cache_dir: str) -> str:
        raise gradio.Error(URL_REFUSAL)

    def refuse(url: str, cache_dir: str) -> str:
        raise gradio.Error(URL_REFUSAL)

    processing_utils.async_ssrf_protected_download = refuse_async
    processing_utils.ssrf_protected_download = refuse
    processing_utils.save_url_to_cache = refuse
