"""Name -> content encoder registry, weights-file lookup and model/encoder compatibility checks."""
from __future__ import annotations

import dataclasses
import os
from typing import Callable

import torch

from ..errors import EncoderMismatchError, MissingWeightsError, OptionError
from .base import ContentEncoder, EncoderInfo
from .contentvec import ContentVecEncoder
from .hubert_soft import HubertSoftEncoder

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repo's top folder
PRETRAIN_ENV = "SVC_PRETRAIN_DIR"
PRETRAIN_DIR = "pretrain"  # relative to the working directory, as in so-vits-svc
ONNX_SUFFIX = "-onnx"  # upstream's ONNX variants give the same features as the plain names
CONTENTVEC_FILE = "checkpoint_best_legacy_500.pt"
HUBERT_SOFT_FILE = "hubert-soft-0d54a1f4.pt"
RVC_HUBERT_FILE = "hubert_base.pt"  # RVC's name for the same ContentVec checkpoint
RVC_HUBERT_DIR = os.path.join("assets", "hubert")  # where RVC WebUI keeps it (relative to the working directory)
# default file -> other names the same weights go by, and the extra folders those are looked for in
ALTERNATIVE_FILES: dict[str, tuple[str, ...]] = {CONTENTVEC_FILE: (RVC_HUBERT_FILE,)}
ALTERNATIVE_DIRS: dict[str, tuple[str, ...]] = {RVC_HUBERT_FILE: (RVC_HUBERT_DIR,)}

CONTENTVEC_SOURCE = (
    f"Get ContentVec's legacy checkpoint '{CONTENTVEC_FILE}' from the ContentVec project (github.com/auspicious3000/"
    "contentvec, linked from the so-vits-svc README); RVC's 'hubert_base.pt' renamed to that name also works."
)
HUBERT_SOFT_SOURCE = f"Get '{HUBERT_SOFT_FILE}' from the releases of the bshall/hubert GitHub repository."

Factory = Callable[[str, "str | torch.device"], ContentEncoder]


@dataclasses.dataclass(frozen=True)
class _Entry:
    info: EncoderInfo
    factory: Factory


_REGISTRY: dict[str, _Entry] = {}


def register_encoder(info: EncoderInfo, factory: Factory) -> None:
    """Add an encoder under info.name; factory(weights_path, device) builds it."""
    _REGISTRY[info.name] = _Entry(info, factory)


def _contentvec(name: str, dim: int, layer: int, final_proj: bool) -> None:
    tap = f"transformer layer {layer} output" + (" through final_proj" if final_proj else " (no final_proj)")
    register_encoder(
        EncoderInfo(name, dim, CONTENTVEC_FILE, CONTENTVEC_SOURCE, f"ContentVec {tap}, {dim} channels at 50 Hz"),
        lambda path, device: ContentVecEncoder(name, path, layer, final_proj, device),
    )


_contentvec("vec768l12", 768, 12, False)
_contentvec("vec256l9", 256, 9, True)
_contentvec("vec768l9", 768, 9, False)
_contentvec("vec256l12", 256, 12, True)
register_encoder(
    EncoderInfo("hubertsoft", 256, HUBERT_SOFT_FILE, HUBERT_SOFT_SOURCE, "bshall HuBERT-Soft units, 256 at 50 Hz"),
    lambda path, device: HubertSoftEncoder(path, device),
)


def _phonevec(name: str, tap: str) -> Factory:
    def build(path: str, device: "str | torch.device") -> ContentEncoder:
        from ..phonevec.encoder import PhoneVecEncoder  # imported late: svc_core.phonevec imports this package

        return PhoneVecEncoder(path, device, name=name, tap=tap)

    return build


PHONEVEC_SOURCE = "It is built by `make phonevec` (python -m svc_core.phonevec) and shipped in the repo."
register_encoder(
    EncoderInfo("phonevec256", 256, "phonevec256.pt", PHONEVEC_SOURCE,
                "phonevec: CTC phone-trained conv+transformer (trained here), hidden layer, 256 at 50 Hz",
                shipped="voices/starter/phonevec256.pt"),
    _phonevec("phonevec256", "hidden"),
)
register_encoder(
    EncoderInfo("phoneppg42", 42, "phonevec256.pt", PHONEVEC_SOURCE,
                "phonevec's phonetic posteriorgram (blank + 41 phones; little speaker information), 42 at 50 Hz",
                shipped="voices/starter/phonevec256.pt"),
    _phonevec("phoneppg42", "ppg"),
)


