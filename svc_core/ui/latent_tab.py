"""The "Latent map" tab: where a voice's content embeddings sit in 2-D (UMAP / PCA), with an input clip and its
conversion placed among the voice's training frames and cluster centres.

    with gr.Tab("Latent map", id="latent"):
        build_latent_tab(LatentTabContext(library, cache, work_dir / "latent"))

The scatter is a gr.HTML canvas with a little JavaScript (gr.ScatterPlot's select event gives an x-range, not a
point): hover shows a frame's clip, time, speaker, phone and pitch; a click sends the point's index as a select
event and the tab plays the second around that moment. Training frames come from the voice folder's `dataset/`
(<speaker>/<clip>.wav, preprocess caches reused), centres from its cluster / index file; the fitted reference map
is cached in `<work dir>/latent/cache` (plain arrays, no pickle).
"""
from __future__ import annotations

import functools
import logging
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import gradio as gr

from ..audio import load_audio
from ..errors import OptionError, SvcError
from ..latent.build import InputClip, MapRequest, build_map
from ..latent.collect import ConversionSpec, FrameLabeller
from ..latent.export import COLOR_KEYS, export_all
from ..latent.project import METHODS
from .latent_view import (MAX_INPUT_SECONDS, PLOT_SIZE, LatentTabState, check_input, moment_audio,
                          scatter_payload, shown_points)
from .models import ModelLibrary
from .voice_cache import VoiceCache

log = logging.getLogger(__name__)
DATASET_SUBDIR = "dataset"  # a voice folder's training clips, if it ships them (<voice>/dataset/<speaker>/*.wav)
CACHE_SUBDIR = "cache"
EXPORT_SUBDIR = "exports"
MAX_EXPORT_FILES = 60  # export files kept (20 exports of csv + npz + png); older ones are removed

CANVAS_HTML = (f'<div class="latent-map"><div class="latent-title"></div><canvas width="{PLOT_SIZE[0]}" '
               f'height="{PLOT_SIZE[1]}" style="max-width:100%;cursor:crosshair"></canvas>'
               '<div class="latent-tip" style="min-height:1.4em;font-size:0.85em"></div>'
               '<div class="latent-legend" style="font-size:0.8em"></div></div>')

# Draws props.value (scatter_payload's JSON) on the canvas; hover -> tooltip; click -> select event {index, value}.
CANVAS_JS = """
const PAD = 14, HIT = 7;
let pts = [], data = null;
function draw() {
  const canvas = element.querySelector('canvas');
  if (!canvas) return;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  pts = [];
  try { data = props.value ? JSON.parse(props.value) : null; } catch (e) { data = null; }
  element.querySelector('.latent-title').textContent = data ? data.title : 'Draw a map to see it here.';
  const legend = element.querySelector('.latent-legend');
  legend.innerHTML = '';
  if (!data || !data.x.length) return;
  const lo = [Math.min(...data.x), Math.min(...data.y)], hi = [Math.max(...data.x), Math.max(...data.y)];
  const sx = (canvas.width - 2 * PAD) / ((hi[0] - lo[0]) || 1), sy = (canvas.height - 2 * PAD) / ((hi[1] - lo[1]) || 1);
  for (let pass = 0; pass < 3; pass++) {
    for (let i = 0; i < data.x.length; i++) {
      const m = data.mark[i];
      if ((pass === 0 && m !== 0) || (pass === 1 && m !== 2) || (pass === 2 && m !== 1)) continue;
      const x = PAD + (data.x[i] - lo[0]) * sx, y = canvas.height - PAD - (data.y[i] - lo[1]) * sy;
      pts.push([x, y, i]);
      ctx.beginPath();
      ctx.arc(x, y, m === 0 ? 2 : 3.5, 0, 2 * Math.PI);
      ctx.fillStyle = data.c[i];
      ctx.fill();
      if (m !== 0) { ctx.strokeStyle = '#000'; ctx.lineWidth = 0.8; ctx.stroke(); }
    }
  }
  const root = element.querySelector('.latent-map');
  root.dataset.points = String(pts.length);  // for tests and scripts: how many points are drawn
  root.latentPoints = pts;  // [canvas x, canvas y, point index]
  for (const [text, color] of data.legend) {
    const item = document.createElement('span');
    item.style.marginRight = '0.8em';
    item.innerHTML = '<span style="display:inline-block;width:0.8em;height:0.8em;margin-right:0.25em;background:'
      + color + '"></span>';
    item.appendChild(document.createTextNode(text));
    legend.appendChild(item);
  }
}
function nearest(ev) {
  const canvas = element.querySelector('canvas');
  if (!canvas || ev.target !== canvas) return null;
  const r = canvas.getBoundingClientRect();
  const x = (ev.clientX - r.left) * canvas.width / r.width, y = (ev.clientY - r.top) * canvas.height / r.height;
  let best = null, bestD = HIT * HIT;
  for (const p of pts) {
    const d = (p[0] - x) ** 2 + (p[1] - y) ** 2;
    if (d <= bestD) { best = p[2]; bestD = d; }
  }
  return best;
}
element.addEventListener('mousemove', (ev) => {
  const i = nearest(ev);
  const tip = element.querySelector('.latent-tip');
  if (tip) tip.textContent = (i === null || !data) ? '' : data.tip[i];
});
element.addEventListener('click', (ev) => {
  const i = nearest(ev);
  if (i !== null && data) trigger('select', {index: i, value: data.tip[i]});
});
watch('value', draw);
draw();
"""


