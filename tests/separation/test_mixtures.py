"""The synthetic song generator: deterministic per seed, stems sum to the mixture, disjoint splits, the set folder
format the separation bench reads, the writer CLI. Real engines (flite/festival/espeak-ng, fluidsynth, Debian GM
soundfonts); tiny clips."""
from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
import soundfile as sf

from svc_core.errors import OptionError
from svc_core.separation.mixtures import make_song, read_clip
from svc_core.separation.mixtures import splits
from svc_core.separation.mixtures.__main__ import main as mixtures_main
from svc_core.separation.mixtures.midi import AccompanimentPlan, ProgramChoice, make_arrangement
from svc_core.separation.mixtures.writer import SetSettings, write_set

TOOLS = ("fluidsynth", "flite", "espeak-ng", "festival")


def need_tools(split: str) -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"needs the Debian tools {', '.join(missing)} (.ci/run installs them)")
    try:
        splits.soundfonts_for(split)
    except OptionError as err:
        pytest.skip(str(err))


def test_song_is_deterministic_and_its_stems_sum_to_the_mixture():
    need_tools("train")
    a = make_song("train", 3, seconds=2.0)
    b = make_song("train", 3, seconds=2.0)
    assert a.mixture.shape == a.vocals.shape == a.accompaniment.shape == (2, 88200)
    assert a.mixture.dtype == np.float32
    assert np.array_equal(a.mixture, b.mixture) and np.array_equal(a.vocals, b.vocals)
    assert a.meta == b.meta
    assert np.array_equal(a.mixture, a.vocals + a.accompaniment)
    # both stems carry sound, the mix does not clip, and the vocal level follows the plan's range
    assert np.sqrt(np.mean(a.vocals ** 2)) > 1e-3 and np.sqrt(np.mean(a.accompaniment ** 2)) > 1e-3
    assert np.max(np.abs(a.mixture)) <= 10 ** (-1.0 / 20) + 1e-6
    assert -10.0 <= a.meta["vocal_level_db"] <= 6.0
    other = make_song("train", 4, seconds=2.0)
    assert not np.array_equal(other.mixture, a.mixture)


def test_splits_share_no_voice_program_kit_or_soundfont():
    for a, b in (("train", "test"),):
        assert not {v.id for v in splits.VOICES[a]} & {v.id for v in splits.VOICES[b]}
        assert not {v.name for v in splits.VOICES[a]} & {v.name for v in splits.VOICES[b]}
        assert not set(splits.SOUNDFONTS[a]) & set(splits.SOUNDFONTS[b])
        assert not set(splits.DRUM_KITS[a]) & set(splits.DRUM_KITS[b])
        for part in splits.PART_PROGRAMS:
            assert splits.programs_for(a, part) and splits.programs_for(b, part)
            assert not set(splits.programs_for(a, part)) & set(splits.programs_for(b, part))
    with pytest.raises(OptionError, match="Unknown split"):
        splits.check_split("valid")


def test_arrangement_is_a_valid_midi_file():
    plan = AccompanimentPlan(45, "minor", 100.0, 4.0, ProgramChoice(0, 33, 73, 56, 0),
                             melody=[(0.5, 0.5, 57), (1.0, 1.0, 60)], double_melody=True)
    smf = make_arrangement(plan, np.random.default_rng(0)).to_smf()
    assert smf[:4] == b"MThd"
    fmt, tracks, division = struct.unpack(">HHH", smf[8:14])
    assert fmt == 1 and division == 480
    assert smf.count(b"MTrk") == tracks >= 3
    assert smf == make_arrangement(plan, np.random.default_rng(0)).to_smf()


def test_test_set_folder_format(tmp_path):
    need_tools("test")
    manifest = write_set(SetSettings(str(tmp_path), "test", n=2, seconds=2.0))
    doc = json.loads(open(manifest, encoding="utf-8").read())
    assert doc["split"] == "test" and [item["id"] for item in doc["items"]] == ["test_00000", "test_00001"]
    for item in doc["items"]:
        for key in ("voice", "soundfont", "programs", "melody_seed", "vocal_level_db"):
            assert key in item
        assert item["soundfont"] in splits.SOUNDFONTS["test"]
        assert item["voice"] in {v.id for v in splits.VOICES["test"]}
        folder = tmp_path / item["id"]
        for stem in ("mixture", "vocals", "accompaniment"):
            info = sf.info(str(folder / f"{stem}.wav"))
            assert (info.samplerate, info.channels, info.subtype, info.frames) == (44100, 2, "FLOAT", 88200)
        stems = read_clip(str(folder))
        assert np.array_equal(stems["mixture"], stems["vocals"] + stems["accompaniment"])
    # a rerun keeps the clips (same bytes) and completes the set
    before = (tmp_path / "test_00000" / "mixture.wav").stat().st_mtime_ns
    assert mixtures_main(["--split", "test", "--n", "2", "--seconds", "2", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "test_00000" / "mixture.wav").stat().st_mtime_ns == before
