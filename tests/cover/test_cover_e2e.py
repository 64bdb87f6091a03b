"""The cover of a synthetic song end to end with the WORLD starter voice and a separator that returns the true
stems: stems exist with equal lengths, the converted vocal follows the original melody, the mix is at the target
loudness and below the ceiling, a second run reuses the separated stems."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from cover.songs import SR, VOICE_CONFIG, VOICE_MODEL
from svc_core.cover import STAGES, STEM_NAMES, CoverRequest, run_cover
from svc_core.cover.key import vocal_midi
from svc_core.cover.loudness import integrated_lufs


def test_cover_of_a_synthetic_song(song, known_separator, tmp_path):
    path, stems = song
    seen = []
    request = CoverRequest(path, VOICE_MODEL, VOICE_CONFIG, speaker="flite_slt", separator=known_separator,
                           options={"f0_predictor": "pm"}, transpose=0, target_lufs=-16.0,
                           formats=("wav", "flac", "mp3"), zip=True)
    result = run_cover(request, tmp_path, progress=lambda s, f, m: seen.append((s, f)))
    print(result)
