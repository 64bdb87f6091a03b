"""A job's options in, the engine's request out (one place for every front end: REST, page, CLI, Python).

`check_params(kind, params, library)` checks what a client sent before anything is stored: unknown fields are
refused by name (UnknownField), each value must have its field's type (OptionError), ranges are the engine's own
(ConvertRequest.options(), CoverJobRequest.checked()), the voice must exist (VoiceNotFound) and the speaker must be
one of it (SpeakerError). The answer is the normalized params: every field with its value (defaults filled in, the
speaker resolved), JSON-able, which is what the job record keeps and what the worker runs.

Params of a conversion: CONVERT_FIELDS (ConvertRequest's fields but the audio path). Params of a cover: the voice
options by the same names as a conversion's (model, speaker, f0_predictor, noise_scale, ...; flat, or nested
under "voice"), plus COVER_FIELDS (CoverJobRequest's fields but the song path and the voice); a cover's
"transpose" is the cover's (used when key is "manual"). `cluster_ratio` / `loudness_mix` None: the voice's default.
"""
from __future__ import annotations

import math
import typing
from dataclasses import MISSING, fields
from typing import Any

from ..errors import ModelError, OptionError, SpeakerError
from ..ui.cover_job import CoverJobRequest
from ..ui.job_io import ConvertRequest
from .errors import UnknownField, VoiceNotFound
from .model import KINDS

if typing.TYPE_CHECKING:
    from ..ui.models import ModelLibrary

CONVERT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ConvertRequest) if f.name != "audio_path")
COVER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(CoverJobRequest) if f.name not in ("song_path", "voice"))
VOICE_FIELDS_OF_COVER: tuple[str, ...] = tuple(name for name in CONVERT_FIELDS if name != "transpose")
REQUIRED = ("model",)
DEFAULT_SEPARATOR_NAME = "default"  # a cover's "separator" left out: the registry's default (the menu's first)

_TYPES = {f.name: str(f.type) for f in (*fields(ConvertRequest), *fields(CoverJobRequest))}
_DEFAULTS: dict[str, Any] = {}
for _f in (*fields(ConvertRequest), *fields(CoverJobRequest)):
    if _f.default is not MISSING:
        _DEFAULTS.setdefault(_f.name, _f.default)


def _value(name: str, value: Any) -> Any:
    """`value` as field `name`'s type (JSON numbers, booleans, strings, lists); OptionError when it is not."""
    kind = _TYPES[name]
    optional = kind.endswith("| None")
    base = kind.replace("| None", "").strip()
    if value is None:
        if optional:
            return None
        raise OptionError(f"{name} cannot be null.")
    if base == "bool":
        if isinstance(value, bool):
            return value
        raise OptionError(f"{name} must be true or false; got {value!r}.")
    if base in ("float", "int"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise OptionError(f"{name} must be a number; got {value!r}.")
        if base == "int":
            if float(value) != int(value):
                raise OptionError(f"{name} must be a whole number; got {value!r}.")
            return int(value)
        return float(value)
    if base == "str":
        if isinstance(value, str):
            return value.strip()
        raise OptionError(f"{name} must be a string; got {value!r}.")
    if base.startswith("tuple"):
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)) and all(isinstance(v, str) for v in items):
            return [str(v).strip() for v in items]
        raise OptionError(f"{name} must be a list of strings; got {value!r}.")
    raise OptionError(f"{name} has an unsupported type {kind}.")  # pragma: no cover - a new field type


def _typed(allowed: tuple[str, ...], params: dict[str, Any], what: str) -> dict[str, Any]:
    unknown = [name for name in params if name not in allowed]
    if unknown:
        raise UnknownField(f"Unknown field{'s' if len(unknown) > 1 else ''} for {what}: "
                           f"{', '.join(map(str, unknown))}. Known fields: {', '.join(allowed)}.")
    return {name: _value(name, value) for name, value in params.items()}


