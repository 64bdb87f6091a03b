"""The Cover tab's result column: a player per stem, the downloads, the summary (text and JSON), the log, and how a
`CoverUpdate` fills them.

The cover event's outputs (and so the API's return values) are, in order: original vocals, converted vocals,
accompaniment, mix (audio files), downloads (every stem file and the zip), summary (JSON), log, progress html
(`OUTPUT_ORDER`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from . import views  # noqa: E402
from ..cover.result import STEM_NAMES  # noqa: E402
from .cover_job import CoverOutcome, CoverUpdate  # noqa: E402

OUTPUT_ORDER = ("original_vocals", "converted_vocals", "accompaniment", "mix", "files", "summary", "log",
                "progress")
STEM_LABELS = {"original_vocals": "Original vocals (separated)", "converted_vocals": "Converted vocals",
               "accompaniment": "Accompaniment", "mix": "Cover (mix)"}
PLAYER_FORMATS = ("wav", "flac", "mp3")  # the first of these that was written is the one the players load
IDLE = "idle: pick a song, a separator and a voice, then press Make cover"


@dataclass
class CoverView:
    players: dict[str, gr.Audio]
    files: gr.File
    text: gr.Markdown
    summary: gr.JSON
    log: gr.Textbox

    def outputs(self, progress: gr.HTML) -> list[Any]:
        """The cover event's outputs in OUTPUT_ORDER (the summary text is set by a follow-up event)."""
        return [*(self.players[name] for name in STEM_NAMES), self.files, self.summary, self.log, progress]


def build_log() -> gr.Textbox:
    """The job's log (the tab puts it under the progress bar)."""
    return gr.Textbox(label="Log", lines=8, max_lines=8, interactive=False, autoscroll=True, elem_id="cover-log")


def build_cover_view(log: gr.Textbox) -> CoverView:
    """Widgets of the result column (call inside a Column); `log` is the tab's log box."""
    mix = gr.Audio(label=STEM_LABELS["mix"], type="filepath", interactive=False, buttons=["download"],
                   elem_id="cover-mix")
    players = {"mix": mix}
    text = gr.Markdown("", elem_id="cover-summary-text")
    for name in ("converted_vocals", "original_vocals", "accompaniment"):
        players[name] = gr.Audio(label=STEM_LABELS[name], type="filepath", interactive=False,
                                 buttons=["download"], elem_id=f"cover-{name.replace('_', '-')}")
    files = gr.File(label="Downloads (every stem, and the zip)", file_count="multiple", interactive=False,
                    elem_id="cover-files")
    with gr.Accordion("Summary (JSON)", open=False):
        summary = gr.JSON(None, label="Summary", show_label=False, elem_id="cover-summary")
    return CoverView(players, files, text, summary, log)


def player_file(by_format: dict[str, Path]) -> str | None:
    """The stem file a player loads: the first written of PLAYER_FORMATS."""
    for fmt in PLAYER_FORMATS:
        if fmt in by_format:
            return str(by_format[fmt])
    return str(next(iter(by_format.values()))) if by_format else None


def stems_of(result: Any) -> dict[str, dict[str, Path]]:
    """{stem: {format: path}} of a CoverResult."""
    stems = result.stems or {}
    return {name: {fmt: Path(p) for fmt, p in by_format.items()} for name, by_format in stems.items()}


def _number(value: Any, digits: int = 2) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return round(value, digits) if math.isfinite(value) else None


def summary_of(outcome: CoverOutcome) -> dict[str, Any]:
    """The JSON summary of a finished cover (what the API returns beside the files)."""
    r = outcome.result
    stems = stems_of(r)
    suggestion = getattr(r, "suggestion", None)
    return {
        "song_seconds": _number(outcome.song_seconds),
        "separator": outcome.separator,
        "voice": outcome.voice,
        "speaker": outcome.speaker,
        "transpose": _number(r.transpose),
        "suggested_transpose": None if suggestion is None else int(suggestion.semitones),
        "key_explanation": "" if suggestion is None else suggestion.explanation,
        "accompaniment_shift": _number(r.accompaniment_shift),
        "mix_lufs": _number(r.mix_lufs),
        "mix_peak_db": _number(r.mix_peak_db),
        "sample_rate": int(r.sample_rate),
        "stage_seconds": {k: _number(v, 3) for k, v in (r.stage_seconds or {}).items()},
        "seconds": _number(outcome.seconds),
        "threads": outcome.threads,
        "files": {name: {fmt: p.name for fmt, p in by_format.items()} for name, by_format in stems.items()},
        "zip": Path(r.zip_path).name if r.zip_path else None,
        "notes": [str(n) for n in (r.notes or [])],
    }


def summary_text(summary: dict[str, Any] | None) -> str:
    """A few lines for the page: length and time, the key used and suggested (and why), the mix's loudness."""
    if not summary:
        return ""
    lines = [f"**{summary['song_seconds']:.1f} s** of song covered in **{summary['seconds']:.1f} s** on "
             f"{summary.get('threads') or '?'} threads"
             + (f" ({', '.join(f'{k} {v:.1f} s' for k, v in summary['stage_seconds'].items() if v is not None)})"
                if summary.get("stage_seconds") else "") + "."]
    key = f"Key: **{summary['transpose']:+g} semitones**"
    if summary.get("suggested_transpose") is not None:
        key += f" (suggested: {summary['suggested_transpose']:+d})"
    if summary.get("accompaniment_shift"):
        key += f"; accompaniment shifted {summary['accompaniment_shift']:+g}"
    lines.append(key + ". " + (summary.get("key_explanation") or ""))
    if summary.get("mix_lufs") is not None:
        lines.append(f"Mix: **{summary['mix_lufs']:.1f} LUFS**, peak {summary['mix_peak_db']:.1f} dBFS.")
    lines += [f"Note: {n}" for n in summary.get("notes") or ()]
    return "\n\n".join(line.strip() for line in lines)


def render(update: CoverUpdate, clear: bool) -> tuple[Any, ...]:
    """One CoverUpdate -> values in OUTPUT_ORDER (clear: the first update of a job empties the last result)."""
    if update.outcome is not None:
        stems = stems_of(update.outcome.result)
        files = [str(p) for name in STEM_NAMES for p in stems.get(name, {}).values()]
        zip_path = update.outcome.result.zip_path
        if zip_path:
            files.append(str(zip_path))
        return (*(player_file(stems.get(name, {})) for name in STEM_NAMES), files, summary_of(update.outcome),
                update.log, views.progress_html(1.0, "done", update.elapsed, None, state="done"))
    if update.error is not None:
        bar = views.progress_html(update.fraction, f"Failed: {update.error}", update.elapsed, None, state="failed")
    else:
        bar = views.progress_html(update.fraction, update.stage, update.elapsed, update.eta, state="running")
    if clear:
        return None, None, None, None, None, None, update.log, bar
    return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip(), update.log, bar


def idle_progress() -> str:
    return views.progress_html(0.0, IDLE, 0.0, None, state="idle")
