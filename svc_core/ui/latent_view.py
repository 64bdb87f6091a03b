"""Pure helpers of the Latent map tab (no Gradio): the scatter's JSON payload, the sound of one frame's moment,
and the tab's request checks. svc_core/ui/latent_tab.py wires them to widgets."""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

from ..audio import load_audio
from ..errors import AudioError, OptionError
from ..latent.build import LatentMap
from ..latent.export import point_colors

MAX_INPUT_SECONDS = 120.0  # longest input clip the tab maps (6,000 frames; the conversion runs inside the request)
MAX_PLOT_POINTS = 25_000  # points sent to the page (reference 20,000 + input + conversion)
MOMENT_SECONDS = 1.0  # a click plays this much audio, centred on the frame
PLOT_SIZE = (760, 520)  # canvas pixels


@dataclass
class LatentTabState:
    """What one browser session's map holds between events: the map and the points sent to the page (indices
    into lmap.frames, when subsampled for display)."""

    lmap: LatentMap
    shown: np.ndarray  # [P] frame indices drawn


def tooltip(lmap: LatentMap, i: int) -> str:
    """Hover text of frame i: clip and time, speaker, source, phone, pitch."""
    f = lmap.frames
    parts = [f.clip[i] or f.source[i]]
    if not math.isnan(f.time_s[i]):
        parts[0] += f" @ {f.time_s[i]:.2f} s"
    parts += [f"{f.speaker[i]} ({f.source[i]})"]
    if f.phone[i]:
        parts.append(f"phone {f.phone[i]}")
    if not math.isnan(f.pitch_hz[i]):
        parts.append(f"{f.pitch_hz[i]:.0f} Hz" if f.pitch_hz[i] > 0 else "unvoiced")
    return " · ".join(parts)


def shown_points(lmap: LatentMap, limit: int = MAX_PLOT_POINTS, seed: int = 0) -> np.ndarray:
    """Indices of the frames drawn: all added (input / converted) frames, reference frames subsampled to fit."""
    n = len(lmap.frames)
    if n <= limit:
        return np.arange(n)
    added = np.arange(lmap.reference_count, n)
    room = max(limit - len(added), 0)
    ref = np.sort(np.random.default_rng(seed).choice(lmap.reference_count, size=room, replace=False))
    return np.concatenate([ref, added])


def scatter_payload(state: LatentTabState, color: str) -> str:
    """The JSON the page's canvas draws: x, y, colour (hex) and tooltip per point, legend, and marks for the
    added / centre points."""
    lmap = state.lmap
    rgb, legend = point_colors(lmap, color)
    idx = state.shown
    hexes = ["#%02x%02x%02x" % rgb[i] for i in idx]
    source = lmap.frames.source
    return json.dumps({
        "x": [round(float(v), 4) for v in lmap.coords[idx, 0]], "y": [round(float(v), 4) for v in lmap.coords[idx, 1]],
        "c": hexes, "tip": [tooltip(lmap, int(i)) for i in idx],
        "mark": [1 if source[i] in ("input", "converted") else 2 if source[i] in ("centre", "index") else 0
                 for i in idx],
        "legend": [[text, "#%02x%02x%02x" % c] for text, c in legend],
        "title": f"{lmap.method.upper()} map · {len(lmap.frames)} frames · colour: {color}",
    })


def moment_audio(state: LatentTabState, point: int) -> tuple[tuple[int, np.ndarray] | None, str]:
    """((rate, int16 [N]) of MOMENT_SECONDS around the clicked point's time, or None, and a caption)."""
    lmap = state.lmap
    if not 0 <= point < len(state.shown):
        raise OptionError("That point is not on the map any more; draw the map again.")
    i = int(state.shown[point])
    text = tooltip(lmap, i)
    t = float(lmap.frames.time_s[i])
    clip = str(lmap.frames.clip[i])
    if math.isnan(t):
        return None, f"{text}: a cluster centre / index row has no sound."
    audio = clip_audio(lmap, clip)
    if audio is None:
        return None, f"{text}: the clip's audio is not at hand."
    wav, sr = audio
    start = max(0, int((t - MOMENT_SECONDS / 2) * sr))
    piece = wav[start: start + int(MOMENT_SECONDS * sr)]
    pcm = (np.clip(piece, -1.0, 1.0) * 32767).astype(np.int16)
    return (int(sr), pcm), f"{text} (playing {start / sr:.2f}-{(start + len(piece)) / sr:.2f} s)"


def clip_audio(lmap: LatentMap, clip: str) -> tuple[np.ndarray, int] | None:
    """A clip's audio: the input / converted audio kept with the map, or a training clip read from the dataset
    (clip labels are '<speaker>/<file>' under the dataset folder, or '<folder>/<file>' for a one-speaker folder)."""
    if clip in lmap.audio:
        return lmap.audio[clip]
    if not lmap.dataset:
        return None
    root = os.path.realpath(lmap.dataset)
    for candidate in (os.path.join(root, clip), os.path.join(root, os.path.basename(clip))):
        path = os.path.realpath(candidate)
        if path.startswith(root + os.sep) and os.path.isfile(path):  # never outside the dataset folder
            try:
                wav, sr = load_audio(path)
            except AudioError:
                return None
            return wav.mean(1) if wav.ndim == 2 else wav, sr
    return None


def check_input(wav: np.ndarray, sr: int, max_seconds: float = MAX_INPUT_SECONDS) -> None:
    """OptionError for an input longer than `max_seconds`."""
    seconds = len(wav) / sr if sr else 0.0
    if seconds > max_seconds:
        raise OptionError(f"The clip is {seconds:.0f} s long; the latent map takes up to {max_seconds:.0f} s. "
                          "Trim it (one phrase shows the map best).")
