"""What a cover returns: where its stems are, which transpose it used and why, how loud the mix is, and timings."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

# the stages of run_cover, in the order they run; progress(stage, fraction 0..1, message)
STAGES = ("separate", "key", "convert", "remix", "export")
STEM_NAMES = ("original_vocals", "converted_vocals", "accompaniment", "mix")
CoverProgress = Callable[[str, float, str], None]


@dataclass(frozen=True)
class KeySuggestion:
    """The auto-transpose suggestion: song vocal range vs the voice's range, in MIDI note numbers (69 = A4)."""

    semitones: int  # what transpose="auto" uses: `any_key` when the accompaniment moves too, else `octaves`
    any_key: int  # semitones that centre the song's vocal in the voice's range (the accompaniment must move too)
    octaves: int  # the nearest multiple of 12: keeps the song's key with the accompaniment as it is
    song_median: float  # MIDI, median of the lead vocal's voiced frames
    song_low: float  # MIDI, 5th percentile
    song_high: float  # MIDI, 95th percentile
    voice_low: float  # MIDI
    voice_high: float  # MIDI
    voice_source: str  # where the voice's range comes from ("manifest.json speaker flite_slt", "assumed ...")
    explanation: str  # one paragraph a person reads


@dataclass
class CoverResult:
    """Paths of the written files and what the cover did."""

    stems: dict[str, dict[str, Path]]  # stem (STEM_NAMES) -> format -> file
    zip_path: Optional[Path]
    transpose: float  # semitones used for the vocal
    accompaniment_shift: float  # semitones the accompaniment was moved (0 unless shift_accompaniment)
    suggestion: Optional[KeySuggestion]
    mix_lufs: float  # integrated loudness of the exported mix (BS.1770, LUFS)
    mix_peak_db: float  # sample peak of the mix, dBFS
    sample_rate: int  # Hz of every stem
    seconds: float  # length of every stem
    separator: str  # label of the separator(s) used
    separation_cached: bool  # the stems came from the out folder's cache (same song, same separator)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # STAGES -> wall seconds
    notes: list[str] = field(default_factory=list)  # things a person should know (file ends early, ...)

    def files(self) -> list[Path]:
        """Every written stem file (not the zip)."""
        return [p for by_format in self.stems.values() for p in by_format.values()]
