"""config.json of a so-vits-svc 4.x model: typed fields, 4.0 compatibility, speaker lookup.

`load_config(path)` reads and checks the file, `SvcConfig.to_dict()` writes upstream's layout
(train / data / model / spk sections) back, `template_config(...)` builds a fresh upstream-style dict.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from .constants import HOP_LENGTH, MODEL_SAMPLE_RATE
from .errors import ModelError, SpeakerError
from .file_limits import MAX_CONFIG_BYTES, check_file_size

# Output width of every speech encoder upstream's loader accepts (model.ssl_dim must match it).
ENCODER_DIMS: dict[str, int] = {
    "vec768l12": 768,
    "vec256l9": 256,
    "hubertsoft": 256,
    "whisper-ppg": 1024,
    "whisper-ppg-large": 1280,
    "cnhubertlarge": 1024,
    "dphubert": 768,
    "wavlmbase+": 768,
    "vec256l9-onnx": 256,
    "vec256l12-onnx": 256,
    "vec768l9-onnx": 768,
    "vec768l12-onnx": 768,
    "phonevec256": 256,  # svc_core's own encoder (svc_core/phonevec), not an upstream name
    "phoneppg42": 42,  # its posteriorgram tap (same weights file)
    "hubertsoft-onnx": 256,
}
# What a 4.0 config (no model.speech_encoder) was trained with, keyed by model.ssl_dim.
LEGACY_ENCODER_BY_DIM: dict[int, str] = {256: "vec256l9", 768: "vec768l12"}
UNIT_INTERPOLATE_MODES = ("left", "nearest", "nearest-exact", "linear")
VOCODER_NAMES = ("nsf-hifigan", "nsf-snake-hifigan")
DEFAULT_SEGMENT_SIZE = 10240  # samples, train.segment_size of the upstream template
_MISSING = object()


@dataclass
class ModelHParams:
    """The config "model" section: keyword arguments of SynthesizerTrn (upstream names and defaults)."""

    inter_channels: int
    hidden_channels: int
    filter_channels: int
    n_heads: int
    n_layers: int
    kernel_size: int
    p_dropout: float
    resblock: str
    resblock_kernel_sizes: list[int]
    resblock_dilation_sizes: list[list[int]]
    upsample_rates: list[int]
    upsample_initial_channel: int
    upsample_kernel_sizes: list[int]
    gin_channels: int
    ssl_dim: int
    n_speakers: int
    sampling_rate: int = MODEL_SAMPLE_RATE
    vol_embedding: bool = False
    vocoder_name: str = "nsf-hifigan"
    use_depthwise_conv: bool = False
    use_automatic_f0_prediction: bool = True
    flow_share_parameter: bool = False
    n_flow_layer: int = 4
    n_layers_trans_flow: int = 3
    use_transformer_flow: bool = False

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for SynthesizerTrn (deep copies of the lists)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self)}


@dataclass
class SvcConfig:
    """A parsed config.json. `raw` keeps every section as read (unknown keys included)."""

    sampling_rate: int
    hop_length: int
    filter_length: int
    win_length: int
    segment_size: int  # samples (train.segment_size); the model gets segment_size // hop_length frames
    unit_interpolate_mode: str
    speech_encoder: str
    spk: dict[str, int]
    model: ModelHParams
    raw: dict[str, Any] = field(default_factory=dict)
    version: str = "4.1"  # "4.0" when the file has none of the 4.1 fields
    speech_encoder_inferred: bool = False  # True when guessed from model.ssl_dim (4.0 configs)
    path: str = "config.json"

    @property
    def n_speakers(self) -> int:
        return self.model.n_speakers

    def speaker_id(self, name_or_id: str | int | None) -> int:
        """Speaker id for a name from the spk map, or an integer id, or None for a single-speaker model's only
        speaker; SpeakerError lists the valid ones."""
        if name_or_id is None:
            return self.only_speaker()
        if isinstance(name_or_id, str) and name_or_id in self.spk:
            return self.spk[name_or_id]
        candidate: int | None = None
        if isinstance(name_or_id, int) and not isinstance(name_or_id, bool):
            candidate = name_or_id
        elif isinstance(name_or_id, str) and name_or_id.strip().isdigit():
            candidate = int(name_or_id.strip())
        if candidate is not None and 0 <= candidate < self.model.n_speakers:
            return candidate
        raise SpeakerError(
            f"Unknown speaker {name_or_id!r}. This model ({os.path.basename(self.path)}) has "
            f"{self.model.n_speakers} speaker(s): {self.describe_speakers()}. Use one of these names or an id "
            f"from 0 to {self.model.n_speakers - 1}."
        )

    def only_speaker(self, option: str = "a speaker name or id") -> int:
        """The id of a single-speaker model's speaker; SpeakerError (naming `option`) when there are several."""
        if self.model.n_speakers == 1:
            return 0
        if len(self.spk) == 1:  # one trained speaker in a larger table (RVC's 109 rows, so-vits' n_speakers 200)
            return next(iter(self.spk.values()))
        raise SpeakerError(
            f"This model ({os.path.basename(self.path)}) has {self.model.n_speakers} speakers: "
            f"{self.describe_speakers()}. Choose one with {option}."
        )

    def speaker_name(self, sid: int) -> str:
        """The spk map's name of speaker id `sid` (the id as text when it has none)."""
        return next((name for name, i in self.spk.items() if i == sid), str(sid))

    def describe_speakers(self) -> str:
        if not self.spk:
            return "no names in the spk section"
        return ", ".join(f"{name} ({sid})" for name, sid in sorted(self.spk.items(), key=lambda kv: kv[1]))

    def to_dict(self) -> dict[str, Any]:
        """Upstream 4.1 layout (train/data/model/spk); unknown keys of the original file are kept."""
        out = copy.deepcopy(self.raw)
        train = out.setdefault("train", {})
        train["segment_size"] = self.segment_size
        data = out.setdefault("data", {})
        data.update(
            sampling_rate=self.sampling_rate,
            hop_length=self.hop_length,
            filter_length=self.filter_length,
            win_length=self.win_length,
            unit_interpolate_mode=self.unit_interpolate_mode,
        )
        model = out.setdefault("model", {})
        hparams = self.model.kwargs()
        if "sampling_rate" not in model and hparams["sampling_rate"] == MODEL_SAMPLE_RATE:
            del hparams["sampling_rate"]  # upstream configs do not carry it in the model section
        model.update(hparams)
        model["speech_encoder"] = self.speech_encoder
        out["spk"] = dict(self.spk)
        return out

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(), fh, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------- parsing


