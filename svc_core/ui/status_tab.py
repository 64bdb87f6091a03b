"""The About/Status tab: what `python -m svc_core doctor` prints, as tables (data from `doctor.collect()`)."""
from __future__ import annotations

from typing import Any

from . import offline

offline.apply()

import gradio as gr  # noqa: E402  (after offline.apply)

from .. import __version__
from ..doctor import describe_ffmpeg


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def status_markdown(info: dict[str, Any]) -> str:
    """Markdown for the panel: versions, threads, encoders (with missing files and where to get them), f0."""
    lines = [f"svc-studio {__version__} · Python {info['python']} on {_cell(info['platform'])}", "",
             "| package | version |", "|---|---|"]
    lines += [f"| {name} | {version or 'not installed'} |" for name, version in info["packages"].items()]
    lines.append(f"| torchaudio | {_cell(info['torchaudio'])} (not needed by svc_core) |")
    cuda = ", ".join(info["cuda_devices"]) if info["cuda"] else "not available"
    lines += ["", f"**Threads:** torch uses {info['torch_threads']} of {info['cpu_count']} CPUs · **CUDA:** {cuda}",
              "", f"**ffmpeg:** {_cell(describe_ffmpeg(info['ffmpeg']))}",
              "", f"**Weights folder:** `{_cell(info['pretrain_dir'])}` (set `SVC_PRETRAIN_DIR` to change)", "",
              "#### Content encoders", "", "| encoder | dim | status |", "|---|---|---|"]
    for row in info["encoders"]:
        state = (f"ready (`{_cell(row['found'])}`)" if row["usable"]
                 else f"missing `{_cell(row['file'])}`: {_cell(row['where_to_get'])}")
        lines.append(f"| {row['name']} | {row['dim']} | {state} |")
    lines += ["", "#### F0 predictors", "", "| predictor | status |", "|---|---|"]
    for row in info["f0_predictors"]:
        lines.append(f"| {row['name']} | {'ready' if row['usable'] else _cell(row['problem'])} |")
    return "\n".join(lines)


def _current() -> str:
    from ..doctor import collect

    return status_markdown(collect())


def build_status_tab() -> None:
    """Widgets of the About/Status tab (inside an open gr.Tab)."""
    gr.Markdown("Versions, threads, and which f0 predictors and content encoders can run on this server "
                "(the same as `python -m svc_core doctor`). Nothing is downloaded at run time: missing weight "
                "files say where people get them.")
    panel = gr.Markdown(_current(), elem_id="status-panel")
    refresh = gr.Button("Check again", size="sm")
    refresh.click(_current, outputs=panel, queue=False, api_visibility="private")
