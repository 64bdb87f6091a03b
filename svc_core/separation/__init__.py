"""Separating a song into vocals and accompaniment: one `Separator` interface, many backends (registry.py)."""
from .base import ACCOMPANIMENT, SEPARATION_SAMPLE_RATE, VOCALS, Separator, Stems, song_channels
from .registry import DEFAULT_SEPARATOR, get_separator, list_separators, separator_entry, separator_status

__all__ = ["ACCOMPANIMENT", "DEFAULT_SEPARATOR", "SEPARATION_SAMPLE_RATE", "Separator", "Stems", "VOCALS",
           "get_separator", "list_separators", "separator_entry", "separator_status", "song_channels"]
