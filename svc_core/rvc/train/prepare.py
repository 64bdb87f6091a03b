"""The experiment folder from a dataset: clips -> RVC's pieces -> f0 + content features -> filelist + config.

    summary = prepare_experiment(settings)      # RvcTrainSettings; re-running keeps every file already made

Input (settings.data_dir) is either the output of `python -m svc_core preprocess` (config.json + filelists/: its
44.1 kHz clips, train and val, are used) or a folder of recordings laid out as preprocess takes them (one folder
per speaker, or the audio of one speaker), cut at pauses by the same planner preprocess uses.
"""
from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile as sf

from ...audio import load_audio
from ...constants import ENCODER_SAMPLE_RATE
from ...errors import AudioError, OptionError
from ...f0 import resolve_predictor
from ...preprocess.discover import discover
from ...preprocess.segments import plan_pieces
from ...preprocess.settings import PreprocessSettings
from ...train.dataset import DatasetError, read_filelist
from ..checkpoint import rvc_training_config
from .extract import F0_HOP, Extractor, save_npy
from .layout import ExperimentLayout, FilelistEntry
from .settings import MAX_SPEAKERS, MEL_CHANNELS, RvcTrainSettings
from .slicing import Clip, slice_clip, write_float_wav

log = logging.getLogger("svc_core.train")

MUTE_SECONDS = 3.0  # length of the silent pieces (RVC ships logs/mute/* of about this length)
MUTE_NAME = "mute"
MUTE_LINES_PER_SPEAKER = 2  # RVC adds two mute lines to every filelist
STUDIO_KEY = "svc_studio"  # our notes in config.json (RVC ignores unknown keys)


@dataclass
class PrepareSummary:
    layout: ExperimentLayout
    speakers: dict[str, int]
    pieces: int
    seconds: float
    dropped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    f0_method: str | None = None

    def describe(self) -> str:
        return (f"{self.pieces} pieces ({self.seconds / 60:.1f} min) of {len(self.speakers)} speaker(s) "
                f"{', '.join(f'{k} (id {v})' for k, v in self.speakers.items())}"
                + (f"; {len(self.dropped)} piece(s) dropped" if self.dropped else "")
                + (f"; {len(self.failed)} failed" if self.failed else ""))


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "clip"


def is_preprocessed(data_dir: Path) -> bool:
    return (data_dir / "config.json").is_file() and (data_dir / "filelists" / "train.txt").is_file()


def _speaker_ids(names: list[str], only: str | None) -> dict[str, int]:
    if only is not None:
        if only not in names:
            raise OptionError(f"--speaker {only!r} is not in the data; it has {', '.join(sorted(names)) or 'none'}.")
        return {only: 0}
    if len(names) > MAX_SPEAKERS:
        raise OptionError(f"The data has {len(names)} speakers; an RVC model holds at most {MAX_SPEAKERS}. Pick one "
                          "with --speaker.")
    return {name: i for i, name in enumerate(sorted(names))}


def _load(path: Path, problems: list[tuple[str, str]]) -> tuple[np.ndarray, int] | None:
    """A source's audio, or None (and a note in `problems`) when it cannot be used (silent, broken, ...)."""
    try:
        return load_audio(path)
    except AudioError as err:
        problems.append((path.name, str(err)))
        return None


