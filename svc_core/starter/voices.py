"""The four starter target voices and the keys they sing in.

Speaking pitch of the engines (median speech F0, rounded to a semitone, minus 3 semitones) gives each voice's
`tonic_midi`: awb 45 (A2), rms 41 (F2), slt 50 (D3), ked 41 (F2), the keys the evaluation corpus uses too. A voice
sings over `SPAN_SEMITONES` (an octave and a half) from `tonic_midi - 6` upwards, so a conversion with the usual
transposes (a fifth below to an octave above the key) stays inside what the model was trained on.
"""
from __future__ import annotations

from dataclasses import dataclass

SPAN_SEMITONES = 18  # an octave and a half
BELOW_TONIC = 6  # the range starts this many semitones under the tonic


@dataclass(frozen=True)
class StarterVoice:
    """A target voice: `id` is its speaker name in the model (and a phonevec voice id)."""

    id: str
    engine: str  # "flite" or "festival"
    name: str  # the engine's voice name
    label: str
    tonic_midi: int

    @property
    def low_midi(self) -> int:
        """Lowest note it sings."""
        return self.tonic_midi - BELOW_TONIC

    @property
    def high_midi(self) -> int:
        """Highest note it sings."""
        return self.low_midi + SPAN_SEMITONES


STARTER_VOICES: tuple[StarterVoice, ...] = (
    StarterVoice("flite_awb", "flite", "awb", "flite awb (Scottish English, male)", 45),
    StarterVoice("flite_rms", "flite", "rms", "flite rms (US English, male)", 41),
    StarterVoice("flite_slt", "flite", "slt", "flite slt (US English, female)", 50),
    StarterVoice("fest_ked", "festival", "ked_diphone", "festival ked_diphone (US English, male)", 41),
)
STARTER_VOICE_IDS: tuple[str, ...] = tuple(v.id for v in STARTER_VOICES)


def starter_voice(voice_id: str) -> StarterVoice:
    """The StarterVoice called `voice_id`; KeyError lists the known ones."""
    for voice in STARTER_VOICES:
        if voice.id == voice_id:
            return voice
    raise KeyError(f"unknown starter voice {voice_id!r}; known: {', '.join(STARTER_VOICE_IDS)}")
