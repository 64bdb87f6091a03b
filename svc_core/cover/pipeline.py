"""`run_cover`: separate -> key -> convert -> remix -> export, with per-stage progress and cancellation.

    from svc_core.cover import CoverRequest, run_cover
    result = run_cover(CoverRequest("song.mp3", "voices/starter/W_5000.pth", "voices/starter/config.json",
                                    speaker="flite_slt", transpose="auto"), "covers/")

The voice is loaded (and its options checked) before separation, so a wrong model or option costs no separation
time. Stems are cached in the out folder per (song, separator passes) (svc_core.cover.stems_cache).
"""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional

import numpy as np

from .. import cancel
from ..errors import ModelError, OptionError
from ..separation.base import ACCOMPANIMENT, VOCALS
from . import stems_cache
from .key import shift_pitch, suggest_transpose, vocal_midi, voice_range
from .remix import MixSettings, remix
from .request import CoverRequest
from .result import STAGES, CoverProgress, CoverResult, KeySuggestion

LEAD_EXTRA = ("lead_vocals", "backing_vocals")  # a separator that splits lead from backing itself returns these


class _Stages:
    """Per-stage progress (stage, fraction, message) and wall time; a cancellation checkpoint at each report."""

    def __init__(self, progress: Optional[CoverProgress]) -> None:
        self.progress = progress
        self.seconds: dict[str, float] = {}

    def report(self, stage: str, fraction: float, message: str = "") -> None:
        cancel.checkpoint()
        if self.progress is not None:
            self.progress(stage, float(min(1.0, max(0.0, fraction))), message)

    @contextmanager
    def stage(self, name: str, message: str = "") -> Iterator[None]:
        assert name in STAGES
        start = time.perf_counter()
        self.report(name, 0.0, message)
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
        self.report(name, 1.0, "done")


def load_voice(request: CoverRequest, device: str = "cpu"):
    """The request's voice as an Svc (so-vits, WORLD, RVC, RVC ONNX) or OnnxSvc (so-vits ONNX export)."""
    from .. import families
    from ..paths import require_file

    if request.voice_model is None:
        raise OptionError("A cover needs a voice: give voice_model (and voice_config for so-vits / WORLD voices).")
    model = require_file(request.voice_model, "Voice model", ModelError)
    config = None if request.voice_config is None else require_file(request.voice_config, "Voice config", ModelError)
    cluster = None if request.cluster_path is None else os.fspath(request.cluster_path)
    kind = families.identify(model, config)
    if kind.name == "so-vits-onnx":
        from ..onnx import OnnxSvc

        return OnnxSvc(model, config, cluster_path=cluster)
    if kind.needs_config and config is None:
        raise OptionError(f"'{os.path.basename(model)}' is a {kind.label} model: it needs its config.json "
                          "(voice_config / -c).")
    from ..pipeline import Svc

    return Svc(model, config, cluster_path=cluster, device=device)


def conversion_options(voice, request: CoverRequest) -> tuple[dict[str, Any], str]:
    """(ConvertOptions keywords without transpose / f0_predictor, f0 predictor name), checked against the voice's
    family now (OptionError before any separation)."""
    from .. import families
    from ..f0 import resolve_predictor
    from ..options import ConvertOptions

    options = dict(request.options)
    given = options.pop("f0_predictor", None) or options.pop("f0_method", None)
    f0_name = resolve_predictor(given or "auto", getattr(voice, "f0_weights", {}).get("rmvpe"))
    opts = ConvertOptions.from_kwargs(voice.option_defaults(), f0_predictor=f0_name, **options)
    families.check_options(voice.family, opts, has_f0=bool(getattr(voice.model, "has_f0", True)))
    return options, f0_name