def source_clips(settings: RvcTrainSettings, problems: list[tuple[str, str]]
                 ) -> tuple[dict[str, int], Iterator[Clip]]:
    """(speaker -> id, the clips to cut) of the data folder (see the module docstring); unusable sources are
    listed in `problems` as (file name, why) while the clips are read."""
    data = settings.data_dir
    if is_preprocessed(data):
        wavs = []
        for split in ("train", "val"):
            listed = data / "filelists" / f"{split}.txt"
            if listed.is_file():
                wavs += read_filelist(listed, data)
        speakers = _speaker_ids(sorted({w.parent.name for w in wavs}), settings.speaker)

        def from_dataset() -> Iterator[Clip]:
            for wav in wavs:
                loaded = _load(wav, problems) if wav.parent.name in speakers else None
                if loaded is not None:
                    yield Clip(loaded[0], loaded[1], speakers[wav.parent.name],
                               _stem(f"{wav.parent.name}_{wav.stem}"))

        return speakers, from_dataset()
    found = discover(data)
    speakers = _speaker_ids(sorted({s.speaker for s in found.sources}), settings.speaker)

    def from_recordings() -> Iterator[Clip]:
        defaults = PreprocessSettings
        for src in found.sources:
            if src.speaker not in speakers:
                continue
            loaded = _load(src.path, problems)
            if loaded is None:
                continue
            audio, sr = loaded
            pieces, _ = plan_pieces(audio, sr, defaults.min_seconds, defaults.max_seconds, defaults.slice_db)
            for k, piece in enumerate(pieces):
                yield Clip(audio[piece.start:piece.end], sr, speakers[src.speaker],
                           _stem(f"{src.speaker}_{src.stem}_{k}"))

    return speakers, from_recordings()


def rvc_config(settings: RvcTrainSettings, speakers: dict[str, int], f0_method: str | None) -> dict:
    """RVC's configs/<version>/<sr>.json for this run (train / data / model sections, with this run's values),
    plus our spk map and notes."""
    doc = rvc_training_config(settings.hparams())
    doc["train"].update({"log_interval": settings.log_interval, "seed": settings.seed, "epochs": settings.epochs,
                         "learning_rate": settings.learning_rate, "betas": list(settings.betas), "eps": settings.eps,
                         "batch_size": settings.batch_size, "fp16_run": False, "lr_decay": settings.lr_decay,
                         "init_lr_ratio": 1, "warmup_epochs": 0, "c_mel": settings.c_mel, "c_kl": settings.c_kl})
    doc["data"].update({"n_mel_channels": MEL_CHANNELS[settings.sample_rate], "mel_fmin": 0.0, "mel_fmax": None})
    doc["spk"] = speakers
    doc[STUDIO_KEY] = {"version": settings.version, "sr": settings.sample_rate, "f0": settings.f0,
                       "size": settings.size, "encoder": settings.encoder_name, "f0_method": f0_method}
    return doc


def check_existing_config(layout: ExperimentLayout, wanted: dict) -> None:
    """OptionError when the experiment folder was made for another version / rate / size / encoder."""
    if not layout.config.is_file():
        return
    try:
        doc = json.loads(layout.config.read_text(encoding="utf-8"))
        old = doc.get(STUDIO_KEY, {})
    except (ValueError, AttributeError):
        raise OptionError(f"'{layout.config}' is not readable JSON; delete it or choose another --out.") from None
    keys = ("version", "sr", "f0", "size", "encoder")
    differ = [f"{k} {old.get(k)!r} -> {wanted[STUDIO_KEY][k]!r}" for k in keys
              if k in old and old.get(k) != wanted[STUDIO_KEY][k]]
    if not differ and isinstance(doc.get("model"), dict) and doc["model"] != wanted["model"]:
        differ = ["the network sizes"]
    if differ:
        raise OptionError(f"The experiment folder '{layout.root}' was prepared with other settings ("
                          + "; ".join(differ) + "). Use the same settings or another --out folder.")


def _write_mute(layout: ExperimentLayout, extractor: Extractor, model_sr: int) -> None:
    """RVC's silent training pieces (it ships them in logs/mute; made here with our encoder)."""
    mute = layout.mute()
    files = mute.piece_files(MUTE_NAME)
    if not files["gt"].is_file():
        write_float_wav(files["gt"], np.zeros(int(MUTE_SECONDS * model_sr), np.float32), model_sr)
    if not files["16k"].is_file():
        write_float_wav(files["16k"], np.zeros(int(MUTE_SECONDS * ENCODER_SAMPLE_RATE), np.float32),
                        ENCODER_SAMPLE_RATE)
    if extractor.f0_method and not (files["coarse"].is_file() and files["hz"].is_file()):
        frames = int(MUTE_SECONDS * ENCODER_SAMPLE_RATE) // F0_HOP
        save_npy(files["hz"], np.zeros(frames, np.float64))
        save_npy(files["coarse"], np.ones(frames, np.int64))
    if not files["feature"].is_file():
        save_npy(files["feature"], extractor.features(np.zeros(int(MUTE_SECONDS * ENCODER_SAMPLE_RATE),
                                                                np.float32)))


