"""Package a trained starter model into a release folder the web demo's model scanner accepts.

    package_voices(PackageSettings(run_dir="build/starter/run", out_dir="voices/starter",
                                   encoder="pretrain/phonevec256.pt", index="build/starter/run/kmeans_10000.pt"))

The folder gets: `G_<step>.pth` (the run's highest step as a release file: no enc_q, fp16 unless `half=False`),
or `W_<step>.pth` for a WORLD voice run (svc_core.worldvoice; fp16 weights, no optimizer),
`config.json` (the run's), `kmeans_10000.pt` (when given), the content encoder `phonevec256.pt` (when given), and
`manifest.json` (speakers, step, encoder, corpus summary, and the sha256 and size of every other file).
Packaging is skipped when the folder already holds a verified package of the same step and sources.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PACKAGE_FORMAT = "svc-starter-voices"
PACKAGE_VERSION = 1
MANIFEST = "manifest.json"
_G = re.compile(r"^([GW])_(\d+)\.pth$")


@dataclass
class PackageSettings:
    """Sources and destination of a package."""

    run_dir: str  # training run folder (G_*.pth, config.json)
    out_dir: str  # release folder, e.g. voices/starter
    encoder: str | None  # content encoder weights (phonevec256.pt); None: found by the usual lookup
    index: str | None = None  # kmeans_*.pt (or feature_and_index.pkl)
    corpus_manifest: str | None = None  # the starter corpus' manifest.json (summarised into ours)
    half: bool = True  # store the generator in float16


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def newest_generator(run_dir: str | Path) -> tuple[Path, int]:
    """(path, step) of the highest-step G_*.pth (or W_*.pth) in run_dir; FileNotFoundError when there is none."""
    found = [(int(m.group(2)), p) for p in Path(run_dir).glob("*.pth") if (m := _G.match(p.name))]
    if not found:
        raise FileNotFoundError(f"no G_*.pth or W_*.pth checkpoint in {run_dir}")
    step, path = max(found)
    return path, step


def verify_package(out_dir: str | Path) -> list[str]:
    """Problems with a package folder (empty list = every listed file is there with its sha256 and size)."""
    out = Path(out_dir)
    try:
        doc = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return [f"{MANIFEST}: {err}"]
    problems = []
    for name, info in doc.get("files", {}).items():
        path = out / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != info["bytes"] or sha256_file(path) != info["sha256"]:
            problems.append(f"{name}: sha256 or size differs from {MANIFEST}")
    return problems


def _corpus_summary(path: str | None) -> dict[str, Any] | None:
    if not path:
        return None
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    return {"sentences": len(doc["sentences"]), "totals": doc["totals"], "settings": doc["settings"],
            "voices": doc["voices"], "heldout_sentences": doc["heldout"]["starter"]}


def _release_generator(src: Path, config: Path, dst: Path, step: int, half: bool) -> None:
    from ..checkpoint import load_synthesizer, save_generator_checkpoint
    from ..worldvoice.model import WorldVoice, save_checkpoint

    model = load_synthesizer(src, config)
    tmp = dst.with_name(dst.name + ".part")
    if isinstance(model, WorldVoice):
        save_checkpoint(model.net, tmp, step, half=half)
    else:
        save_generator_checkpoint(model, tmp, iteration=step, release=True, half=half)
    tmp.replace(dst)


def package_voices(settings: PackageSettings, log=print) -> dict[str, Any]:
    """Write (or keep) the release folder; returns its manifest."""
    g_src, step = newest_generator(settings.run_dir)
    config_src = Path(settings.run_dir) / "config.json"
    sources = {"generator": g_src.name, "generator_sha256": sha256_file(g_src), "half": settings.half,
               "encoder_sha256": sha256_file(settings.encoder) if settings.encoder else None,
               "index_sha256": sha256_file(settings.index) if settings.index else None}
    out = Path(settings.out_dir)
    old = out / MANIFEST
    if old.is_file() and not verify_package(out):
        doc = json.loads(old.read_text(encoding="utf-8"))
        if doc.get("sources") == sources:
            log(f"{out}: already packaged from {g_src.name}; kept")
            return doc
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob("G_*.pth"), *out.glob("W_*.pth")]:
        stale.unlink()
    g_name = f"{g_src.name[0]}_{step}.pth"
    _release_generator(g_src, config_src, out / g_name, step, settings.half)
    shutil.copyfile(config_src, out / "config.json")
    if settings.encoder:
        shutil.copyfile(settings.encoder, out / Path(settings.encoder).name)
    if settings.index:
        shutil.copyfile(settings.index, out / Path(settings.index).name)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    names = sorted(p.name for p in out.iterdir() if p.is_file() and p.name != MANIFEST
                   and not p.name.endswith(".part"))
    doc = {
        "format": PACKAGE_FORMAT, "version": PACKAGE_VERSION, "step": step,
        "speakers": [n for n, _ in sorted(config.get("spk", {}).items(), key=lambda kv: kv[1])],
        "speech_encoder": config["model"].get("speech_encoder"),
        "encoder_file": Path(settings.encoder).name if settings.encoder else None,
        "files": {n: {"sha256": sha256_file(out / n), "bytes": (out / n).stat().st_size} for n in names},
        "sources": sources,
        "corpus": _corpus_summary(settings.corpus_manifest),
    }
    tmp = out / (MANIFEST + ".part")
    tmp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    log(f"{out}: " + ", ".join(f"{n} ({doc['files'][n]['bytes'] / 1e6:.1f} MB)" for n in names))
    return doc
