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
