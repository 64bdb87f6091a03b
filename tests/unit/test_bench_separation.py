"""bench.separation_quality and bench.cover_speed on tiny inputs: the set format, the scoring loop, the tables."""
import json

import numpy as np
import soundfile as sf

from bench import cover_speed, separation_quality as sq
from svc_core.separation.dsp import HpssSeparator
from svc_core.separation.metrics import score_stem


def test_dev_set_is_scored_per_separator(tmp_path):
    sq.make_dev(tmp_path, n=2, seconds=3)
    songs = sq.song_folders(tmp_path)
    assert [p.name for p in songs] == ["dev000", "dev001"]
    song = sq.read_song(songs[0])
    assert song["mixture"].shape == (2, 3 * 44100)
    np.testing.assert_allclose(song["vocals"] + song["accompaniment"], song["mixture"], atol=1e-6)
    result = sq.evaluate(tmp_path, {sq.MIXTURE: sq._AsIs(), "hpss": HpssSeparator()})
    floor = score_stem(song["vocals"], song["mixture"], 44100).sdr
    assert result["per_song"][sq.MIXTURE][0]["vocals"]["sdr"] == floor
    run = {**result, "stamp": "now", "machine": "here", "command": "x", "test_set": str(tmp_path), "threads": 1,
           "labels": {sq.MIXTURE: "mixture as is", "hpss": "HPSS"}}
    run["summary"] = sq.summary(run)
    assert run["summary"]["hpss"]["vocals"]["sdr"]["songs"] == 2
    lines = sq.table(run)
    assert len(lines) == 4 and lines[2].startswith("| mixture as is") and "+0.00" in lines[2]
    assert json.loads(json.dumps(run))["manifest"] == {"songs": 2}


def test_cover_speed_plan_song_and_table(tmp_path):
    rows = cover_speed.plan(["hpss", "repet-sim"], ["hpss"], [2, 1])
    assert [(r["kind"], r["separator"], r["threads"]) for r in rows] == [
        ("separate", "repet-sim", 2), ("separate", "hpss", 2), ("separate", "repet-sim", 1),
        ("separate", "hpss", 1), ("cover", "hpss", 2), ("cover", "hpss", 1)]
    song = cover_speed.song_path(tmp_path, 2.0)
    audio, sr = sf.read(song)
    assert audio.shape == (2 * 44100, 2) and sr == 44100 and np.abs(audio).max() <= 0.9 + 1e-6
    done = [{"kind": k, "separator": s, "threads": 2, "label": s, "audio_seconds": 2.0, "end_to_end": t,
             "rtf": t / 2, "cpu_seconds": t, "peak_rss_mb": 500.0, "cpu_busy_before": 0.0,
             "stages": {"separate": t}, "rss_by_stage": {"separate": 500.0}}
            for k, s, t in (("separate", "repet-sim", 2.0), ("separate", "hpss", 1.0), ("cover", "hpss", 4.0))]
    lines = cover_speed.table(done)
    assert "(baseline)" in lines[2] and "(0.50x)" in lines[3] and "(4.00x)" in lines[4]


def test_a_community_model_file_is_scored_through_the_real_loader(tmp_path):
    from separation_factories import make_mdx_onnx, write_yaml

    model = tmp_path / "random_mdx.onnx"
    write_yaml(tmp_path / "random_mdx.onnx.yaml", make_mdx_onnx(model, "small", seed=0))
    separators, skipped = sq.build_separators([sq.MIXTURE], str(model), None)
    assert list(separators) == [sq.MIXTURE, "mdx:random_mdx.onnx"] and not skipped
    sq.make_dev(tmp_path / "set", n=1, seconds=2)
    result = sq.evaluate(tmp_path / "set", separators)
    scores = result["per_song"]["mdx:random_mdx.onnx"][0]
    assert np.isfinite(scores["vocals"]["sdr"]) and np.isfinite(scores["accompaniment"]["si_sdr"])