def _voice_checks(values: dict[str, Any], library: "ModelLibrary | None") -> dict[str, Any]:
    """The voice exists, the speaker is one of it ("" -> its first), the pitch tracker and backend are known."""
    from ..ui import backends
    from ..ui.job_io import resolve_f0

    model = values.get("model") or ""
    if not model:
        raise OptionError("model is required: the key of a voice (GET /api/v1/voices lists them).")
    values["backend"] = backends.check_backend(values.get("backend"))
    resolve_f0(values.get("f0_predictor") or "auto")  # known and usable here (OptionError says why not)
    if library is None:
        return values
    try:
        entry = library.get(model)
    except ModelError as err:
        raise VoiceNotFound(str(err)) from None
    speaker = values.get("speaker") or ""
    if not speaker and entry.speakers:
        values["speaker"] = entry.speakers[0]
    elif speaker and entry.speakers and speaker not in entry.speakers:
        raise SpeakerError(f"The voice {entry.key} has no speaker '{speaker}'. Its speakers: "
                           f"{', '.join(entry.speakers)}.")
    return values


def _filled(names: tuple[str, ...], values: dict[str, Any]) -> dict[str, Any]:
    out = {name: values[name] if name in values else _DEFAULTS.get(name, "") for name in names}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def check_params(kind: str, params: dict[str, Any], library: "ModelLibrary | None" = None) -> dict[str, Any]:
    """The normalized params of a `kind` job (see the module docstring), or the error saying what is wrong."""
    if kind not in KINDS:
        raise OptionError(f"Unknown job kind '{kind}'; one of: {', '.join(KINDS)}.")
    if not isinstance(params, dict):
        raise OptionError("The options must be a JSON object.")
    if kind == "train":  # a training run's options: svc_core.jobs.train_params
        from .train_params import check_train_params

        return check_train_params(params)
    missing = [name for name in REQUIRED if name not in params and not (kind == "cover" and "voice" in params)]
    if missing:
        raise OptionError(f"{', '.join(missing)} is required: the key of a voice (GET /api/v1/voices lists them).")
    if kind == "convert":
        values = _typed(CONVERT_FIELDS, params, "a conversion")
        values = _voice_checks(values, library)
        normalized = _filled(CONVERT_FIELDS, values)
        convert_request(normalized, None).options()  # the engine's ranges (OptionError names the value)
        return normalized
    flat = dict(params)
    nested = flat.pop("voice", None)
    if nested is not None:
        if not isinstance(nested, dict):
            raise OptionError("voice must be a JSON object of voice options.")
        clash = sorted(set(nested) & set(flat))
        if clash:
            raise OptionError(f"{', '.join(clash)} given both in voice and at the top level; give each once.")
        flat.update(nested)
    values = _typed((*COVER_FIELDS, *VOICE_FIELDS_OF_COVER), flat, "a cover")
    values = _voice_checks(values, library)
    values.setdefault("separator", DEFAULT_SEPARATOR_NAME)
    normalized = _filled((*VOICE_FIELDS_OF_COVER, *COVER_FIELDS), values)
    checked = cover_request(normalized, None).checked()  # key, formats, the cover's and the voice's ranges
    normalized["key"], normalized["formats"] = checked.key, list(checked.formats)
    return normalized


def convert_request(params: dict[str, Any], audio_path: str | None) -> ConvertRequest:
    """The engine request of checked conversion params for the clip at `audio_path`."""
    return ConvertRequest(audio_path, **{name: params[name] for name in CONVERT_FIELDS if name in params})


def cover_request(params: dict[str, Any], song_path: str | None) -> CoverJobRequest:
    """The engine request of checked cover params for the song at `song_path` (the default separator resolved)."""
    voice = ConvertRequest(None, **{name: params[name] for name in VOICE_FIELDS_OF_COVER if name in params})
    values = {name: params[name] for name in COVER_FIELDS if name in params}
    if "formats" in values:
        values["formats"] = tuple(values["formats"])
    if values.get("separator", DEFAULT_SEPARATOR_NAME) in (DEFAULT_SEPARATOR_NAME, ""):
        from ..separation.registry import DEFAULT_SEPARATOR

        values["separator"] = DEFAULT_SEPARATOR
    return CoverJobRequest(song_path, voice, **values)
