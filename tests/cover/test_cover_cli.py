"""`python -m svc_core cover` and `separate` in-process (svc_core.cli.main), with the known-stems separator."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from cover.songs import SR, VOICE_CONFIG, VOICE_MODEL
from svc_core.cli import main


def test_cover_command(song, known_separator, tmp_path, capsys):
    path, stems = song
    out = tmp_path / "out"
    code = main(["cover", str(path), "-m", str(VOICE_MODEL), "-c", str(VOICE_CONFIG), "-s", "flite_rms", "-o",
                 str(out), "--separator", known_separator, "--transpose", "auto", "--format", "wav,mp3", "--zip",
                 "--lufs", "-18", "--reverb", "0.2", "--f0", "pm", "--noise-scale", "0.3", "--threads", "1"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "key: The lead vocal centres on" in printed.out and "-18.0 LUFS" in printed.out
    assert "[separate" in printed.err and "[convert" in printed.err
    for stem in ("original_vocals", "converted_vocals", "accompaniment", "mix"):
        for fmt in ("wav", "mp3"):
            assert (out / f"song_{stem}.{fmt}").is_file()
    assert (out / "song_cover.zip").is_file()
    mix, sr = sf.read(str(out / "song_mix.wav"))
    assert sr == SR and mix.shape == (stems["mixture"].shape[1], 2)


def test_cover_command_errors(song, known_separator, tmp_path, capsys):
    path, _ = song
    bad = tmp_path / "G_1.pth"
    bad.write_bytes(b"this is not a checkpoint" * 100)
    base = ["cover", str(path), "-o", str(tmp_path / "o"), "--separator", known_separator, "--f0", "pm"]
    assert main(base + ["-m", str(bad), "-c", str(VOICE_CONFIG)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "G_1.pth" in err
    assert main(base + ["-m", str(VOICE_MODEL), "-c", str(VOICE_CONFIG), "-t", "high"]) == 2
    assert "transpose must be a number of semitones or 'auto'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(base + ["-m", str(VOICE_MODEL), "--format", "wav,ogg"])
    assert main(base + ["-m", str(VOICE_MODEL), "-c", str(VOICE_CONFIG), "-s", "nobody"]) == 2
    assert "nobody" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").glob("*.wav"))


def test_separate_command(song, known_separator, tmp_path, capsys):
    path, stems = song
    code = main(["separate", str(path), "-o", str(tmp_path), "--separator", known_separator, "--format", "flac"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    for stem in ("vocals", "accompaniment"):
        got, sr = sf.read(str(tmp_path / f"song_{stem}.flac"), dtype="float32")
        assert sr == SR and np.abs(got.T - stems[stem]).max() < 1e-4
    assert "separated 6.6 s with known" in printed.out


def test_separate_command_needs_a_model_for_community_families(song, tmp_path, capsys):
    path, _ = song
    assert main(["separate", str(path), "-o", str(tmp_path), "--separator", "mdx"]) == 2
    err = capsys.readouterr().err
    assert "error: " in err and ("model file" in err or "cannot run here" in err)
