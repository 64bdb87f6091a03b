"""RVC voices on the page: which file in a voice folder is the RVC model, which `.index` goes with it, what the
picker says about it ("RVC v2 40k"), and the checks an uploaded model + index must pass.

A folder voice is `<models_dir>/<name>/<name>.pth` (RVC WebUI's assets/weights/ file, an Applio model, or an RVC
training G_*.pth with RVC's config.json beside it) plus optionally RVC's `added_*.index`. RVC writes two index
files: `trained_*.index` (the clustering only, no feature vectors) and `added_*.index` (the vectors added: the one
RVC WebUI offers); the index is paired with the model as RVC WebUI does (svc_core.rvc.index_files.pick_index: the
only one, else the added_ one naming the voice), never a trained one. Which family a file belongs to is
svc_core.families' decision (from the tensors it holds), never its name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ModelError

NOT_RVC_PREFIXES = ("G_", "W_", "D_", "KMEANS")  # .pth files that are not an RVC WebUI / Applio model file
VERSION_OF_WIDTH = {256: "v1", 768: "v2"}  # RVC's content widths (enc_p.emb_phone input)
KIND_WORDS = {"applio": "Applio", "rvc-training": "training checkpoint", "onnx": "ONNX file"}  # file kinds
ONNX_SCAN_THREADS = 1  # ONNX Runtime threads for reading an RVC export's settings while scanning


@dataclass(frozen=True)
class RvcInfo:
    """What an RVC voice file says about itself (read without building the network)."""

    version: str  # "v1" (256-d content) or "v2" (768-d)
    sample_rate: int  # Hz: 32000, 40000 or 48000
    has_f0: bool  # a pitch model (False: RVC's *_nono model, no transpose or pitch tracker)
    kind: str  # "rvc-small" (RVC WebUI), "applio", "rvc-training" (svc_core.rvc.checkpoint), "onnx" (an export)
    content_dim: int  # 256 or 768
    speech_encoder: str  # "vec256l9" (v1) or "vec768l12" (v2)
    speakers: tuple[str, ...]

    @property
    def label(self) -> str:
        """The picker's words: "RVC v2 40k", "RVC v1 48k, no pitch", "RVC v2 40k, Applio"."""
        words = [f"RVC {self.version} {self.sample_rate // 1000}k"]
        if not self.has_f0:
            words.append("no pitch")
        if self.kind in KIND_WORDS:
            words.append(KIND_WORDS[self.kind])
        return ", ".join(words)


def read_rvc_info(model_path: Path, config_path: Path | None = None) -> RvcInfo:
    """Read an RVC voice file's hyperparameters and speakers (safe loading; tensors are memory-mapped, so only the
    file's small header is read). ModelError says what is wrong with the file."""
    from ..rvc.checkpoint import read_rvc_checkpoint

    ckpt = read_rvc_checkpoint(model_path, config_path)
    hp = ckpt.hparams
    return RvcInfo(version=hp.version, sample_rate=int(hp.sr), has_f0=bool(hp.f0), kind=ckpt.kind,
                   content_dim=int(hp.content_dim), speech_encoder=hp.speech_encoder,
                   speakers=tuple(str(s) for s in ckpt.speakers))


def read_rvc_onnx_info(onnx_path: Path) -> RvcInfo:
    """The settings of an RVC ONNX export (ours, from its manifest; RVC's own exporter's, probed from the graph
    by svc_core.onnx.rvc_runtime.RvcOnnxVoice, which opens ONNX Runtime sessions)."""
    from ..onnx.rvc_runtime import RvcOnnxVoice

    voice = RvcOnnxVoice(onnx_path, device="cpu", threads=ONNX_SCAN_THREADS)
    hp = voice.hparams
    speakers = tuple(name for name, _ in sorted(voice.config.spk.items(), key=lambda kv: kv[1]))
    return RvcInfo(version=hp.version, sample_rate=int(hp.sr), has_f0=bool(hp.f0), kind="onnx",
                   content_dim=int(hp.content_dim), speech_encoder=hp.speech_encoder, speakers=speakers)


def rvc_candidates(folder: Path) -> list[Path]:
    """The folder's .pth files that may be an RVC WebUI / Applio model: not G_/W_/D_*.pth, not kmeans*."""
    return sorted(p for p in folder.glob("*.pth") if p.is_file() and not p.name.upper().startswith(NOT_RVC_PREFIXES))


def pick_rvc_model(folder: Path) -> Path | None:
    """The folder's RVC model file: its only candidate, or the one named after the folder; None without one;
    ModelError when several could be it (RVC keeps one file per voice in assets/weights/)."""
    files = rvc_candidates(folder)
    if len(files) <= 1:
        return files[0] if files else None
    named = [p for p in files if p.stem == folder.name]
    if len(named) == 1:
        return named[0]
    raise ModelError(f"several .pth files in {folder.name}/ ({', '.join(p.name for p in files)}): keep the voice's "
                     f"model only, or name it {folder.name}.pth")


def is_trained_index(path: Path) -> bool:
    """RVC's trained_*.index: the clustering without feature vectors (retrieval needs the added_*.index)."""
    from ..rvc.index_files import INDEX_SUFFIX, TRAINED_PREFIX

    return path.suffix.lower() == INDEX_SUFFIX and path.name.lower().startswith(TRAINED_PREFIX)


def pick_rvc_index(folder: Path, model_path: Path) -> Path | None:
    """The voice folder's index for the RVC model, paired as RVC WebUI does (svc_core.rvc.index_files.pick_index);
    ModelError when several could belong to it."""
    from ..rvc.index_files import INDEX_SUFFIX, pick_index

    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() == INDEX_SUFFIX and not is_trained_index(p))
    return pick_index(files, model_path.stem)


def check_index_width(index_dim: int, info: RvcInfo, index_name: str) -> None:
    """ModelError in RVC's words when an index was built for the other RVC version (or another encoder)."""
    if index_dim == info.content_dim:
        return
    other = VERSION_OF_WIDTH.get(index_dim)
    built_for = f"an RVC {other} model ({index_dim}-d features)" if other else f"{index_dim}-d features"
    raise ModelError(f"'{index_name}' was built for {built_for}, but this model is RVC {info.version} "
                     f"({info.content_dim}-d features). Upload the added_*.index made with this model (RVC writes "
                     f"it to logs/<experiment>/ beside the model's training files).")


def refuse_trained_index(paths: Iterable[Path]) -> None:
    """ModelError for an uploaded trained_*.index (it holds no feature vectors)."""
    for path in paths:
        if is_trained_index(path):
            raise ModelError(f"'{path.name}' is RVC's trained_*.index: the clustering without any feature vectors. "
                             "Upload the added_*.index from the same folder instead.")