def _speaker_weights(voice, speaker: Any) -> dict[str, float]:
    """The speaker as {name: weight}, checked (SpeakerError names the valid ones)."""
    config = voice.config
    if isinstance(speaker, Mapping):
        for name in speaker:
            config.speaker_id(name)
        return {str(k): float(v) for k, v in speaker.items()}
    if speaker is None:
        return {config.speaker_name(config.only_speaker("speaker (CoverRequest.speaker / -s)")): 1.0}
    return {config.speaker_name(config.speaker_id(speaker)): 1.0}


def _separation_passes(request: CoverRequest) -> list[tuple[str, Optional[str], str]]:
    passes = [(request.separator, request.separator_model, "separate")]
    if request.lead_separator:
        passes.append((request.lead_separator, request.lead_model, "lead"))
    if request.dereverb_separator:
        passes.append((request.dereverb_separator, request.dereverb_model, "dereverb"))
    return [(n, None if m is None else os.fspath(m), role) for n, m, role in passes]


def separate_song(song: np.ndarray, sr: int, request: CoverRequest, stages: _Stages,
                  cache_dir: Optional[Path]) -> tuple[np.ndarray, np.ndarray, str, bool]:
    """song [2, N] -> (lead vocal [2, N], accompaniment [2, N] (with any backing vocals), label, from cache)."""
    from ..separation.registry import get_separator

    passes = _separation_passes(request)
    key = stems_cache.cache_key(song, sr, [(n, m) for n, m, _ in passes]) if cache_dir is not None else ""
    if cache_dir is not None:
        cached = stems_cache.load(cache_dir, key)
        if cached is not None and cached[0].shape == song.shape:
            stages.report("separate", 1.0, f"stems from the cache ({cached[2]})")
            return cached[0], cached[1], cached[2], True
    vocals, accompaniment, labels = song, None, []
    for index, (name, model, role) in enumerate(passes):
        separator = get_separator(name, model)
        labels.append(separator.label + (f" ({role})" if role != "separate" else ""))

        def chunk_progress(done: int, total: int, index: int = index, label: str = labels[-1]) -> None:
            stages.report("separate", (index + done / total) / len(passes), f"{label}: chunk {done}/{total}")

        stems = separator.separate(vocals, sr, chunk_progress)
        lead, rest = stems.vocals, stems.accompaniment
        if all(k in stems.extra for k in LEAD_EXTRA) and role == "separate":
            lead = stems.extra[LEAD_EXTRA[0]]
            rest = rest + stems.extra[LEAD_EXTRA[1]]
        if role == "separate":
            accompaniment = rest
        elif role == "lead":
            accompaniment = accompaniment + rest  # backing vocals stay, unconverted, with the accompaniment
        # "dereverb": the removed reverb is dropped (request.reverb adds a room to the converted vocal)
        vocals = lead
        del stems
    label = " + ".join(labels)
    if cache_dir is not None:
        stems_cache.store(cache_dir, key, vocals, accompaniment, label)
    return vocals.astype(np.float32), accompaniment.astype(np.float32), label, False


def convert_vocal(voice, vocals: np.ndarray, sr: int, speaker: Any, transpose: float, options: Mapping[str, Any],
                  f0_name: str, stages: _Stages) -> np.ndarray:
    """Lead vocal [2, N] -> converted vocal [2, N] at `sr`: converted in mono, then spread over the channels with
    the original vocal's left/right balance."""
    from ..audio import resample
    from ..options import ConvertOptions

    mono = vocals.mean(axis=0)
    out = voice.slice_inference(mono, sr, speaker, transpose=transpose, f0_predictor=f0_name, cache=False,
                                progress=lambda f, m: stages.report("convert", f, m), **options)
    rate = voice.output_rate(ConvertOptions.from_kwargs(voice.option_defaults(), f0_predictor=f0_name, **options))
    out = resample(np.asarray(out, np.float32), rate, sr) if rate != sr else np.asarray(out, np.float32)
    n = vocals.shape[1]
    out = out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))
    rms = np.sqrt(np.mean(vocals.astype(np.float64) ** 2, axis=1))
    balance = rms / np.sqrt(np.mean(rms ** 2)) if rms.any() else np.ones(vocals.shape[0])
    return (balance[:, None] * out[None]).astype(np.float32)


