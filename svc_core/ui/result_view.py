"""The result column: converted audio, log, summary, F0 plot and per-stage timing, and how a `JobUpdate` fills it.

The convert event's outputs (and so the API's return values) are, in order: audio, log, timing table, F0 plot
data, timing summary, progress html (`OUTPUT_ORDER`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from . import views  # noqa: E402
from .jobs import JobUpdate  # noqa: E402
from .plots import COLOR_MAP, COLUMNS  # noqa: E402

OUTPUT_ORDER = ("audio", "log", "timing", "plot", "summary", "progress")
PLOT_HEIGHT_PX = 240


@dataclass
class ResultView:
    audio: gr.Audio
    log: gr.Textbox
    summary: gr.Markdown
    plot: gr.LinePlot
    timing: gr.Dataframe

    def outputs(self, progress: gr.HTML) -> list[Any]:
        """The convert event's outputs in OUTPUT_ORDER."""
        return [self.audio, self.log, self.timing, self.plot, self.summary, progress]


def build_result_view() -> ResultView:
    """Widgets of the result column (call inside a Column)."""
    audio = gr.Audio(label="Converted", type="filepath", interactive=False, buttons=["download"],
                     elem_id="output-audio")
    log = gr.Textbox(label="Log", lines=7, max_lines=7, interactive=False, autoscroll=True, elem_id="log-panel")
    summary = gr.Markdown("", elem_id="timing-summary")
    plot = gr.LinePlot(None, x=COLUMNS[0], y=COLUMNS[1], color=COLUMNS[2], color_map=COLOR_MAP,
                       label="Pitch: your clip after transpose (blue) vs the result (orange, dashed)",
                       x_title="time (s)", y_title="pitch (Hz)", color_title="", tooltip="all",
                       height=PLOT_HEIGHT_PX, elem_id="f0-plot")
    with gr.Accordion("Time per stage", open=False):
        timing = gr.Dataframe(views.empty_timing(), label="Per-stage timing", show_label=False, interactive=False,
                              elem_id="timing-table")
    return ResultView(audio, log, summary, plot, timing)


def render(update: JobUpdate, clear: bool) -> tuple[Any, ...]:
    """One JobUpdate -> values in OUTPUT_ORDER (clear: the first update of a job empties the last result)."""
    import torch

    if update.result is not None:
        r = update.result
        return (str(r.output_path), update.log, views.timing_frame(r.times, r.load_seconds), r.f0_plot,
                views.summary(r.times, r.f0_name, r.encoder, torch.get_num_threads(), r.backend),
                views.progress_html(1.0, "done", update.elapsed, None, state="done"))
    if update.error is not None:
        bar = views.progress_html(update.fraction, f"Failed: {update.error}", update.elapsed, None, state="failed")
    else:
        bar = views.progress_html(update.fraction, update.stage, update.elapsed, update.eta, state="running")
    if clear:
        return None, update.log, views.empty_timing(), None, "", bar
    return gr.skip(), update.log, gr.skip(), gr.skip(), gr.skip(), bar
