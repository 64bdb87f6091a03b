"""The voices the page offers: folders under the models directory, plus models people upload.

A voice folder is `<models_dir>/<name>/` holding one `G_*.pth` (the highest step wins when there are several), or
a WORLD `W_*.pth`, or an RVC WebUI / Applio model `<name>.pth` (rvc_files.py), or, without those, an ONNX export
(upstream's `<name>_SoVits.onnx`, or ours); its `config.json` (not needed by an RVC model; for an ONNX file, or its
MoeVoiceStudio descriptor: `<models_dir>/<name>.json` or inside the folder), and optionally a cluster/retrieval
file (`kmeans*.pt`, `*.pkl`, `*.index`; for an RVC model its `added_*.index`). Which family the model file belongs to
(so-vits, WORLD, RVC, an ONNX export) is svc_core.families' answer, read from the file's content. Uploads are copied
into a fresh folder under the work dir and checked by loading them through svc_core (safe loading only: no code
stored in a file ever runs). Uploaded voices get an unguessable id, are kept across restarts with the manifest of
what was checked (upload_store.py), and are listed only to the browser that uploaded them (unless the server shows
all uploads, see ModelLibrary).
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

from .. import families
from ..errors import ModelError, SvcError
from . import diffusion_files as dfiles
from . import rvc_files
from .upload_checks import (CLUSTER_SUFFIXES, GENERATOR_PATTERN, UPLOAD_SUFFIXES, check_upload,  # noqa: F401
                            classify_uploads, stored_model_name)
from .upload_store import (DAY_SECONDS, KEY_PREFIX, UploadBudget, UploadRecord, UploadStore, browser_keys,
                           clean_name, owner_id, upload_label)

log = logging.getLogger("svc_core.ui")

PRUNE_INTERVAL_SECONDS = 600  # expired uploads are also removed while serving, checked at most this often
UPLOAD_PREFIX = KEY_PREFIX  # uploads are keyed "upload-<16 hex digits>" (upload_store.py)

WHERE_TO_GET_MODELS = (
    "so-vits-svc 4.0/4.1 voices are trained with so-vits-svc (github.com/svc-develop-team/so-vits-svc) and many "
    "are shared on Hugging Face (search the model hub for \"so-vits-svc\"). A voice is a `G_*.pth` generator "
    "plus its `config.json`, optionally with `kmeans_10000.pt` or `feature_and_index.pkl`, and with a 4.1 "
    "shallow-diffusion model in its `diffusion/` folder (`model_*.pt` + `config.yaml`). An RVC v1/v2 voice (RVC "
    "WebUI or Applio) is its `<name>.pth` alone, optionally with its `added_*.index`."
)


@dataclass(frozen=True)
class ModelEntry:
    """One voice: where its files are and what its config says."""

    key: str  # folder name, or "upload-<16 hex digits>" for uploads
    label: str  # what the dropdown shows
    model_path: Path
    config_path: Path | None  # None: an RVC model (it carries its own settings)
    cluster_path: Path | None
    speakers: tuple[str, ...]
    speech_encoder: str
    uploaded: bool = False
    diffusion: dfiles.DiffusionFiles | None = None  # its 4.1 diffusion model (diffusion/model_*.pt + yaml)
    vocoder_path: Path | None = None  # its own mel vocoder (nsf_hifigan/model); None: found as the engine does
    diffusion_only: bool = False  # no so-vits model: model_path/config_path are the diffusion model and yaml
    family: str = "so-vits"  # svc_core.families name of the model file (so-vits, world, rvc, so-vits-onnx, ...)
    rvc: rvc_files.RvcInfo | None = None  # an RVC voice: version, rate, pitch or not, kind

    @property
    def onnx_only(self) -> bool:
        """The voice is an ONNX export without its checkpoint: it runs on ONNX Runtime whichever backend is asked
        (the family table's engine for it)."""
        return not self.diffusion_only and families.family(self.family).engine == families.ONNX

    @property
    def folder(self) -> Path:
        """The voice folder (a diffusion-only voice's model sits in its diffusion/ subfolder)."""
        return self.model_path.parent.parent if self.diffusion_only else self.model_path.parent


def _generator_step(path: Path) -> int:
    match = GENERATOR_PATTERN.match(path.name)
    return int(match.group(1)) if match else -1


def _pick_generator(folder: Path) -> Path:
    """The folder's model file: the highest-step G_*.pth, else W_*.pth, else an RVC-style <name>.pth, else an ONNX
    export. Only which file: what it is (so-vits, WORLD, RVC, ...) is svc_core.families.identify's answer."""
    for prefix in ("G_", "W_"):  # a generator (so-vits, or RVC's training G_*.pth), else a WORLD voice
        candidates = sorted((p for p in folder.glob("*.pth") if p.is_file() and p.name.upper().startswith(prefix)),
                            key=_generator_step)
        if candidates:
            return candidates[-1]
    single = rvc_files.pick_rvc_model(folder)  # an RVC WebUI / Applio model file
    if single is not None:
        return single
    exported = _pick_onnx(folder)  # else an ONNX export (upstream's <name>_SoVits.onnx or ours)
    if exported is not None:
        return exported
    raise ModelError(f"no G_*.pth generator (or RVC model <name>.pth, W_*.pth WORLD voice, or <name>_SoVits.onnx "
                     f"export) in {folder.name}/")


def _pick_onnx(folder: Path) -> Path | None:
    """The folder's synthesizer export: `*_SoVits.onnx` (upstream's name), else `model.onnx`, else its only .onnx
    file (our split / int8 companions and upstream-named content encoders do not count); ModelError when several
    could be it."""
    from ..onnx.split_export import DECODER_SUFFIX, INT8_DECODER_SUFFIX, PRIOR_SUFFIX
    from ..onnx.upstream_file import encoder_name_of

    companions = (PRIOR_SUFFIX, DECODER_SUFFIX, INT8_DECODER_SUFFIX, ".int8.onnx")  # our split / int8 files
    files = sorted(p for p in folder.glob("*.onnx") if p.is_file() and not p.name.lower().endswith(companions)
                   and encoder_name_of(p) is None)  # vec-768-layer-12.onnx & co. are content encoders
    for group in ([p for p in files if p.name.lower().endswith("_sovits.onnx")],
                  [p for p in files if p.name == "model.onnx"], files):
        if len(group) == 1:
            return group[0]
        if group:
            raise ModelError(f"several ONNX files in {folder.name}/ ({', '.join(p.name for p in group)}): keep the "
                             "synthesizer export only, named <name>_SoVits.onnx or model.onnx")
    return None


def _pick_cluster(folder: Path) -> Path | None:
    files = sorted(p for p in folder.iterdir() if p.is_file() and (
        (p.suffix.lower() in (".pt", ".pth") and p.name.lower().startswith("kmeans"))
        or p.suffix.lower() in CLUSTER_SUFFIXES))
    return files[0] if files else None


def _folder_descriptor(folder: Path) -> Path | None:
    """A MoeVoiceStudio descriptor for the voice folder: `<models_dir>/<folder>.json` or a descriptor inside it."""
    from ..onnx.moevs import is_descriptor, read_json

    candidates = [folder.parent / f"{folder.name}.json", *sorted(folder.glob("*.json"))]
    return next((p for p in candidates if p.is_file() and is_descriptor(read_json(p))), None)


FAMILY_WORDS = {"so-vits": "so-vits-svc", "world": "WORLD voice", "so-vits-onnx": "so-vits-svc, ONNX file",
                "rvc": "RVC", "rvc-onnx": "RVC, ONNX file"}  # svc_core.families name -> the picker's words


def voice_label(key: str, n_speakers: int, kind: str, has_cluster: bool, encoder: str,
                has_diffusion: bool = False, diffusion_only: bool = False) -> str:
    """The picker's words for a voice: its name, how many voices it has, what kind of model (`kind`: FAMILY_WORDS,
    or an RVC voice's "RVC v2 40k"; the content encoder, for people who match models to encoders, last), e.g.
    "demo-voice (3 speakers; so-vits-svc, ONNX file; vec256l9)", "choir (2 speakers; so-vits-svc, with diffusion;
    vec768l12)", "solo (1 speaker; diffusion model only; ...)", "lead (1 speaker; RVC v2 40k, with index;
    vec768l12)"."""
    if diffusion_only:
        kind = "diffusion model only"
    index = ", with index" if kind.startswith("RVC") else ", with timbre index"
    extra = (", with diffusion" if has_diffusion and not diffusion_only else "") + (index if has_cluster else "")
    return f"{key} ({n_speakers} speaker{'s' if n_speakers != 1 else ''}; {kind}{extra}; {encoder})"


def describe_folder(folder: Path, key: str, uploaded: bool = False) -> ModelEntry:
    """Read a voice folder (configs only, no weights). ModelError says what is wrong."""
    from ..onnx.moevs import load_voice_config

    found = dfiles.find_diffusion(folder)
    vocoder = dfiles.folder_vocoder(folder)
    if found is not None and not _has_synthesizer(folder):
        return _diffusion_only_entry(folder, key, found, vocoder, uploaded)
    model_path = _pick_generator(folder)
    onnx = model_path.suffix.lower() == ".onnx"
    config_path = folder / "config.json"
    config_json = config_path if config_path.is_file() else None
    if config_json is None:
        config_path = _folder_descriptor(folder)
        if config_path is not None and not onnx:
            raise ModelError(f"no config.json in {folder.name}/ (a MoeVoiceStudio descriptor describes ONNX files "
                             "only)")
    kind = families.identify(model_path, None if onnx else config_json)  # from the file's content
    if kind.is_rvc:
        return _rvc_entry(folder, key, model_path, config_json, uploaded, kind)
    if config_path is None:
        raise ModelError(f"no config.json in {folder.name}/")
    config, _ = load_voice_config(config_path)
    speakers = tuple(name for name, _ in sorted(config.spk.items(), key=lambda kv: kv[1])) or tuple(
        str(i) for i in range(config.n_speakers))
    cluster = _pick_cluster(folder)
    if found is not None:
        dfiles.read_config(found)  # a broken yaml is named now, not at the first conversion
    label = voice_label(key, len(speakers), FAMILY_WORDS[kind.name], cluster is not None, config.speech_encoder,
                        has_diffusion=found is not None)
    return ModelEntry(key, label, model_path, config_path, cluster, speakers, config.speech_encoder, uploaded,
                      diffusion=found, vocoder_path=vocoder, family=kind.name)


def _rvc_entry(folder: Path, key: str, model_path: Path, config_json: Path | None, uploaded: bool,
               kind: families.Family) -> ModelEntry:
    """An RVC voice (a .pth, or its ONNX export: kind rvc-onnx): settings and speakers from the model file itself;
    a config.json is RVC's training config (logs/<exp>/config.json) and is used only by a training G_*.pth. A
    diffusion model beside it is not used."""
    onnx = kind.engine == families.ONNX
    info = rvc_files.read_rvc_onnx_info(model_path) if onnx else rvc_files.read_rvc_info(model_path, config_json)
    cluster = rvc_files.pick_rvc_index(folder, model_path)
    label = voice_label(key, len(info.speakers), info.label, cluster is not None, info.speech_encoder)
    config = config_json if info.kind == "rvc-training" else None
    return ModelEntry(key, label, model_path, config, cluster, info.speakers, info.speech_encoder, uploaded,
                      family=kind.name, rvc=info)


def _has_synthesizer(folder: Path) -> bool:
    """The folder holds a so-vits / WORLD generator or a synthesizer ONNX export (not only a diffusion model)."""
    try:
        _pick_generator(folder)
    except ModelError:
        return False
    return True


def _diffusion_only_entry(folder: Path, key: str, found: dfiles.DiffusionFiles, vocoder: Path | None,
                          uploaded: bool) -> ModelEntry:
    """A voice that is a diffusion model alone: speakers, rate and encoder come from its config.yaml."""
    config = dfiles.read_config(found)
    speakers = dfiles.diffusion_speakers(config)
    cluster = _pick_cluster(folder)
    label = voice_label(key, len(speakers), "", cluster is not None, config.encoder, has_diffusion=True,
                        diffusion_only=True)
    return ModelEntry(key, label, found.model, found.config, cluster, speakers, config.encoder, uploaded,
                      diffusion=found, vocoder_path=vocoder, diffusion_only=True)


@dataclass(frozen=True)
class ScanResult:
    entries: tuple[ModelEntry, ...]
    problems: tuple[str, ...]  # "models/foo: no config.json in foo/" lines for folders that were skipped


def scan_models_dir(models_dir: Path, shipped: Iterable[Path] = ()) -> ScanResult:
    """The `shipped` voice folders (the starter voices; listed first, so the page selects them by default), then
    every usable voice folder in models_dir (sorted by name), and why the others were skipped."""
    folders = [f for f in shipped if f.is_dir()]
    keys = {f.name for f in folders}
    if models_dir.is_dir():
        folders += sorted(p for p in models_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
                          and p.name not in keys)
    entries, problems = [], []
    for folder in folders:
        try:
            entries.append(describe_folder(folder, folder.name))
        except SvcError as err:
            problems.append(f"{folder.name}: {err}")
    return ScanResult(tuple(entries), tuple(problems))


class ModelLibrary:
    """Folder voices (re-scanned on demand) and uploaded voices (kept on disk in an UploadStore, listed again at
    start, pruned to its UploadBudget).

    Who sees an upload: the browser that made it (its owner token, kept by the page in localStorage), or everyone
    when `show_all_uploads` (a server nobody else reaches). Its key is unguessable (64 random bits): the page
    offers a browser only its own keys, and an API caller must know the key to use an upload.
    """

    def __init__(self, models_dir: Path, uploads_dir: Path, budget: UploadBudget = UploadBudget(),
                 shipped: Iterable[Path] = (), show_all_uploads: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.models_dir = models_dir
        self.uploads_dir = uploads_dir
        self.shipped = tuple(shipped)
        self.show_all_uploads = show_all_uploads
        self._store = UploadStore(uploads_dir, budget, clock)
        self._uploads: "OrderedDict[str, tuple[ModelEntry, UploadRecord]]" = OrderedDict()
        self._lock = threading.Lock()
        self._pruned_at = 0.0  # store clock time of the last prune
        self._scan = scan_models_dir(models_dir, self.shipped)
        self._load_uploads()

    @property
    def budget(self) -> UploadBudget:
        return self._store.budget

    # ---------------------------------------------------------------- folder voices
    def rescan(self) -> ScanResult:
        self._scan = scan_models_dir(self.models_dir, self.shipped)
        return self._scan

    @property
    def scan(self) -> ScanResult:
        return self._scan

    def folder_entries(self) -> tuple[ModelEntry, ...]:
        return self._scan.entries

    def choices(self, owner: str | Iterable[str] | None = None) -> list[tuple[str, str]]:
        """(label, key) pairs for the dropdown: folder voices, then the uploads `owner` (a browser's token) may
        see, oldest first. A list of upload keys (a per-session list) is accepted instead of a token."""
        out = [(e.label, e.key) for e in self._scan.entries]
        with self._lock:
            if self._store.clock() - self._pruned_at > PRUNE_INTERVAL_SECONDS:  # expire uploads while serving too
                self._prune()
            if owner is None or isinstance(owner, str):
                wanted = owner_id(owner)
                out += [(entry.label, key) for key, (entry, record) in self._uploads.items()
                        if self.show_all_uploads or (wanted and record.owner == wanted)]
            else:
                out += [(self._uploads[k][0].label, k) for k in owner if k in self._uploads]
        return out

    def upload_entries(self) -> tuple[ModelEntry, ...]:
        """Every stored upload, oldest first (whoever owns it)."""
        with self._lock:
            return tuple(entry for entry, _ in self._uploads.values())

    def browser_state_keys(self) -> dict[str, str]:
        """`storage_key` and `secret` for the page's gr.BrowserState of the owner token (stable across restarts,
        see upload_store.browser_keys)."""
        return browser_keys(self.uploads_dir)

    def get(self, key: str) -> ModelEntry:
        """The voice called `key`; ModelError lists what exists."""
        if not key:
            raise ModelError("Pick a voice model first (or upload one).")
        with self._lock:
            if key in self._uploads:
                return self._uploads[key][0]
        for entry in self._scan.entries:
            if entry.key == key:
                return entry
        for entry in self.rescan().entries:  # a folder added since the last scan
            if entry.key == key:
                return entry
        names = ", ".join(e.key for e in self._scan.entries) or f"none in {self.models_dir}"
        if key.startswith(UPLOAD_PREFIX):
            raise ModelError(f"The uploaded voice '{key}' is no longer kept on this server (uploads are removed "
                             f"after {self.budget.max_age_seconds / DAY_SECONDS:g} days, or when newer ones need "
                             f"the room); upload it again. Available: {names}.")
        raise ModelError(f"Unknown voice model '{key}'. Available: {names}.")

    # ---------------------------------------------------------------- uploads
    def reload_uploads(self) -> None:
        """List the stored uploads again: a job worker picks up voices another process stored (or fetched) in its
        uploads folder since it started (svc_core.jobs.voice_sync)."""
        with self._lock:
            self._load_uploads()

    def _load_uploads(self) -> None:
        """List the stored uploads again (manifest and hashes checked, nothing unpickled), then prune."""
        started = time.perf_counter()
        for record in self._store.load():
            try:
                entry = describe_folder(record.folder, record.key, uploaded=True)
            except SvcError as err:
                log.warning("removing %s from the upload store: %s", record.folder, err)
                self._store.remove(record.key)
                continue
            self._uploads[record.key] = (replace(entry, label=record.label), record)
        self._prune()
        if self._uploads:
            log.info("%d uploaded voice(s) kept from earlier runs in %s (checked in %.1f s)", len(self._uploads),
                     self.uploads_dir, time.perf_counter() - started)

    def _prune(self, keep: str | None = None) -> None:
        """Remove the uploads over the budget (call with self._lock held, or from __init__)."""
        self._pruned_at = self._store.clock()
        for key in self._store.over_budget([record for _, record in self._uploads.values()], keep=keep):
            log.info("removing uploaded voice %s (%s): over the upload budget", key, self._uploads[key][0].label)
            del self._uploads[key]
            self._store.remove(key)

    def prune(self) -> None:
        """Apply the budget now (expired uploads go; the server calls this at start and on every upload)."""
        with self._lock:
            self._prune()

    def add_upload(self, files: Iterable[str | Path], owner: str | None = None, name: str = "") -> ModelEntry:
        """Copy uploaded files into a new folder, load them through svc_core to check them, record them in the
        store under `owner` (a browser's token; None: nobody's) and `name` (the uploader's, optional).

        Raises ModelError/UnsafeFileError with the engine's message; nothing is kept when a check fails.
        """
        paths = [Path(f) for f in files]
        size = sum(path.stat().st_size for path in paths if path.is_file())
        if size > self.budget.max_bytes:  # before any file is opened
            raise ModelError(f"This voice is {size / 1024**2:.0f} MB; this server keeps at most "
                             f"{self.budget.max_bytes / 1024**2:.0f} MB of uploaded voices.")
        sources = classify_uploads(paths)
        folder = self._store.new_folder()
        key = folder.name
        try:
            if "diffusion_model" in sources:
                dfiles.store_upload(dfiles.DiffusionFiles(sources["diffusion_model"], sources["diffusion_config"]),
                                    folder)
            model = sources.get("model", sources.get("diffusion_model"))
            if "model" in sources:
                shutil.copyfile(model, folder / stored_model_name(model))
                if "config" in sources:  # a descriptor is read by its content; an RVC model may come without
                    shutil.copyfile(sources["config"], folder / "config.json")
            encoder = folder / sources["encoder"].name if "encoder" in sources else None
            if encoder is not None:
                shutil.copyfile(sources["encoder"], encoder)
            if "cluster" in sources:
                cluster_name = sources["cluster"].name
                if sources["cluster"].suffix.lower() in (".pt", ".pth") and not cluster_name.lower().startswith(
                        "kmeans"):
                    cluster_name = "kmeans_" + cluster_name
                shutil.copyfile(sources["cluster"], folder / cluster_name)
            entry = describe_folder(folder, key, uploaded=True)
            ssl_dim = check_upload(entry, encoder)
            if entry.cluster_path is not None:
                from ..retrieval import load_retrieval

                retriever = load_retrieval(entry.cluster_path)
                if entry.rvc is not None:
                    rvc_files.check_index_width(retriever.dim, entry.rvc, sources["cluster"].name)
                retriever.check_dim(ssl_dim, entry.speech_encoder)
            name = clean_name(name)
            step = _generator_step(model) if GENERATOR_PATTERN.match(model.name) else dfiles.diffusion_step(model)
            summary = {"model_file": model.name, "original_files": sorted(p.name for p in sources.values()),
                       "step": step, "speakers": list(entry.speakers), "speech_encoder": entry.speech_encoder,
                       "ssl_dim": ssl_dim, "onnx": entry.onnx_only,
                       "cluster": entry.cluster_path.name if entry.cluster_path else None,
                       "diffusion": entry.diffusion.model.name if entry.diffusion else None,
                       "diffusion_only": entry.diffusion_only, "family": entry.family,
                       "rvc": entry.rvc.label if entry.rvc else None}
            with self._lock:
                taken = [e.label for e in self._scan.entries] + [e.label for e, _ in self._uploads.values()]
            shown_name = name or (f"{Path(model.name).stem}, {entry.rvc.label}" if entry.rvc else "")
            label = upload_label(shown_name, entry.speakers, model.name, step, self._store.clock(), taken)
            record = self._store.commit(folder, owner_id(owner), label, name, summary)  # hashes: outside the lock
            entry = replace(entry, label=label)
            with self._lock:
                self._uploads[key] = (entry, record)
                self._prune(keep=key)
        except BaseException:
            with self._lock:
                self._uploads.pop(key, None)
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return entry

    def upload_owned_by(self, key: str, owner: str | None) -> bool:
        """The upload `key` exists and was made by `owner` (a browser token or an API caller's name)."""
        wanted = owner_id(owner)
        with self._lock:
            found = self._uploads.get(key)
        return bool(found and wanted and found[1].owner == wanted)

    def visible_to(self, key: str, owner: str | None) -> bool:
        """`owner` may see the voice `key` in a listing: a folder voice, or an upload of theirs (every upload when
        `show_all_uploads`)."""
        with self._lock:
            uploaded = key in self._uploads
        if not uploaded:
            return any(entry.key == key for entry in self._scan.entries)
        return self.show_all_uploads or self.upload_owned_by(key, owner)

    def remove_upload(self, key: str) -> bool:
        """Forget an uploaded voice and delete its folder -> whether it existed (folder voices are not touched)."""
        with self._lock:
            if self._uploads.pop(key, None) is None:
                return False
            self._store.remove(key)
        return True
