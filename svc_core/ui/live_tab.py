"""The Live tab: the live voice changer page (/live, svc_core.live.web) inside the Gradio page.

The page runs in an iframe (allow="microphone") so its audio graph, WebSocket and scripts stay its own; a link
opens it alone (a full window, or a phone). Its address is relative, so it works under --root-path and the public
link (https: the microphone needs a secure page).
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

LIVE_PATH = "live"  # relative to the Gradio page (root_path and the tunnel's prefix apply)
IFRAME_HEIGHT_PX = 900


@dataclass(frozen=True)
class LiveTabContext:
    max_sessions: int  # streams at once (0: the Live page refuses every stream)
    max_minutes: float  # one stream's length limit (0: none)


def build_live_tab(ctx: LiveTabContext) -> None:
    """The tab's content: a short note with the limits, a link to the page alone, and the page itself."""
    limits = (f"at most {ctx.max_sessions} stream(s) at once on this server"
              + (f", {ctx.max_minutes:g} min each" if ctx.max_minutes else "")) if ctx.max_sessions else (
        "live streams are switched off on this server (--max-live-sessions 0)")
    gr.Markdown(f"Real-time voice changer: your microphone, converted while you sing ({limits}). Use headphones. "
                f"<a href=\"{LIVE_PATH}\" target=\"_blank\" rel=\"noopener\">Open it in its own window</a>.",
                elem_classes=["svc-note"])
    gr.HTML(f'<iframe id="live-frame" src="{LIVE_PATH}" allow="microphone; autoplay" title="Live voice changer" '
            f'style="width:100%;height:{IFRAME_HEIGHT_PX}px;border:0"></iframe>', elem_id="live-tab")
