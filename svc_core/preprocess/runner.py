"""prepare_dataset: discover -> cut clips -> cache features -> split -> config, filelists, manifest, report.

Both heavy stages run inline (jobs = 1) or in `jobs` spawned worker processes.
"""
from __future__ import annotations

import json
import multiprocessing
from contextlib import contextmanager
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from ..encoders import encoder_info, find_weights
from ..errors import AudioError, MissingWeightsError, SvcError
from ..f0 import resolve_predictor
from . import cache as cache_mod
from . import diffcache
from .clips import SourceResult, cut_source
from .config_writer import (DIFFUSION_CONFIG_NAME, build_config, build_diffusion_config, config_encoder_name,
                            config_text, diffusion_config_text)
from .discover import Discovery, discover
from .manifest import read_manifest, remove_stale_clips, reusable, write_manifest, write_text_if_changed
from .progress import ProgressFn
from .report import build_report, format_report
from .settings import PreprocessSettings
from .split import filelist_lines, split_clips

_TOOLS: dict[tuple, cache_mod.FeatureTools] = {}  # per process: encoder / f0 predictor, built once


@dataclass
class PrepareResult:
    """Outcome of prepare_dataset. `computed` counts cache files written per kind (all zero on a no-op rerun)."""

    output_dir: Path
    report: dict[str, Any]
    text: str
    reused_sources: int = 0
    computed: dict[str, int] = field(default_factory=dict)
    removed_clips: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.report["cache_errors"]


def resolve_f0(name: str, weights: str | None) -> str:
    """'auto' -> rmvpe when its weights are found, else fcpe; other names are checked to be usable here."""
    return resolve_predictor(name, weights)


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core instead of threads


def _features_task(clip: str, force: tuple[str, ...], tools: dict[str, Any]) -> tuple[str, list[str], str]:
    key = tuple(sorted(tools.items()))
    if key not in _TOOLS:
        _TOOLS[key] = cache_mod.FeatureTools(**tools)
    try:
        return clip, cache_mod.ensure_features(Path(clip), _TOOLS[key], force), ""
    except MissingWeightsError:
        raise
    except SvcError as err:
        return clip, [], str(err)
    except Exception as err:  # noqa: BLE001 - one broken clip is reported, the others still get features
        return clip, [], f"{type(err).__name__}: {err}"


def _run(fn: Callable, jobs: list[tuple], pool: ProcessPoolExecutor | None, stage: str,
         progress: ProgressFn | None, label: Callable[[tuple], str]) -> Iterator[Any]:
    """Yield fn(*job) for every job (in completion order with a pool), reporting progress."""
    total = len(jobs)
    if pool is None or total <= 1:
        for done, job in enumerate(jobs, 1):
            yield fn(*job)
            if progress:
                progress(stage, done, total, label(job))
        return
    futures = {pool.submit(fn, *job): job for job in jobs}
    for done, fut in enumerate(as_completed(futures), 1):
        yield fut.result()
        if progress:
            progress(stage, done, total, label(futures[fut]))


@contextmanager
def _pool(jobs: int) -> Iterator[ProcessPoolExecutor | None]:
    """`jobs` spawned workers shared by both stages (fork after torch started its threads can deadlock)."""
    if jobs <= 1:
        yield None
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker) as pool:
        yield pool


def _check_tools(settings: PreprocessSettings) -> str:
    """Fail before any work when the encoder or f0 predictor cannot run; returns the f0 predictor name."""
    encoder_info(settings.encoder)
    config_encoder_name(settings.encoder)
    find_weights(settings.encoder, settings.encoder_path)
    if settings.use_diff:
        diffcache.mel_extraction(settings.mel_vocoder, settings.device)  # the vocoder file loads
    return resolve_f0(settings.f0, settings.f0_weights)


def _cut_stage(settings: PreprocessSettings, found: Discovery, previous: dict[str, Any],
               pool: ProcessPoolExecutor | None, progress: ProgressFn | None) -> tuple[list[SourceResult], int]:
    """Clips of every source (reused when unchanged since the last run); returns (results in source order,
    number reused)."""
    clip_key = settings.clip_key()
    results: dict[str, SourceResult] = {}
    todo = []
    for src in found.sources:
        old = reusable(previous, clip_key, src, settings.output_dir)
        if old is not None:
            results[src.rel] = old
        else:
            todo.append((src, settings))
    reused = len(results)
    for res in _run(cut_source, todo, pool, "clips", progress, lambda job: job[0].rel):
        results[res.source] = res
    return [results[s.rel] for s in found.sources], reused


