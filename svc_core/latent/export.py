"""A latent map to files: CSV (one row per frame), .npz (arrays, no pickle) and a PNG scatter (Pillow).

    write_csv(lmap, "map.csv"); write_npz(lmap, "map.npz"); write_png(lmap, "map.png", color="speaker")
"""
from __future__ import annotations

import csv
import json
import math
import os

import numpy as np

from ..errors import OptionError
from .build import LatentMap

COLOR_KEYS = ("speaker", "source", "phone", "pitch", "time")
CONTINUOUS = {"pitch": "pitch_hz", "time": "time_s"}  # colour keys drawn on a colour scale (label field)
CSV_COLUMNS = ("x", "y", "speaker", "source", "phone", "pitch_hz", "time_s", "clip")
NPZ_KEYS = ("coords", "features", "speaker", "source", "phone", "pitch_hz", "time_s", "clip", "reference_count",
            "meta")
PNG_SIZE = (960, 720)  # pixels: plot area + legend column
LEGEND_WIDTH = 200  # pixels
MARGIN = 24  # pixels
POINT_RADIUS = 2  # pixels (centres / index rows: twice this, outlined)
MAX_LEGEND_ITEMS = 24  # categories listed; the rest are grouped as "other"
# categorical palette (Tableau 10 + 10 darker), then a 5-stop viridis-like scale for pitch/time
PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
           "#bab0ac", "#1f4e79", "#b35806", "#8c1c13", "#2a7f7a", "#2d6a2e", "#a68a00", "#6a3d7a", "#c2185b",
           "#5d4037", "#616161")
SCALE = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
OTHER_COLOR = "#cccccc"
BIG_SOURCES = ("centre", "index")


def color_values(lmap: LatentMap, color: str) -> np.ndarray:
    """The label array a colour key reads ([N] str, or float for pitch/time)."""
    if color not in COLOR_KEYS:
        raise OptionError(f"Colour by one of {', '.join(COLOR_KEYS)}; got '{color}'.")
    return getattr(lmap.frames, CONTINUOUS.get(color, color))


def _hex(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i: i + 2], 16) for i in (1, 3, 5))


def scale_color(t: float) -> tuple[int, int, int]:
    """t in [0, 1] -> RGB on SCALE (linear between stops)."""
    t = min(max(float(t), 0.0), 1.0) * (len(SCALE) - 1)
    i = min(int(t), len(SCALE) - 2)
    a, b = np.array(_hex(SCALE[i])), np.array(_hex(SCALE[i + 1]))
    return tuple(int(round(v)) for v in a + (b - a) * (t - i))


def categories(values: np.ndarray) -> list[str]:
    """Categories by frequency (most frequent first), at most MAX_LEGEND_ITEMS."""
    names, counts = np.unique(values, return_counts=True)
    return [str(n) for n in names[np.argsort(-counts, kind="stable")]][:MAX_LEGEND_ITEMS]