@dataclass(frozen=True)
class LatentTabContext:
    """What the tab needs from the server: the voices, the loaded-voice cache, a folder for caches and exports."""

    library: ModelLibrary
    cache: VoiceCache
    work_dir: Path
    max_input_seconds: float = MAX_INPUT_SECONDS
    datasets: Mapping[str, str] = field(default_factory=dict)  # voice key -> its training clips (server setting)


def dataset_for(ctx: LatentTabContext, entry) -> str | None:
    """A voice's training clips: the folder the server names for it, else the voice folder's dataset/."""
    if entry.key in ctx.datasets:
        return str(ctx.datasets[entry.key])
    folder = Path(entry.folder) / DATASET_SUBDIR
    return str(folder) if folder.is_dir() else None


def draw_map(ctx: LatentTabContext, voice_key: str, audio_path: str | None, convert: bool, speaker: str | None,
             transpose: float, cluster_ratio: float, method: str, color: str) -> tuple[str, LatentTabState, str]:
    """The Draw button: (scatter JSON, session state, status text). SvcError for anything the person can fix."""
    entry = ctx.library.get(voice_key)
    clip = None
    if audio_path:
        wav, sr = load_audio(audio_path)
        check_input(wav, sr, ctx.max_input_seconds)
        clip = InputClip(wav, sr, Path(audio_path).name)
    if convert and clip is None:
        raise OptionError("Upload an input clip to convert it.")
    loaded, _ = ctx.cache.get(entry)
    svc = loaded.svc
    conversion = None
    if convert:
        target = speaker if speaker in svc.speakers else svc.speakers[0]
        conversion = ConversionSpec(target, float(transpose), float(cluster_ratio))
        if cluster_ratio > 0 and getattr(svc, "retriever", None) is None:
            raise OptionError("This voice has no cluster or index file: set the cluster ratio to 0.")
    request = MapRequest(dataset=dataset_for(ctx, entry), method=method, cache_dir=str(ctx.work_dir / CACHE_SUBDIR))
    with loaded.lock:
        lmap = build_map(svc, request, FrameLabeller(svc.encoder), clip, conversion)
    state = LatentTabState(lmap, shown_points(lmap))
    where = "training clips" if request.dataset else "no dataset/ in the voice folder"
    status = (f"{len(lmap.frames)} frames ({lmap.reference_count} reference: {where}; map "
              f"{'from the cache' if lmap.from_cache else 'fitted now'}), {lmap.method}, encoder {svc.encoder.name}. "
              "Hover a point for its time; click it to hear that moment.")
    return scatter_payload(state, color), state, " ".join([status] + lmap.notes)