def _feature_stage(settings: PreprocessSettings, f0_name: str, clips: list[str], previous: dict[str, Any],
                   pool: ProcessPoolExecutor | None, progress: ProgressFn | None
                   ) -> tuple[dict[str, int], list[dict[str, str]]]:
    """Cache files of every clip; returns (files computed per kind, per-clip errors)."""
    out = settings.output_dir
    old = previous.get("features") or {}
    current = _features_key(settings, f0_name)
    pairs = [("soft", "encoder"), ("f0", "f0")] + [(k, "mel") for k in diffcache.DIFF_KINDS if "mel" in current]
    force = tuple(kind for kind, key in pairs if old and old.get(key, current[key]) != current[key])
    tools = {"encoder": settings.encoder, "encoder_path": settings.encoder_path, "f0": f0_name,
             "f0_weights": settings.f0_weights, "f0_threshold": settings.f0_threshold, "device": settings.device,
             "use_diff": settings.use_diff, "mel_vocoder": settings.mel_vocoder, "seed": settings.seed}
    computed = {k: 0 for k in cache_mod.all_kinds(settings.use_diff)}
    errors: list[dict[str, str]] = []
    jobs = [(str(out / c), force, tools) for c in clips]
    for clip, kinds, error in _run(_features_task, jobs, pool, "features", progress,
                                   lambda job: Path(job[0]).relative_to(out).as_posix()):
        for kind in kinds:
            computed[kind] += 1
        if error:
            errors.append({"clip": Path(clip).relative_to(out).as_posix(), "error": error})
    return computed, errors


def _features_key(settings: PreprocessSettings, f0_name: str) -> dict[str, str]:
    """What the cached features depend on (recorded in the manifest; a change recomputes those kinds)."""
    key = {"encoder": encoder_info(settings.encoder).name, "f0": f0_name}
    if settings.use_diff:
        key["mel"] = diffcache.mel_extraction(settings.mel_vocoder, settings.device).key
    return key


def prepare_dataset(settings: PreprocessSettings, progress: ProgressFn | None = None) -> PrepareResult:
    """Turn settings.input_dir (any folder of audio) into a training-ready dataset in settings.output_dir."""
    settings.validate()
    f0_name = _check_tools(settings)
    out = settings.output_dir
    found = discover(settings.input_dir, out)
    if not found.sources:
        extra = f" ({len(found.skipped)} misplaced)" if found.skipped else ""
        raise AudioError(f"No audio files found in '{settings.input_dir}'{extra}. Put one folder per speaker there "
                         "(or the audio of a single speaker directly).")
    out.mkdir(parents=True, exist_ok=True)
    previous = read_manifest(out)
    clip_key = settings.clip_key()
    with _pool(settings.jobs) as pool:
        ordered, reused = _cut_stage(settings, found, previous, pool, progress)
        removed = remove_stale_clips(previous, ordered, out)
        # features of the previous run stay valid only for clips cut with the same settings
        kept_features = previous.get("features") if previous.get("clip_settings") == clip_key else None
        write_manifest(out, settings.input_dir, clip_key, ordered, kept_features)
        clips = [c.clip for r in ordered for c in r.clips]
        computed, cache_errors = _feature_stage(settings, f0_name, clips, previous, pool, progress)
    write_manifest(out, settings.input_dir, clip_key, ordered, _features_key(settings, f0_name))

    failed = {e["clip"] for e in cache_errors}
    by_speaker: dict[str, list[str]] = {}
    for r in ordered:
        for c in r.clips:
            if c.clip not in failed:
                by_speaker.setdefault(c.speaker, []).append(c.clip)
    split = split_clips(by_speaker, settings.val_per_speaker, settings.seed)
    lists = out / "filelists"
    write_text_if_changed(lists / "train.txt", filelist_lines(split.train, out))
    write_text_if_changed(lists / "val.txt", filelist_lines(split.val, out))
    if by_speaker:
        doc = build_config(settings.encoder, list(by_speaker), settings.vol_embedding, lists / "train.txt",
                           lists / "val.txt")
        write_text_if_changed(out / "config.json", config_text(doc), backup=True)
        if settings.use_diff:
            ddoc = build_diffusion_config(settings.encoder, list(by_speaker), lists / "train.txt",
                                          lists / "val.txt", settings.diff_size, settings.device)
            write_text_if_changed(out / DIFFUSION_CONFIG_NAME, diffusion_config_text(ddoc), backup=True)
    report_settings = {**settings.to_json(), "f0": f0_name, "speaker_folders": found.speakers}
    rep = build_report(ordered, found.ignored, found.skipped, split, report_settings, out, cache_errors)
    text = format_report(rep)
    write_text_if_changed(out / "report.json", json.dumps(rep, indent=1, ensure_ascii=False) + "\n")
    write_text_if_changed(out / "report.txt", text)
    return PrepareResult(out, rep, text, reused, computed, removed)