def run_cover(request: CoverRequest, out_dir: str | os.PathLike, progress: Optional[CoverProgress] = None, *,
              watch: Optional[cancel.Watch] = None, voice=None, cache: bool = True) -> CoverResult:
    """Make the cover `request` describes into `out_dir` -> CoverResult.

    progress(stage, fraction, message): stages in result.STAGES order. watch: a cancel.Watch (cancelling raises
    ConversionCancelled at the next chunk / piece / stage; conversion progress also reaches watch.on_step).
    voice: an already loaded Svc / OnnxSvc to use instead of loading request.voice_model. cache=False: no stems
    cache in out_dir."""
    with cancel.watching(watch) if watch is not None else nullcontext():
        return _run(request, Path(out_dir), progress, voice, cache)


def _run(request: CoverRequest, out_dir: Path, progress: Optional[CoverProgress], voice, cache: bool) -> CoverResult:
    from ..song_io import read_song, song_name, write_stem, write_zip

    request.check()
    stages = _Stages(progress)
    with stages.stage("separate", "reading the song"):
        song, sr = read_song(request.song)
        if voice is None:
            stages.report("separate", 0.0, "loading the voice")
            voice = load_voice(request)
        options, f0_name = conversion_options(voice, request)
        speakers = _speaker_weights(voice, request.speaker)
        out_dir.mkdir(parents=True, exist_ok=True)
        vocals, accompaniment, label, cached = separate_song(song, sr, request, stages,
                                                             out_dir if cache else None)
        del song
    with stages.stage("key", "measuring the vocal's range"):
        low, high, source = voice_range(getattr(voice, "model_path", None), speakers)
        suggestion = suggest_transpose(vocal_midi(vocals, sr), low, high, source, request.shift_accompaniment)
        transpose = float(suggestion.semitones) if request.auto_transpose else float(request.transpose)
        shift = transpose if request.shift_accompaniment else 0.0
        if shift:
            stages.report("key", 0.3, f"shifting the accompaniment {shift:+g} semitones")
            accompaniment = shift_pitch(accompaniment, sr, shift)
    with stages.stage("convert", f"converting the lead vocal ({transpose:+g} semitones)"):
        speaker = request.speaker if request.speaker is not None else next(iter(speakers))
        converted = convert_vocal(voice, vocals, sr, speaker, transpose, options, f0_name, stages)
    with stages.stage("remix", "loudness match, mix, limiter"):
        settings = MixSettings(request.vocal_gain_db, request.accompaniment_gain_db, request.reverb,
                               request.target_lufs)
        vocal_in_mix, accomp_in_mix, mix, report = remix(vocals, converted, accompaniment, sr, settings)
        del converted, accompaniment
    with stages.stage("export", "writing the stems"):
        name = request.name or song_name(request.song)
        tracks = {"original_vocals": vocals, "converted_vocals": vocal_in_mix, "accompaniment": accomp_in_mix,
                  "mix": mix}
        paths: dict[str, dict[str, Path]] = {}
        total = len(tracks) * len(request.formats)
        for i, (stem, audio) in enumerate(tracks.items()):
            for j, fmt in enumerate(request.formats):
                stages.report("export", (i * len(request.formats) + j) / total, f"{stem}.{fmt}")
                paths.setdefault(stem, {})[fmt] = write_stem(out_dir / f"{name}_{stem}.{fmt}", audio, sr)
        zip_path = None
        if request.zip:
            stages.report("export", 0.95, "zip")
            zip_path = write_zip(out_dir / f"{name}_cover.zip",
                                 [p for by_fmt in paths.values() for p in by_fmt.values()])
    return CoverResult(paths, zip_path, transpose, shift, suggestion, report.mix_lufs, report.peak_db, sr,
                       mix.shape[1] / sr, label, cached, dict(stages.seconds))