def list_encoders() -> list[str]:
    """Registered encoder names, sorted."""
    return sorted(_REGISTRY)


def _canonical(name: str) -> str:
    name = name.strip()
    return name[: -len(ONNX_SUFFIX)] if name.endswith(ONNX_SUFFIX) else name


def _entry(name: str) -> _Entry:
    entry = _REGISTRY.get(_canonical(name)) if isinstance(name, str) else None
    if entry is None:
        raise OptionError(f"Unknown content encoder '{name}'. Available: {', '.join(list_encoders())}.")
    return entry


def encoder_info(name: str) -> EncoderInfo:
    """Static facts about encoder `name` (no weights are loaded)."""
    return _entry(name).info


def _no_file_alternatives() -> str:
    free = [name for name, e in _REGISTRY.items() if not e.info.default_file]
    if free:
        return f"Encoders that need no weights file: {', '.join(sorted(free))}."
    return "Every available content encoder needs a weights file; none works without one."


def find_weights(name: str, path: str | os.PathLike | None = None) -> str:
    """The weights file for encoder `name`: `path` (a file, or a folder holding the default file), else
    $SVC_PRETRAIN_DIR/<default_file>, else ./pretrain/<default_file>, then the same for the file's other names
    (ContentVec: RVC's hubert_base.pt, also in ./assets/hubert/), else the copy shipped in the repo (phonevec256:
    voices/starter/phonevec256.pt). Raises MissingWeightsError."""
    info = encoder_info(name)
    component = f"The '{info.name}' content encoder"
    names = (info.default_file,) + ALTERNATIVE_FILES.get(info.default_file, ())
    if path is not None:
        path = os.fspath(path)
        candidates = [os.path.join(path, n) for n in names] if os.path.isdir(path) else [path]
        for candidate in candidates:
            if os.path.isfile(candidate):
                return candidate
        raise MissingWeightsError(component, candidates[0], info.where_to_get, _no_file_alternatives())
    candidates = []
    env_dir = os.environ.get(PRETRAIN_ENV)
    for name in names:
        if env_dir:
            candidates.append(os.path.join(env_dir, name))
        candidates.append(os.path.join(PRETRAIN_DIR, name))
        candidates += [os.path.join(folder, name) for folder in ALTERNATIVE_DIRS.get(name, ())]
    if info.shipped:
        candidates.append(os.path.join(REPO_ROOT, info.shipped))
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    looked = " or ".join(f"'{c}'" for c in candidates)
    where = (
        f"Looked for {looked}. {info.where_to_get} Put it in ./{PRETRAIN_DIR}/ or in ${PRETRAIN_ENV}, "
        "or pass its path."
    )
    raise MissingWeightsError(component, info.default_file, where, _no_file_alternatives())


def get_encoder(name: str, path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> ContentEncoder:
    """Build encoder `name` (e.g. "vec768l12") from its weights file; see `find_weights` for the lookup."""
    entry = _entry(name)
    return entry.factory(find_weights(entry.info.name, path), device)


def expected_encoder(ssl_dim: int, speech_encoder: str | None) -> str:
    """The encoder a model config asks for; 4.0 configs lack speech_encoder (256 -> vec256l9, else vec768l12)."""
    if speech_encoder:
        return _canonical(speech_encoder)
    return "vec256l9" if ssl_dim == 256 else "vec768l12"


def check_compatible(encoder: str | ContentEncoder, ssl_dim: int, speech_encoder: str | None = None) -> str:
    """Raise EncoderMismatchError unless `encoder` gives the features a model (config ssl_dim / speech_encoder)
    was trained on. Returns the expected encoder name."""
    expected = expected_encoder(ssl_dim, speech_encoder)
    if isinstance(encoder, ContentEncoder):
        name, dim = encoder.name, encoder.dim
    else:
        info = encoder_info(encoder)
        name, dim = info.name, info.dim
    if dim != ssl_dim:
        raise EncoderMismatchError(
            f"This model expects {ssl_dim}-dim {expected} features; the selected encoder '{name}' gives {dim}. "
            f"Select the '{expected}' encoder."
        )
    if _canonical(name) != expected:
        raise EncoderMismatchError(
            f"This model was trained on {expected} features; the selected encoder '{name}' gives different "
            f"{dim}-dim features. Select the '{expected}' encoder."
        )
    return expected
