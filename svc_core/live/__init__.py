"""Real-time (live) conversion: `LiveSession` over the offline pipeline's seams, its settings and SOLA splicing.

Transports: the browser's Live page (svc_core.live.web) and local sound devices (svc_core.live.devices).
"""
from .session import LiveOutput, LiveSession, LiveState, level_db
from .settings import DEFAULT_IO_RATE, LiveSettings
from .sola import crossfade, fade_windows, sola_offset

__all__ = ["DEFAULT_IO_RATE", "LiveOutput", "LiveSession", "LiveSettings", "LiveState", "crossfade", "fade_windows",
           "level_db", "sola_offset"]