def point_colors(lmap: LatentMap, color: str) -> tuple[list[tuple[int, int, int]], list[tuple[str, tuple]]]:
    """(RGB per frame, legend entries (text, RGB))."""
    values = color_values(lmap, color)
    if color in CONTINUOUS:
        finite = values[np.isfinite(values) & (values > 0 if color == "pitch" else True)]
        lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
        span = hi - lo or 1.0
        grey = _hex(OTHER_COLOR)
        rgb = [scale_color((v - lo) / span) if np.isfinite(v) and (v > 0 or color != "pitch") else grey
               for v in values]
        unit = "Hz" if color == "pitch" else "s"
        legend = [(f"{lo + span * t:.0f} {unit}" if unit == "Hz" else f"{lo + span * t:.1f} {unit}", scale_color(t))
                  for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
        if color == "pitch":
            legend.append(("unvoiced / unknown", grey))
        return rgb, legend
    cats = categories(values)
    lookup = {c: _hex(PALETTE[i % len(PALETTE)]) for i, c in enumerate(cats)}
    other = _hex(OTHER_COLOR)
    rgb = [lookup.get(str(v), other) for v in values]
    legend = [(c or "(none)", lookup[c]) for c in cats]
    if len(np.unique(values)) > len(cats):
        legend.append(("other", other))
    return rgb, legend


def write_csv(lmap: LatentMap, path: str | os.PathLike) -> None:
    """One row per frame: CSV_COLUMNS (pitch_hz 0 = unvoiced, empty = unknown)."""
    f = lmap.frames
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(CSV_COLUMNS)
        for i in range(len(f)):
            w.writerow([f"{lmap.coords[i, 0]:.5g}", f"{lmap.coords[i, 1]:.5g}", f.speaker[i], f.source[i], f.phone[i],
                        "" if math.isnan(f.pitch_hz[i]) else f"{f.pitch_hz[i]:.2f}",
                        "" if math.isnan(f.time_s[i]) else f"{f.time_s[i]:.2f}", f.clip[i]])


def write_npz(lmap: LatentMap, path: str | os.PathLike) -> None:
    """Arrays NPZ_KEYS (features [N, C] float32, coords [N, 2], labels [N]; meta a JSON string); no pickle."""
    meta = json.dumps({"method": lmap.method, "notes": lmap.notes, "from_cache": lmap.from_cache})
    np.savez_compressed(path, coords=lmap.coords, reference_count=np.int64(lmap.reference_count),
                        meta=np.asarray(meta), **lmap.frames.to_arrays())


def write_png(lmap: LatentMap, path: str | os.PathLike, color: str = "speaker", title: str = "") -> None:
    """A scatter of the map coloured by `color`, with a legend; centres / index rows drawn larger and outlined,
    the input and converted frames drawn last (on top)."""
    from PIL import Image, ImageDraw

    width, height = PNG_SIZE
    img = Image.new("RGB", PNG_SIZE, "white")
    draw = ImageDraw.Draw(img)
    plot_w = width - LEGEND_WIDTH - 2 * MARGIN
    plot_h = height - 2 * MARGIN - 16
    xy = np.asarray(lmap.coords, np.float64)
    lo, hi = (xy.min(0), xy.max(0)) if len(xy) else (np.zeros(2), np.ones(2))
    span = np.where(hi - lo > 0, hi - lo, 1.0)
    px = MARGIN + (xy[:, 0] - lo[0]) / span[0] * plot_w
    py = MARGIN + 16 + (1 - (xy[:, 1] - lo[1]) / span[1]) * plot_h
    rgb, legend = point_colors(lmap, color)
    source = lmap.frames.source
    order = np.argsort(np.isin(source, ("input", "converted")), kind="stable")  # reference first, added on top
    draw.rectangle([MARGIN - 4, MARGIN + 12, MARGIN + plot_w + 4, MARGIN + 20 + plot_h], outline="#999999")
    for i in order:
        r = POINT_RADIUS * 2 if source[i] in BIG_SOURCES else POINT_RADIUS
        outline = "black" if source[i] in BIG_SOURCES + ("input", "converted") and r > 0 else None
        draw.ellipse([px[i] - r, py[i] - r, px[i] + r, py[i] + r], fill=rgb[i], outline=outline)
    draw.text((MARGIN, 4), title or f"latent map ({lmap.method}), colour: {color}, {len(xy)} frames", fill="black")
    lx, ly = width - LEGEND_WIDTH, MARGIN + 16
    for text, c in legend:
        draw.rectangle([lx, ly + 2, lx + 10, ly + 12], fill=c)
        draw.text((lx + 16, ly), text[:28], fill="black")
        ly += 16
    draw.text((lx, ly + 8), "outlined: input / converted", fill="black")
    draw.text((lx, ly + 24), "large: centres / index rows", fill="black")
    img.save(path, format="PNG")


def export_all(lmap: LatentMap, prefix: str, color: str = "speaker") -> list[str]:
    """prefix.csv, prefix.npz, prefix.png -> the paths written."""
    folder = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(folder, exist_ok=True)
    paths = [f"{prefix}.csv", f"{prefix}.npz", f"{prefix}.png"]
    write_csv(lmap, paths[0])
    write_npz(lmap, paths[1])
    write_png(lmap, paths[2], color)
    return paths