class FieldReader:
    """Typed field access with messages that name the file and the field (config.json; the diffusion config.yaml
    reader subclasses it)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, problem: str, fix: str) -> ModelError:
        return ModelError(f"{self.source}: {where} {problem}; {fix}.")

    def section(self, doc: Mapping[str, Any], name: str, required: bool = True) -> dict[str, Any]:
        value = doc.get(name, _MISSING)
        if value is _MISSING:
            if required:
                raise self.fail(f'the "{name}" section', "is missing", f'copy the "{name}" section from the '
                                "config.json the model was trained with")
            return {}
        if not isinstance(value, dict):
            raise self.fail(f'the "{name}" section', f"must be an object, not {type(value).__name__}",
                            "restore it from the config.json the model was trained with")
        return value

    def get(self, sec: Mapping[str, Any], sec_name: str, key: str, kind: str, default: Any = _MISSING) -> Any:
        where = f"{sec_name}.{key}"
        value = sec.get(key, _MISSING)
        if value is _MISSING or (value is None and default is not _MISSING):
            if default is _MISSING:
                raise self.fail(where, "is missing", "add it (see the config.json the model was trained with)")
            return copy.deepcopy(default)
        return self.check(where, value, kind)

    def show(self, value: Any) -> str:
        """`value` as the message quotes it."""
        return json.dumps(value)

    def check(self, where: str, value: Any, kind: str) -> Any:
        """`value` as `kind` (int: > 0, count: >= 0, float, bool, str, ints, int_lists), else a ModelError."""
        def bad(want: str) -> ModelError:
            return self.fail(where, f"must be {want}, got {self.show(value)}", f"set {where} to {want}")

        whole = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) \
            and value == int(value)
        if kind == "int":
            if not whole or value <= 0:
                raise bad("a positive whole number")
            return int(value)
        if kind == "count":
            if not whole or value < 0:
                raise bad("a whole number >= 0")
            return int(value)
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise bad("a number")
            return float(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, int) and value in (0, 1):
                return bool(value)
            raise bad("true or false")
        if kind == "str":
            if not isinstance(value, str) or not value:
                raise bad("a text value")
            return value
        if kind == "ints":
            if not isinstance(value, list) or not value:
                raise bad("a list of positive whole numbers")
            return [self.check(f"{where}[{i}]", v, "int") for i, v in enumerate(value)]
        if kind == "int_lists":
            if not isinstance(value, list) or not value:
                raise bad("a list of lists of positive whole numbers")
            return [self.check(f"{where}[{i}]", v, "ints") for i, v in enumerate(value)]
        raise AssertionError(kind)


_MODEL_KINDS: dict[str, str] = {
    "inter_channels": "int", "hidden_channels": "int", "filter_channels": "int", "n_heads": "int",
    "n_layers": "int", "kernel_size": "int", "p_dropout": "float", "resblock": "str",
    "resblock_kernel_sizes": "ints", "resblock_dilation_sizes": "int_lists", "upsample_rates": "ints",
    "upsample_initial_channel": "int", "upsample_kernel_sizes": "ints", "gin_channels": "int", "ssl_dim": "int",
    "n_speakers": "int", "sampling_rate": "int", "vol_embedding": "bool", "vocoder_name": "str",
    "use_depthwise_conv": "bool", "use_automatic_f0_prediction": "bool", "flow_share_parameter": "bool",
    "n_flow_layer": "int", "n_layers_trans_flow": "int", "use_transformer_flow": "bool",
}
_MODEL_DEFAULTS = {f.name: f.default for f in fields(ModelHParams) if f.default is not dataclasses.MISSING}


def _model_hparams(r: FieldReader, model: Mapping[str, Any]) -> ModelHParams:
    values: dict[str, Any] = {}
    for name, kind in _MODEL_KINDS.items():
        values[name] = r.get(model, "model", name, kind, _MODEL_DEFAULTS.get(name, _MISSING))
    hp = ModelHParams(**values)
    if hp.resblock not in ("1", "2"):
        raise r.fail("model.resblock", f"must be \"1\" or \"2\", got {json.dumps(hp.resblock)}", 'set it to "1"')
    if hp.vocoder_name not in VOCODER_NAMES:
        hp.vocoder_name = "nsf-hifigan"  # upstream falls back to nsf-hifigan for unknown names
    if len(hp.upsample_rates) != len(hp.upsample_kernel_sizes):
        raise r.fail("model.upsample_kernel_sizes", f"has {len(hp.upsample_kernel_sizes)} entries but "
                     f"model.upsample_rates has {len(hp.upsample_rates)}", "give one kernel size per upsample rate")
    if len(hp.resblock_kernel_sizes) != len(hp.resblock_dilation_sizes):
        raise r.fail("model.resblock_dilation_sizes", f"has {len(hp.resblock_dilation_sizes)} entries but "
                     f"model.resblock_kernel_sizes has {len(hp.resblock_kernel_sizes)}",
                     "give one dilation list per resblock kernel size")
    if hp.hidden_channels % hp.n_heads:
        raise r.fail("model.n_heads", f"({hp.n_heads}) does not divide model.hidden_channels "
                     f"({hp.hidden_channels})", "restore both from the training config")
    return hp


def _speech_encoder(r: FieldReader, model: Mapping[str, Any], ssl_dim: int) -> tuple[str, bool]:
    name = model.get("speech_encoder")
    if name is None:
        if ssl_dim not in LEGACY_ENCODER_BY_DIM:
            raise r.fail("model.speech_encoder", f"is missing and model.ssl_dim is {ssl_dim}, which no 4.0 encoder "
                         "produces", "add \"speech_encoder\" to the model section (one of "
                         + ", ".join(ENCODER_DIMS) + ")")
        return LEGACY_ENCODER_BY_DIM[ssl_dim], True
    name = r.check("model.speech_encoder", name, "str")
    if name not in ENCODER_DIMS:
        raise r.fail("model.speech_encoder", f"is {json.dumps(name)}, which is not a known encoder",
                     "use one of " + ", ".join(ENCODER_DIMS))
    return name, False


def _speakers(r: FieldReader, doc: Mapping[str, Any], n_speakers: int) -> dict[str, int]:
    spk = r.section(doc, "spk", required=False)
    out: dict[str, int] = {}
    for name, sid in spk.items():
        if isinstance(sid, bool) or not isinstance(sid, int) or sid < 0:
            raise r.fail(f'spk["{name}"]', f"must be a speaker id (0, 1, ...), got {json.dumps(sid)}",
                         "give every speaker name a whole-number id")
        if sid >= n_speakers:
            raise r.fail(f'spk["{name}"]', f"is {sid} but model.n_speakers is {n_speakers} (ids 0.."
                         f"{n_speakers - 1})", "fix the id or model.n_speakers to match the training data")
        out[str(name)] = sid
    return out


def config_from_dict(doc: Mapping[str, Any], source: str = "config.json") -> SvcConfig:
    """Check and convert a parsed config.json dict; `source` names the file in error messages."""
    r = FieldReader(source)
    if not isinstance(doc, dict):
        raise ModelError(f"{source}: the file must hold a JSON object with train/data/model/spk sections, "
                         f"not a {type(doc).__name__}; is this the model's config.json?")
    model_sec = r.section(doc, "model")
    data = r.section(doc, "data")
    train = r.section(doc, "train", required=False)
    hp = _model_hparams(r, model_sec)
    hop = r.get(data, "data", "hop_length", "int")
    if math.prod(hp.upsample_rates) != hop:
        raise r.fail("model.upsample_rates", f"multiply to {math.prod(hp.upsample_rates)} but data.hop_length is "
                     f"{hop}", f"restore both from the training config (upstream uses {HOP_LENGTH})")
    filter_length = r.get(data, "data", "filter_length", "int")
    encoder, inferred = _speech_encoder(r, model_sec, hp.ssl_dim)
    is_40 = "speech_encoder" not in model_sec and "unit_interpolate_mode" not in data
    mode = r.get(data, "data", "unit_interpolate_mode", "str", "left")
    if mode not in UNIT_INTERPOLATE_MODES:
        raise r.fail("data.unit_interpolate_mode", f"is {json.dumps(mode)}",
                     "use one of " + ", ".join(UNIT_INTERPOLATE_MODES))
    return SvcConfig(
        sampling_rate=r.get(data, "data", "sampling_rate", "int"),
        hop_length=hop,
        filter_length=filter_length,
        win_length=r.get(data, "data", "win_length", "int", filter_length),
        segment_size=r.get(train, "train", "segment_size", "int", DEFAULT_SEGMENT_SIZE),
        unit_interpolate_mode=mode,
        speech_encoder=encoder,
        spk=_speakers(r, doc, hp.n_speakers),
        model=hp,
        raw=copy.deepcopy(dict(doc)),
        version="4.0" if is_40 else "4.1",
        speech_encoder_inferred=inferred,
        path=source,
    )


def read_config_text(path: str | os.PathLike, what: str, missing_hint: str, the_file: str) -> str:
    """The text of a small config file, size-checked before reading (svc_core.file_limits), UTF-8 with or without
    a BOM; ModelError naming the file and what to do (what: "Config file"; the_file: "the model's config.json")."""
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise ModelError(f"{what} '{path}' does not exist; {missing_hint}.")
    check_file_size(path, MAX_CONFIG_BYTES, what)
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ModelError(f"{name} is not a text (UTF-8) file; pick {the_file}.") from None
    if not text.strip():
        raise ModelError(f"{name} is empty; restore {the_file}.")
    return text


def read_config_json(path: str | os.PathLike) -> Any:
    """The parsed JSON of a config file; ModelError (naming the file and what to fix) when it cannot be read."""
    name = os.path.basename(os.fspath(path))
    text = read_config_text(path, "Config file", "every so-vits-svc model comes with a config.json next to its "
                            "G_*.pth", "the model's config.json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelError(f"{name} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}; "
                         "fix that spot (a missing comma or quote is typical).") from None
    except RecursionError:
        raise ModelError(f"{name} nests lists or objects too deeply to be a config.json.") from None


def load_config(path: str | os.PathLike) -> SvcConfig:
    """Read a so-vits-svc config.json (4.0 or 4.1). ModelError names the file and what to fix."""
    cfg = config_from_dict(read_config_json(path), source=os.path.basename(os.fspath(path)))
    cfg.path = os.fspath(path)
    return cfg


def template_config(speech_encoder: str = "vec768l12", speakers: Mapping[str, int] | None = None,
                    **model_overrides: Any) -> dict[str, Any]:
    """A config.json dict as upstream's preprocessing writes it (4.1 template, encoder rules of spec a.4)."""
    dim = ENCODER_DIMS[speech_encoder]
    speakers = dict(speakers) if speakers is not None else {"speaker0": 0}
    model: dict[str, Any] = {
        "inter_channels": 192, "hidden_channels": 192, "filter_channels": 768, "n_heads": 2, "n_layers": 6,
        "kernel_size": 3, "p_dropout": 0.1, "resblock": "1", "resblock_kernel_sizes": [3, 7, 11],
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]], "upsample_rates": [8, 8, 2, 2, 2],
        "upsample_initial_channel": 512, "upsample_kernel_sizes": [16, 16, 4, 4, 4], "n_layers_q": 3,
        "n_layers_trans_flow": 3, "n_flow_layer": 4, "use_spectral_norm": False, "gin_channels": dim,
        "ssl_dim": dim, "n_speakers": max(speakers.values(), default=-1) + 1, "vocoder_name": "nsf-hifigan",
        "speech_encoder": speech_encoder, "speaker_embedding": False, "vol_embedding": False,
        "use_depthwise_conv": False, "flow_share_parameter": False, "use_automatic_f0_prediction": True,
        "use_transformer_flow": False,
    }
    if dim > 768:
        model["filter_channels"] = dim
    model.update(model_overrides)
    return {
        "train": {
            "log_interval": 200, "eval_interval": 800, "seed": 1234, "epochs": 10000, "learning_rate": 0.0001,
            "betas": [0.8, 0.99], "eps": 1e-09, "batch_size": 6, "fp16_run": False, "half_type": "fp16",
            "lr_decay": 0.999875, "segment_size": DEFAULT_SEGMENT_SIZE, "init_lr_ratio": 1, "warmup_epochs": 0,
            "c_mel": 45, "c_kl": 1.0, "use_sr": True, "max_speclen": 512, "port": "8001", "keep_ckpts": 3,
            "all_in_mem": False, "vol_aug": bool(model["vol_embedding"]),
        },
        "data": {
            "training_files": "filelists/train.txt", "validation_files": "filelists/val.txt",
            "max_wav_value": 32768.0, "sampling_rate": MODEL_SAMPLE_RATE, "filter_length": 2048,
            "hop_length": HOP_LENGTH, "win_length": 2048, "n_mel_channels": 80, "mel_fmin": 0.0,
            "mel_fmax": MODEL_SAMPLE_RATE // 2, "unit_interpolate_mode": "nearest",
        },
        "model": model,
        "spk": speakers,
    }
