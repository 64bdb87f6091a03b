"""The whole map: reference set fitted once and cached without pickle, input + conversion placed on it, exports,
and `python -m svc_core latent-map` end to end (starter voice: real WORLD synthesizer and phoneppg42 encoder)."""
from __future__ import annotations

import csv
import os

import numpy as np
import pytest
import soundfile as sf

from latent_factories import CLIPS_PER_SPEAKER, K_CLUSTERS, SPEAKERS, SR, STARTER
from svc_core.cli import main
from svc_core.errors import OptionError
from svc_core.latent import (ConversionSpec, FrameLabeller, InputClip, MapRequest, build_map, export_all,
                             write_png)
from svc_core.latent.build import CACHE_PREFIX, cache_key
from svc_core.latent.export import CSV_COLUMNS, NPZ_KEYS


def test_reference_map_is_cached_without_pickle(starter_svc, dataset_dir, input_wav, tmp_path):
    labeller = FrameLabeller(starter_svc.encoder)
    request = MapRequest(dataset=str(dataset_dir), method="pca", cache_dir=str(tmp_path / "cache"))
    first = build_map(starter_svc, request, labeller, InputClip(input_wav, SR, "in.wav"),
                      ConversionSpec("flite_awb"))
    assert not first.from_cache and first.method == "pca"
    sources = first.frames.source
    assert list(np.unique(sources)) == ["converted", "input", "training"]
    assert (sources[: first.reference_count] == "training").all() and len(first.coords) == len(first.frames)
    assert set(first.frames.speaker[sources == "converted"]) == {"flite_awb"}
    assert set(first.audio) == {"in.wav", "in.wav -> flite_awb"}
    files = list((tmp_path / "cache").iterdir())
    assert [f.name for f in files] == [f"{CACHE_PREFIX}{cache_key(starter_svc, request, labeller)}.npz"]
    with np.load(files[0], allow_pickle=False) as data:  # raises if anything in it needs pickle
        assert data["ref_features"].shape == (first.reference_count, 42)
        assert str(data["ref_speaker"].dtype).startswith("<U")
    second = build_map(starter_svc, request, labeller, InputClip(input_wav, SR, "in.wav"))
    assert second.from_cache
    assert np.array_equal(second.coords[: second.reference_count], first.coords[: first.reference_count])
    assert np.allclose(second.coords[second.frames.source == "input"], first.coords[sources == "input"], atol=1e-5)
    # a changed training clip changes the key: the map is fitted again
    clip = dataset_dir / "alto" / "clip0.wav"
    st = clip.stat()
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert not build_map(starter_svc, request, labeller).from_cache
    # a damaged cache file is refitted and rewritten, not trusted
    newest = max((tmp_path / "cache").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    newest.write_bytes(b"not an npz")
    assert not build_map(starter_svc, request, labeller).from_cache


def test_map_without_reference_fits_on_the_input(starter_svc, input_wav):
    labeller = FrameLabeller(starter_svc.encoder)
    lmap = build_map(starter_svc, MapRequest(method="pca"), labeller, InputClip(input_wav, SR, "in.wav"))
    assert lmap.reference_count == len(lmap.frames) and set(lmap.frames.source) == {"input"}
    with pytest.raises(OptionError, match="Nothing to draw"):
        build_map(starter_svc, MapRequest(method="pca"), labeller)
    with pytest.raises(OptionError, match="input clip"):
        build_map(starter_svc, MapRequest(method="pca"), labeller, conversion=ConversionSpec("flite_awb"))


def test_map_with_cluster_centres(sovits_voice, phonevec256, dataset_dir):
    from svc_core.pipeline import Svc

    svc = Svc(sovits_voice["model"], sovits_voice["config"], encoder=phonevec256,
              cluster_path=str(sovits_voice["kmeans"]))
    lmap = build_map(svc, MapRequest(dataset=str(dataset_dir), method="pca"), FrameLabeller(phonevec256))
    centre = lmap.frames.source == "centre"
    assert centre.sum() == K_CLUSTERS * len(SPEAKERS) and set(lmap.frames.speaker[centre]) == set(SPEAKERS)


def test_exports(starter_svc, dataset_dir, input_wav, tmp_path):
    from PIL import Image

    lmap = build_map(starter_svc, MapRequest(dataset=str(dataset_dir), method="pca"),
                     FrameLabeller(starter_svc.encoder), InputClip(input_wav, SR, "in.wav"))
    paths = export_all(lmap, str(tmp_path / "out" / "map"), color="pitch")
    with open(paths[0], newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(lmap.frames) + 1
    first_input = rows[1 + lmap.reference_count]
    assert first_input[3] == "input" and first_input[7] == "in.wav" and float(first_input[6]) == 0.0
    with np.load(paths[1], allow_pickle=False) as data:
        assert set(data.files) == set(NPZ_KEYS)
        assert data["coords"].shape == (len(lmap.frames), 2) and data["features"].shape[1] == 42
        assert int(data["reference_count"]) == lmap.reference_count
    for color in ("speaker", "source", "phone", "time"):
        write_png(lmap, tmp_path / f"{color}.png", color)
    for path in [paths[2]] + [tmp_path / f"{c}.png" for c in ("speaker", "phone")]:
        with Image.open(path) as img:
            img.load()
            assert img.size == (960, 720) and len(img.getcolors(1 << 16)) > 5  # points in several colours
    with pytest.raises(OptionError, match="Colour by"):
        write_png(lmap, tmp_path / "x.png", "loudness")


def test_cli_end_to_end(dataset_dir, input_wav, tmp_path, capsys):
    wav = tmp_path / "in.wav"
    sf.write(wav, input_wav, SR)
    out = tmp_path / "maps" / "starter"
    argv = ["latent-map", "-m", str(STARTER / "W_5000.pth"), "-c", str(STARTER / "config.json"), "--dataset",
            str(dataset_dir), "-i", str(wav), "--convert", "-s", "flite_slt", "-t", "2", "--method", "pca",
            "--color", "source", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "fitted" in printed and f"wrote {out}.png" in printed
    with np.load(f"{out}.npz", allow_pickle=False) as data:
        assert set(data["source"]) == {"training", "input", "converted"}
        assert set(data["speaker"][data["source"] == "training"]) == set(SPEAKERS)
        n_train = CLIPS_PER_SPEAKER * len(SPEAKERS)
        assert len(set(data["clip"][data["source"] == "training"])) == n_train
    assert main(argv) == 0
    assert "loaded from the cache" in capsys.readouterr().out
    assert main(["latent-map", "-m", str(STARTER / "W_5000.pth"), "-c", str(STARTER / "config.json"), "--convert",
                 "--out", str(out)]) == 2
    assert "--convert needs an input clip" in capsys.readouterr().err
    assert main(["latent-map", "-m", str(tmp_path / "none.pth"), "--out", str(out)]) == 2
    assert "error:" in capsys.readouterr().err
