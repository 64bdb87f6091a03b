"""Song covers: separate the vocals, convert them with a voice, key-shift, remix with loudness matching, export
stems. `run_cover(CoverRequest(...), out_dir)`; the CLI is `python -m svc_core cover` (svc_core.cover_cli)."""
from .pipeline import load_voice, run_cover
from .request import AUTO, CoverRequest
from .result import STAGES, STEM_NAMES, CoverResult, KeySuggestion

__all__ = ["AUTO", "CoverRequest", "CoverResult", "KeySuggestion", "STAGES", "STEM_NAMES", "load_voice",
           "run_cover"]