def write_filelist(layout: ExperimentLayout, pieces: dict[str, int], speakers: dict[str, int], f0: bool,
                   seed: int) -> list[FilelistEntry]:
    """filelist.txt: every piece (+ RVC's mute lines per speaker), shuffled with `seed` as RVC shuffles."""
    entries = []
    for piece, sid in sorted(pieces.items()):
        files = layout.piece_files(piece)
        entries.append(FilelistEntry(files["gt"], files["feature"], files["coarse"] if f0 else None,
                                     files["hz"] if f0 else None, sid))
    mute = layout.mute().piece_files(MUTE_NAME)
    for sid in sorted(speakers.values()):
        for _ in range(MUTE_LINES_PER_SPEAKER):
            entries.append(FilelistEntry(mute["gt"], mute["feature"], mute["coarse"] if f0 else None,
                                         mute["hz"] if f0 else None, sid))
    random.Random(seed).shuffle(entries)
    tmp = layout.filelist.with_name(layout.filelist.name + ".partial")
    tmp.write_text("\n".join(e.line() for e in entries) + "\n", encoding="utf-8")
    tmp.replace(layout.filelist)
    return entries


def prepare_experiment(settings: RvcTrainSettings, progress: Callable[[str], None] | None = None
                       ) -> PrepareSummary:
    """Make (or complete) the experiment folder of `settings`; returns what it holds."""
    say = progress or log.info
    settings.validate()
    hp = settings.hparams()
    layout = ExperimentLayout(settings.out_dir, settings.version)
    f0_method = resolve_predictor(settings.f0_method, settings.f0_weights) if settings.f0 else None
    extractor = Extractor(settings.encoder_name, hp.content_dim, settings.encoder_path, f0_method,
                          settings.f0_weights, settings.device)
    dropped: list[tuple[str, str]] = []
    try:
        speakers, clips = source_clips(settings, dropped)
    except DatasetError as err:
        raise OptionError(f"{err}") from None
    if not speakers:
        raise AudioError(f"No audio found in '{settings.data_dir}': pass a preprocessed dataset (config.json + "
                         "filelists/) or a folder of recordings (one folder per speaker).")
    config = rvc_config(settings, speakers, f0_method)
    check_existing_config(layout, config)
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.config.write_text(json.dumps(config, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")
    pieces: dict[str, int] = {}
    for n, clip in enumerate(clips, 1):
        result = slice_clip(clip, layout, hp.sr)
        pieces.update({p: clip.sid for p in result.pieces})
        dropped += result.dropped
        if n % 20 == 0:
            say(f"cut {n} clips into {len(pieces)} pieces")
    if not pieces:
        raise AudioError(f"No training piece could be cut from '{settings.data_dir}'"
                         + (f" ({len(dropped)} dropped, e.g. {dropped[0][0]}: {dropped[0][1]})" if dropped else "")
                         + ". The recordings are silent, unreadable or shorter than half a second.")
    say(f"{len(pieces)} pieces in {layout.gt_wavs}; extracting f0 ({f0_method or 'none'}) and "
        f"{settings.encoder_name} features")
    failed: list[tuple[str, str]] = []
    for n, piece in enumerate(sorted(pieces), 1):
        try:
            extractor.extract(layout, piece)
        except AudioError as err:
            failed.append((piece, str(err)))
        if n % 50 == 0 or n == len(pieces):
            say(f"features {n}/{len(pieces)}")
    for piece, _ in failed:
        pieces.pop(piece, None)
    if not pieces:
        raise AudioError(f"Feature extraction failed for every piece, e.g. {failed[0][0]}: {failed[0][1]}")
    _write_mute(layout, extractor, hp.sr)
    write_filelist(layout, pieces, speakers, settings.f0, settings.seed)
    seconds = sum(sf.info(str(layout.piece_files(p)["gt"])).frames for p in pieces) / hp.sr
    return PrepareSummary(layout, speakers, len(pieces), seconds, dropped, failed, f0_method)
