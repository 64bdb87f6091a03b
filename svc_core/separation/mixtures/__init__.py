"""Synthetic songs for training and testing separation: TTS vocals over MIDI accompaniment rendered with
fluidsynth, mixed with room responses, EQ, levels and stereo placement (song.py), in disjoint train/test splits
(splits.py), written as folders of stems (writer.py; `python -m svc_core.separation.mixtures`)."""
from .song import Song, make_song
from .splits import SPLITS
from .writer import SetSettings, read_clip, write_set

__all__ = ["SPLITS", "SetSettings", "Song", "make_song", "read_clip", "write_set"]
