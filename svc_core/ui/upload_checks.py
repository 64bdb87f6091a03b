"""What an upload of voice files holds (`classify_uploads`) and the load check it must pass before it is kept
(`check_upload`): every weights file goes through svc_core's safe loaders, so no code stored in a file ever runs.
An RVC WebUI / Applio model (svc_core.families says so from its tensors) needs no config.json."""
from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from .. import families
from ..errors import ModelError
from . import diffusion_files as dfiles
from . import rvc_files

if TYPE_CHECKING:
    from .models import ModelEntry

CLUSTER_SUFFIXES = (".pkl", ".index")
GENERATOR_PATTERN = re.compile(r"^[GW]_(\d+)\.pth$", re.IGNORECASE)  # G_<step>.pth / W_<step>.pth
RVC_UPLOAD_NAME = "model.pth"  # an uploaded RVC WebUI / Applio model, in its upload folder
UPLOAD_SUFFIXES = (".pth", ".onnx", ".json", ".pt", ".pkl", ".index", *dfiles.YAML_SUFFIXES)


def classify_uploads(paths: Iterable[Path]) -> dict[str, Path]:
    """Uploaded files -> {"model", "config", "cluster", "encoder", "diffusion_model", "diffusion_config"}; a
    diffusion model_*.pt + config.yaml may come with a so-vits voice or alone (a diffusion-only voice). ModelError
    for anything missing, doubled or foreign."""
    from ..onnx.upstream_file import encoder_name_of

    found: dict[str, list[Path]] = {"model": [], "config": [], "cluster": [], "encoder": []}
    diffusion_models, diffusion_configs, paths = dfiles.split_uploads(paths)
    for path in paths:
        suffix = path.suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            raise ModelError(f"'{path.name}' is not a model file. Upload a G_*.pth (or an ONNX export such as "
                             "<name>_SoVits.onnx), its config.json and optionally a kmeans_*.pt, feature_and_index.pkl"
                             " or .index file, the content encoder as vec-768-layer-12.onnx & co., or a diffusion "
                             "model_*.pt with its config.yaml; or an RVC model <name>.pth with its added_*.index.")
        if suffix == ".onnx":
            found["encoder" if encoder_name_of(path) else "model"].append(path)
        elif suffix == ".json":
            found["config"].append(path)
        elif suffix == ".pth" and path.name.upper().startswith("G_"):
            found["model"].append(path)
        elif path.name.lower().startswith("kmeans") or suffix in CLUSTER_SUFFIXES:
            found["cluster"].append(path)
        elif suffix == ".pth":
            found["model"].append(path)
        else:
            raise ModelError(f"'{path.name}': a .pt file is taken as a cluster file when named kmeans*.pt, or as a "
                             "diffusion model when named model_<step>.pt (as upstream's train_diff saves it).")
    rvc_files.refuse_trained_index(found["cluster"])
    pair = dfiles.check_upload_pair(diffusion_models, diffusion_configs)
    alone = pair is not None and not found["model"]
    if not alone and len(found["model"]) != 1:
        raise ModelError("Upload exactly one generator checkpoint (G_*.pth), RVC model (<name>.pth) or ONNX export "
                         f"(<name>_SoVits.onnx); got {len(found['model']) or 'none'}. (A diffusion model_*.pt with its "
                         "config.yaml may also be uploaded alone.)")
    if alone and found["config"]:
        raise ModelError("A config.json belongs to a so-vits generator (G_*.pth); upload the generator with it, or "
                         "leave it out to use the diffusion model alone.")
    rvc = not alone and _is_rvc(found["model"][0])
    if rvc and (pair is not None or found["encoder"]):
        raise ModelError(f"'{found['model'][0].name}' is an RVC model: it takes no diffusion model or ONNX content "
                         "encoder. Upload it alone, or with its added_*.index.")
    if rvc and len(found["config"]) > 1:
        raise ModelError("Upload at most one config.json with an RVC model (RVC's training config, for a G_*.pth "
                         "training checkpoint).")
    if not alone and not rvc and len(found["config"]) != 1:
        raise ModelError(f"Upload the model's config.json with it (for an ONNX export, its MoeVoiceStudio descriptor "
                         f"<name>.json works too); got {len(found['config']) or 'none'}.")
    if len(found["cluster"]) > 1 or len(found["encoder"]) > 1:
        raise ModelError("Upload at most one cluster or index file and at most one content encoder.")
    out = {kind: files[0] for kind, files in found.items() if files}
    if pair is not None:
        out.update(diffusion_model=pair.model, diffusion_config=pair.config)
    return out


def _is_rvc(model: Path) -> bool:
    """The uploaded model file is an RVC WebUI / Applio model or RVC training checkpoint (the family table reads its
    tensor names through the safe loader; an unsafe or unreadable file is refused here with its reason)."""
    return model.suffix.lower() != ".onnx" and families.identify(model).is_rvc


def check_upload(entry: ModelEntry, encoder: Path | None) -> int:
    """Load-check an uploaded voice -> its content-unit width. A G_*.pth goes through the safe loader and the
    config/tensor checks; an ONNX file must be self-contained (no external-data paths, no custom operators), have
    upstream's interface matching the config, and open in ONNX Runtime; so must an uploaded ONNX encoder. A
    diffusion model goes through the safe loader, checked against its yaml and against the so-vits voice. An RVC
    model is built from its tensors (every shape checked against its own settings)."""
    svc_config = None
    if entry.diffusion_only:
        ssl_dim = 0
    elif entry.rvc is not None:
        ssl_dim = int(families.load_model(entry.model_path, entry.config_path).config.model.ssl_dim)
    elif entry.onnx_only:
        from ..onnx.runtime import make_session
        from ..onnx.upstream_file import check_self_contained, upstream_manifest

        check_self_contained(entry.model_path)
        ssl_dim = int(upstream_manifest(entry.model_path, entry.config_path)["ssl_dim"])
        make_session(entry.model_path, "cpu", 1)  # ONNX Runtime reads and checks the whole graph
        if entry.diffusion is not None:
            from ..onnx.moevs import load_voice_config

            svc_config = load_voice_config(entry.config_path)[0]
    else:
        from ..checkpoint import load_synthesizer

        svc_config = load_synthesizer(entry.model_path, entry.config_path).config
        ssl_dim = int(svc_config.model.ssl_dim)
    if entry.diffusion is not None:
        units = dfiles.check_uploaded_diffusion(entry.diffusion, svc_config, entry.model_path.name)
        ssl_dim = ssl_dim or units
    if encoder is not None:
        from ..encoders import check_compatible
        from ..onnx import OnnxEncoder
        from ..onnx.upstream_file import check_self_contained

        check_self_contained(encoder)
        check_compatible(OnnxEncoder(encoder, device="cpu", threads=1), ssl_dim, entry.speech_encoder)
    return ssl_dim


def stored_model_name(model: Path) -> str:
    """The name an uploaded model file gets in its voice folder, so that _pick_generator finds it: upstream's
    `<name>_SoVits.onnx` or `model.onnx`; a G_/W_<step>.pth as is; any other .pth is an RVC model (`model.pth`)
    when the family table says so, else a so-vits generator (`G_0.pth`)."""
    if model.suffix.lower() == ".onnx":
        return model.name if model.stem.endswith("_SoVits") else "model.onnx"
    if GENERATOR_PATTERN.match(model.name):
        return model.name
    return RVC_UPLOAD_NAME if families.identify(model).is_rvc else "G_0.pth"
