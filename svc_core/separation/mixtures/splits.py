"""What the `train` and `test` splits are made of: disjoint voices, GM programs, soundfonts and melody seeds.

* voices: TTS engines singing (flite/festival phone-aligned, `phonevec.singing.sing_phrase`) or re-pitched speech
  (espeak-ng, no phone timings: the melody is laid over the voiced frames) or plain speech; the test voices are
  never heard in training;
* GM programs: every program whose number is 1 modulo 4 (1, 5, 9, ...) is test-only, the rest train-only;
  drum kits likewise (train: Standard 0, Room 8, Power 16; test: Electronic 24, Jazz 32, Brush 40);
* soundfonts: train renders with FluidR3_GM (fluid-soundfont-gm), test with TimGM6mb and MuseScore_General
  (Debian timgm6mb-soundfont, musescore-general-soundfont);
* melody / arrangement seeds: train seeds are drawn as [TRAIN_SEED, index], test as [TEST_SEED, index], and the
  sentences sung come from different generator seeds.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ...errors import OptionError

SPLITS = ("train", "test")
TRAIN_SEED = 1103
TEST_SEED = 90210
SENTENCE_SEEDS = {"train": 5501, "test": 7702}
SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3")
SOUNDFONTS = {
    "train": ("FluidR3_GM.sf2",),
    "test": ("TimGM6mb.sf2", "MuseScore_General.sf3"),
}
SOUNDFONT_PACKAGES = {"FluidR3_GM.sf2": "fluid-soundfont-gm", "TimGM6mb.sf2": "timgm6mb-soundfont",
                      "MuseScore_General.sf3": "musescore-general-soundfont"}


@dataclass(frozen=True)
class VocalVoice:
    """A vocal source: `engine` flite | festival | espeak; `style` sing (phone-aligned), repitch (espeak speech on a
    melody) ; `tonic_midi` the centre of the range it sings in."""

    id: str
    engine: str
    name: str
    tonic_midi: int


VOICES = {
    "train": (
        VocalVoice("flite_awb", "flite", "awb", 45), VocalVoice("flite_rms", "flite", "rms", 41),
        VocalVoice("fest_ked", "festival", "ked_diphone", 41), VocalVoice("esp_m1", "espeak", "en-us+m1", 45),
        VocalVoice("esp_m3", "espeak", "en-us+m3", 43), VocalVoice("esp_m4", "espeak", "en-us+m4", 47),
        VocalVoice("esp_f1", "espeak", "en-us+f1", 57), VocalVoice("esp_f3", "espeak", "en-us+f3", 60),
        VocalVoice("esp_m5", "espeak", "en-gb+m5", 46), VocalVoice("esp_f2", "espeak", "en-gb+f2", 58),
    ),
    "test": (
        VocalVoice("flite_slt", "flite", "slt", 52), VocalVoice("flite_kal", "flite", "kal", 44),
        VocalVoice("esp_m7", "espeak", "en-us+m7", 44), VocalVoice("esp_f4", "espeak", "en-us+f4", 59),
        VocalVoice("esp_f5", "espeak", "en-gb+f5", 57), VocalVoice("esp_m2", "espeak", "en-gb+m2", 48),
    ),
}
DRUM_KITS = {"train": (0, 8, 16), "test": (24, 32, 40)}

# GM program ranges for each part (before the split's held-out filter)
PART_PROGRAMS = {
    "chords": tuple(range(0, 8)) + tuple(range(16, 32)) + tuple(range(48, 56)) + tuple(range(88, 96)),
    "bass": tuple(range(32, 40)),
    "counter": tuple(range(8, 16)) + tuple(range(40, 48)) + tuple(range(56, 88)),
    "doubling": tuple(range(0, 8)) + tuple(range(40, 44)) + tuple(range(56, 80)),
}


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise OptionError(f"Unknown split '{split}'; choose one of: {', '.join(SPLITS)}.")
    return split


def programs_for(split: str, part: str) -> tuple[int, ...]:
    """GM programs of `part` in `split`: test keeps program % 4 == 1, train the rest."""
    check_split(split)
    test = split == "test"
    return tuple(p for p in PART_PROGRAMS[part] if (p % 4 == 1) == test)


def find_soundfont(name: str) -> str | None:
    for folder in SOUNDFONT_DIRS:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def soundfonts_for(split: str) -> list[str]:
    """Paths of the split's soundfonts that are installed; OptionError naming the Debian packages if none."""
    found = [p for p in (find_soundfont(n) for n in SOUNDFONTS[check_split(split)]) if p]
    if not found:
        packages = " ".join(SOUNDFONT_PACKAGES[n] for n in SOUNDFONTS[split])
        raise OptionError(f"No soundfont for the {split} split is installed; apt-get install -y {packages}")
    return found