def recolor(state: LatentTabState | None, color: str) -> str:
    return "" if state is None else scatter_payload(state, color)


def export_files(ctx: LatentTabContext, state: LatentTabState | None, color: str) -> list[str]:
    if state is None:
        raise OptionError("Draw a map first.")
    folder = ctx.work_dir / EXPORT_SUBDIR
    prune_exports(folder)
    return export_all(state.lmap, str(folder / f"latent-map-{uuid.uuid4().hex[:8]}"), color)


def prune_exports(folder: Path, keep: int = MAX_EXPORT_FILES) -> None:
    """Remove the oldest export files beyond `keep` (the folder never grows without bound)."""
    if not folder.is_dir():
        return
    files = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    for path in files[: max(len(files) - keep, 0)]:
        path.unlink(missing_ok=True)


def _user_errors(fn):
    """Run fn; SvcError -> gr.Error with its message (the person's to fix), anything else logged."""
    @functools.wraps(fn)  # keeps fn's signature: Gradio finds the gr.SelectData argument by its annotation
    def wrapped(*args: Any):
        try:
            return fn(*args)
        except SvcError as err:
            raise gr.Error(str(err), print_exception=False) from None
        except Exception:  # noqa: BLE001 - a bug: logged, and a short message instead of a traceback
            log.exception("latent map failed")
            raise gr.Error("The latent map failed (see the server log).", print_exception=False) from None
    return wrapped


def _speakers(ctx: LatentTabContext, key: str | None) -> list[str]:
    try:
        return list(ctx.library.get(key).speakers) if key else []
    except SvcError:
        return []


def build_latent_tab(ctx: LatentTabContext) -> None:
    """The tab's widgets and events (call inside a gr.Tab)."""
    state = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            choices = ctx.library.choices()
            first = choices[0][1] if choices else None
            voice = gr.Dropdown(choices, value=first, label="Voice", info="its training clips (dataset/ in the "
                                "voice folder) and cluster centres form the map")
            audio = gr.Audio(type="filepath", label="Input clip", sources=["upload", "microphone"])
            convert = gr.Checkbox(False, label="Convert", info="also place the conversion, re-encoded")
            names = _speakers(ctx, first)
            speaker = gr.Dropdown(names, value=names[0] if names else None, label="Target speaker")
            transpose = gr.Slider(-24, 24, 0, step=1, label="Transpose", info="semitones")
            ratio = gr.Slider(0, 1, 0, step=0.05, label="Cluster ratio", info="needs the voice's cluster/index file")
            method = gr.Radio(list(METHODS), value="umap", label="Method", info="umap: structure; pca: fast, linear")
            color = gr.Radio(list(COLOR_KEYS), value="speaker", label="Colour by")
            draw = gr.Button("Draw map", variant="primary")
        with gr.Column(scale=2):
            status = gr.Markdown("")
            plot = gr.HTML("", html_template=CANVAS_HTML, js_on_load=CANVAS_JS, elem_id="latent-map")
            moment = gr.Audio(label="Clicked moment", type="numpy", interactive=False, autoplay=True)
            caption = gr.Markdown("")
            export = gr.Button("Export CSV / npz / PNG")
            files = gr.File(label="Exports", file_count="multiple", interactive=False)

    def speakers_of(key: str):
        names = _speakers(ctx, key)
        return gr.Dropdown(choices=names, value=names[0] if names else None)

    def on_select(st: LatentTabState | None, evt: gr.SelectData):
        if st is None:
            raise OptionError("Draw a map first.")
        return moment_audio(st, int(evt.index))

    private = {"api_visibility": "private"}  # the page's own events: the web API is /convert and /cover
    voice.change(speakers_of, voice, speaker, **private)
    draw.click(_user_errors(lambda *a: draw_map(ctx, *a)),
               [voice, audio, convert, speaker, transpose, ratio, method, color], [plot, state, status],
               concurrency_limit=1, **private)
    color.change(recolor, [state, color], plot, **private)
    plot.select(_user_errors(on_select), state, [moment, caption], **private)
    export.click(_user_errors(lambda st, c: export_files(ctx, st, c)), [state, color], files, **private)
