"""The Latent map tab's handlers (no browser): draw, recolour, click -> the moment's audio, export, errors; and the
tab builds inside a Blocks app."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from latent_factories import SPEAKERS, SR
from svc_core.errors import OptionError
from svc_core.ui.latent_tab import LatentTabContext, build_latent_tab, draw_map, export_files, recolor
from svc_core.ui.latent_view import MOMENT_SECONDS, moment_audio


def test_draw_click_recolour_export(ctx, input_wav, tmp_path):
    wav = tmp_path / "phrase.wav"
    sf.write(wav, input_wav, SR)
    payload, state, status = draw_map(ctx, "starter", str(wav), True, "flite_rms", 0, 0, "pca", "speaker")
    data = json.loads(payload)
    n = len(state.lmap.frames)
    assert len(data["x"]) == len(data["tip"]) == len(data["c"]) == n and "fitted now" in status
    assert {text for text, _ in data["legend"]} == set(SPEAKERS) | {"input", "flite_rms"}
    assert sum(data["mark"]) == n - state.lmap.reference_count  # input + converted points are marked
    # a click on an input frame at 0.5 s plays the second around it, from the uploaded clip
    src, times = state.lmap.frames.source, state.lmap.frames.time_s
    point = int(np.flatnonzero((src == "input") & np.isclose(times, 0.5))[0])
    (rate, pcm), caption = moment_audio(state, point)
    assert rate == SR and pcm.dtype == np.int16 and len(pcm) == int(MOMENT_SECONDS * SR)
    assert np.allclose(pcm / 32767, input_wav[: len(pcm)], atol=2e-4) and "phrase.wav @ 0.50 s" in caption
    # ... on a training frame, from the voice's dataset/ folder; on a converted one, from the conversion
    train = int(np.flatnonzero((src == "training") & np.isclose(times, 1.0))[0])
    (rate, pcm), caption = moment_audio(state, train)
    assert rate == SR and len(pcm) == SR and "@ 1.00 s" in caption
    conv = int(np.flatnonzero(src == "converted")[0])
    assert moment_audio(state, conv)[0][0] == 44100
    pitch = json.loads(recolor(state, "pitch"))
    assert pitch["x"] == data["x"] and pitch["c"] != data["c"] and pitch["legend"][0][0].endswith("Hz")
    files = export_files(ctx, state, "phone")
    assert [os.path.splitext(f)[1] for f in files] == [".csv", ".npz", ".png"] and all(map(os.path.isfile, files))
    again = draw_map(ctx, "starter", str(wav), False, None, 0, 0, "pca", "source")
    assert "from the cache" in again[2]


def test_user_errors(ctx, tmp_path):
    with pytest.raises(OptionError, match="input clip"):
        draw_map(ctx, "starter", None, True, "flite_rms", 0, 0, "pca", "speaker")
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros(int(SR * 121), np.float32) + 0.01, SR)
    with pytest.raises(OptionError, match="up to 120 s"):
        draw_map(ctx, "starter", str(long), False, None, 0, 0, "pca", "speaker")
    with pytest.raises(OptionError, match="cluster"):
        wav = tmp_path / "short.wav"
        sf.write(wav, np.sin(np.arange(SR) / 10).astype(np.float32) * 0.3, SR)
        draw_map(ctx, "starter", str(wav), True, "flite_rms", 0, 0.5, "pca", "speaker")
    with pytest.raises(OptionError, match="Draw a map first"):
        export_files(ctx, None, "speaker")


def test_tab_builds(ctx):
    import gradio as gr

    with gr.Blocks() as demo:
        build_latent_tab(ctx)
    kinds = {type(b).__name__ for b in demo.blocks.values()}
    assert {"HTML", "Audio", "Dropdown", "Button", "File"} <= kinds


def test_exports_are_pruned_and_datasets_can_be_named(tmp_path, dataset_dir):
    from svc_core.ui.latent_tab import LatentTabContext, dataset_for, prune_exports

    folder = tmp_path / "exports"
    folder.mkdir()
    for i in range(7):
        path = folder / f"f{i}.csv"
        path.write_text("x")
        os.utime(path, ns=(i * 10**9, i * 10**9))
    prune_exports(folder, keep=3)
    assert sorted(p.name for p in folder.iterdir()) == ["f4.csv", "f5.csv", "f6.csv"]

    class Entry:
        key, folder = "v", tmp_path

    assert dataset_for(LatentTabContext(None, None, tmp_path), Entry()) is None
    named = LatentTabContext(None, None, tmp_path, datasets={"v": str(dataset_dir)})
    assert dataset_for(named, Entry()) == str(dataset_dir)
