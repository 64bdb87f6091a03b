"""The tunnel line at the top of the page: state, public link, and the HTTPS note for the microphone.

`status_markdown` is pure; `build_tunnel_panel` (Gradio) is called by the web server inside its Blocks.
"""
from __future__ import annotations

import html
from typing import Callable

from .supervisor import TunnelStatus, TunnelSupervisor

MIC_NOTE = ("Microphone recording works only on an https:// link (or on this machine at 127.0.0.1): browsers "
            "block the microphone on plain http pages. Uploading files works everywhere.")
_ICONS = {"up": "🟢", "connecting": "🟡", "waiting-for-app": "🟡", "starting": "🟡", "reconnecting": "🟠",
          "failed": "🔴", "stopped": "⚪"}


def status_markdown(status: TunnelStatus | None, exposed_host: str = "") -> str:
    """One or two short lines for the page (status None: no tunnel, `exposed_host`: listening beyond loopback)."""
    if status is None:
        return f"Served on **{html.escape(exposed_host)}**. {MIC_NOTE}" if exposed_host else ""
    url = status.public_url
    link = f"[{url}]({url})" if url else "(no public URL set)"
    checked = " (answers)" if status.verified else ""
    line = (f"{_ICONS.get(status.state, '')} Public link via **{status.kind}**: {link}{checked} · state "
            f"**{status.state}**")
    if status.restarts:
        line += f" · restarts: {status.restarts}"
    if status.message:
        line += f"  \n{html.escape(status.message)}"
    if not url.startswith("https://"):
        line += f"  \n{MIC_NOTE}"
    return line


def build_tunnel_panel(source: Callable[[], TunnelStatus | None], exposed_host: str = "",
                       every: float = 5.0) -> None:
    """A Markdown line refreshed every `every` seconds (a private, unqueued event: no API endpoint)."""
    import gradio as gr

    def current() -> str:
        return status_markdown(source(), exposed_host)

    panel = gr.Markdown(current(), elem_id="tunnel-status", elem_classes=["svc-note"])
    if source() is not None:
        timer = gr.Timer(every)
        timer.tick(current, outputs=panel, queue=False, api_visibility="private", show_progress="hidden")


def supervisor_for_app(settings) -> "TunnelSupervisor | None":
    """The (not yet started) supervisor for `app.py --tunnel KIND` (settings: AppSettings), or None.

    Tunnel details come from the environment (svc_core/tunnel/settings.py); a bad value raises SettingsError so
    app.py prints one sentence and exits."""
    if not settings.tunnel:
        return None
    from ..ui.settings import SettingsError
    from .settings import TunnelError, settings_from_env
    from .supervisor import TunnelSupervisor

    path = settings.root_path.rstrip("/") + "/" if settings.root_path.startswith("/") else "/"
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    try:
        return TunnelSupervisor(settings_from_env(settings.tunnel, local_host=host, local_port=settings.port,
                                                  local_path=path))
    except TunnelError as err:
        raise SettingsError(str(err)) from None


def build_app_panel(settings, supervisor: "TunnelSupervisor | None") -> None:
    """The panel for the web server: shown with a tunnel, or when listening beyond loopback."""
    exposed = "" if settings.host in ("127.0.0.1", "localhost", "::1") else settings.host
    if supervisor is not None or exposed:
        build_tunnel_panel(supervisor.status if supervisor is not None else (lambda: None), exposed)
