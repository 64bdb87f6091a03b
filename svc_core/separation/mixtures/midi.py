"""A seeded accompaniment generator (chords, bass, drums, counter-melody, optional melody doubling) written as a
Standard MIDI File by hand (format 1, a few dozen bytes of header; no MIDI library needed).

    arrangement = make_arrangement(AccompanimentPlan(tonic_midi=45, scale="major", bpm=110, seconds=8.0,
                                                     programs=ProgramChoice(...)), rng)
    Path("song.mid").write_bytes(arrangement.to_smf())

Times are in beats (quarter notes); the file carries the tempo, so fluidsynth renders it at `bpm`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # GM percussion channel (channel 10 counted from 1)

# GM drum notes
KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH, CLAP, LOW_TOM = 36, 38, 42, 46, 51, 49, 39, 45

# Diatonic triads by scale: degree offsets of chord roots used in progressions
PROGRESSIONS: tuple[tuple[int, ...], ...] = (
    (0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4), (0, 4, 3, 4), (0, 5, 1, 4),
)


@dataclass(frozen=True)
class Note:
    """One note: start and length in beats, MIDI pitch, velocity 1..127."""

    start: float
    length: float
    pitch: int
    velocity: int


@dataclass
class Track:
    """One MIDI track on one channel with one GM program (drums: channel 9, program = drum kit)."""

    name: str
    channel: int
    program: int
    pan: int  # CC10, 0 (left) .. 127 (right)
    volume: int  # CC7, 0..127
    notes: list[Note] = field(default_factory=list)


@dataclass
class ProgramChoice:
    """GM programs (0..127) for each part; drum_kit is the program on the drum channel."""

    chords: int
    bass: int
    counter: int
    doubling: int
    drum_kit: int


@dataclass
class AccompanimentPlan:
    """What to write: key (tonic MIDI note + scale name of starter.melody.SCALES), tempo, length and programs."""

    tonic_midi: int
    scale: str
    bpm: float
    seconds: float
    programs: ProgramChoice
    melody: list[tuple[float, float, int]] = field(default_factory=list)  # (start_s, length_s, midi) to double
    double_melody: bool = False


@dataclass
class Arrangement:
    bpm: float
    tracks: list[Track]

    def to_smf(self) -> bytes:
        """The arrangement as a format-1 Standard MIDI File (bytes)."""
        chunks = [_tempo_track(self.bpm)] + [_track_bytes(t) for t in self.tracks]
        header = b"MThd" + struct.pack(">IHHH", 6, 1, len(chunks), TICKS_PER_BEAT)
        return header + b"".join(chunks)

    def describe(self) -> dict:
        return {t.name: {"program": t.program, "channel": t.channel, "notes": len(t.notes)} for t in self.tracks}


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _chunk(events: list[tuple[int, bytes]]) -> bytes:
    """events: (absolute tick, message bytes) -> an MTrk chunk with delta times and end-of-track."""
    data, now = bytearray(), 0
    for tick, message in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):  # note-offs first
        data += _varlen(tick - now) + message
        now = tick
    data += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(data)) + bytes(data)


def _tempo_track(bpm: float) -> bytes:
    micros = int(round(60_000_000 / bpm))
    return _chunk([(0, b"\xff\x51\x03" + micros.to_bytes(3, "big"))])


def _track_bytes(track: Track) -> bytes:
    ch = track.channel
    events = [(0, bytes([0xC0 | ch, track.program & 0x7F])),
              (0, bytes([0xB0 | ch, 10, track.pan & 0x7F])),
              (0, bytes([0xB0 | ch, 7, track.volume & 0x7F]))]
    for n in track.notes:
        on = int(round(n.start * TICKS_PER_BEAT))
        off = max(on + 1, int(round((n.start + n.length) * TICKS_PER_BEAT)))
        events.append((on, bytes([0x90 | ch, n.pitch & 0x7F, max(1, min(127, n.velocity))])))
        events.append((off, bytes([0x80 | ch, n.pitch & 0x7F, 0])))
    return _chunk(events)


def _scale_pitch(tonic: int, steps: tuple[int, ...], degree: int) -> int:
    """Pitch of scale `degree` (may be negative or beyond one octave) above `tonic`."""
    octave, index = divmod(degree, len(steps))
    return tonic + 12 * octave + steps[index]


def _triad(tonic: int, steps: tuple[int, ...], root_degree: int) -> list[int]:
    if len(steps) == 7:
        return [_scale_pitch(tonic, steps, root_degree + d) for d in (0, 2, 4)]
    major = (0, 4, 7)  # pentatonic: plain major/minor triads on the root
    root = _scale_pitch(tonic, (0, 2, 4, 5, 7, 9, 11), root_degree)
    return [root + d for d in major]


def _drums(rng: np.random.Generator, beats: int, style: int) -> list[Note]:
    notes: list[Note] = []
    sub = 0.5 if style != 2 else 0.25  # hat subdivision
    for bar in range(0, beats, 4):
        if bar % 16 == 0:
            notes.append(Note(bar, 0.5, CRASH, int(rng.integers(80, 110))))
        for b in range(4):
            t = bar + b
            if style == 0:  # rock: kick 1, 3; snare 2, 4
                if b in (0, 2):
                    notes.append(Note(t, 0.25, KICK, int(rng.integers(95, 120))))
                else:
                    notes.append(Note(t, 0.25, SNARE, int(rng.integers(85, 115))))
            elif style == 1:  # four on the floor + clap
                notes.append(Note(t, 0.25, KICK, int(rng.integers(95, 120))))
                if b in (1, 3):
                    notes.append(Note(t, 0.25, CLAP, int(rng.integers(80, 110))))
            else:  # half-time
                if b == 0 or (b == 2 and rng.random() < 0.5):
                    notes.append(Note(t + (0.5 if b == 2 else 0.0), 0.25, KICK, int(rng.integers(95, 120))))
                if b == 2:
                    notes.append(Note(t, 0.25, SNARE, int(rng.integers(90, 120))))
            hat = RIDE if rng.random() < 0.15 else CLOSED_HAT
            for k in range(int(round(1 / sub))):
                pitch = OPEN_HAT if k and rng.random() < 0.08 else hat
                notes.append(Note(t + k * sub, sub * 0.8, pitch, int(rng.integers(50, 90))))
        if rng.random() < 0.3:  # a fill on the last beat
            notes += [Note(bar + 3 + k * 0.25, 0.2, LOW_TOM + 2 * k, int(rng.integers(80, 110))) for k in range(4)]
    return notes


def make_arrangement(plan: AccompanimentPlan, rng: np.random.Generator) -> Arrangement:
    """A seeded arrangement over ceil(seconds) worth of bars (every random choice from `rng`)."""
    from svc_core.starter.melody import SCALES

    steps = SCALES[plan.scale]
    beat_s = 60.0 / plan.bpm
    beats = int(np.ceil(plan.seconds / beat_s / 4.0)) * 4 + 4
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    bar_beats = 4 if rng.random() < 0.7 else 2  # chord change per bar or per half bar
    key_root = plan.tonic_midi % 12 + 48  # chords around C3..B3
    chords = Track("chords", 0, plan.programs.chords, int(rng.integers(20, 108)), int(rng.integers(70, 110)))
    bass = Track("bass", 1, plan.programs.bass, int(rng.integers(52, 76)), int(rng.integers(80, 115)))
    counter = Track("counter", 2, plan.programs.counter, int(rng.integers(10, 118)), int(rng.integers(55, 95)))
    comp_style = int(rng.integers(3))  # 0 sustained, 1 re-struck on beats, 2 arpeggio
    bass_style = int(rng.integers(3))  # 0 roots on 1, 1 eighth roots, 2 root-fifth walk
    for i, start in enumerate(range(0, beats, bar_beats)):
        degree = progression[i % len(progression)]
        triad = _triad(key_root, steps, degree)
        if rng.random() < 0.5:  # inversion
            triad = triad[1:] + [triad[0] + 12]
        vel = int(rng.integers(60, 95))
        if comp_style == 0:
            chords.notes += [Note(start, bar_beats * 0.95, p, vel) for p in triad]
        elif comp_style == 1:
            for b in range(bar_beats):
                chords.notes += [Note(start + b, 0.8, p, vel - 10 * (b % 2)) for p in triad]
        else:
            pattern = triad + [triad[1]]
            for k in range(bar_beats * 2):
                chords.notes.append(Note(start + 0.5 * k, 0.45, pattern[k % 4], vel))
        root = _triad(key_root, steps, degree)[0] - 24
        if bass_style == 0:
            bass.notes.append(Note(start, bar_beats * 0.9, root, vel + 15))
        elif bass_style == 1:
            bass.notes += [Note(start + 0.5 * k, 0.4, root, vel + 10 - 8 * (k % 2)) for k in range(bar_beats * 2)]
        else:
            bass.notes += [Note(start + b, 0.9, root + (7 if b % 2 else 0), vel + 10) for b in range(bar_beats)]
        # counter-melody: a few scale notes an octave above the chords, on off-beats
        if rng.random() < 0.8:
            t = start + float(rng.choice([0.5, 1.0, 1.5]))
            while t < start + bar_beats - 0.25:
                length = float(rng.choice([0.5, 1.0, 1.5]))
                pitch = _scale_pitch(key_root + 12, steps, int(rng.integers(-2, 8)))
                counter.notes.append(Note(t, min(length, start + bar_beats - t), pitch, vel - 5))
                t += length + float(rng.choice([0.0, 0.5, 1.0]))
    drums = Track("drums", DRUM_CHANNEL, plan.programs.drum_kit, int(rng.integers(54, 74)), int(rng.integers(80, 115)),
                  _drums(rng, beats, int(rng.integers(3))))
    tracks = [chords, bass, drums] + ([counter] if counter.notes else [])
    if plan.double_melody and plan.melody:  # an instrument plays the sung line, quieter, an octave or unison
        shift = int(rng.choice([0, 12, -12]))
        doubling = Track("doubling", 3, plan.programs.doubling, int(rng.integers(20, 108)), int(rng.integers(45, 75)))
        doubling.notes = [Note(s / beat_s, length / beat_s, m + shift, 70) for s, length, m in plan.melody]
        tracks.append(doubling)
    if rng.random() < 0.15:  # sometimes no drums
        tracks.remove(drums)
    return Arrangement(plan.bpm, tracks)
