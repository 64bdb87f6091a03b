"""The diffusion model's config.yaml (so-vits-svc 4.1 `configs/diffusion.yaml`, saved as `config.yaml` beside
`model_*.pt`): typed fields, checks whose messages name the file, the field and the fix.

`load_diffusion_config(path)` reads a file (size-limited, `yaml.safe_load`), `diffusion_config_from_dict(doc)` checks
a parsed dict, `DiffusionConfig.to_dict()` / `.save()` write upstream's layout back, `template_diffusion_config()`
builds a fresh one as upstream's preprocessing does. DDSP-SVC / Diffusion-SVC yaml files of model type `Diffusion`
(same Unit2Mel network) are read too: their encoder names are mapped to ours, missing 4.1 fields get upstream's
defaults.
"""
from __future__ import annotations

import copy
import os
import reprlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from ..config import ENCODER_DIMS, UNIT_INTERPOLATE_MODES, FieldReader, read_config_text
from ..errors import ModelError

MODEL_TYPE = "Diffusion"  # the only model.type whose network is upstream's Unit2Mel + WaveNet
# Other model types of the same yaml family, with what they are (refused by name).
OTHER_MODEL_TYPES: dict[str, str] = {
    "DiffusionV2": "a Diffusion-SVC 2.x model (configurable denoiser, dilated WaveNet/transformer or ConvNext)",
    "ReFlow": "a Diffusion-SVC 2.x rectified-flow model",
    "ReFlow1Step": "a Diffusion-SVC 2.x one-step rectified-flow model",
    "Naive": "a Diffusion-SVC naive (non-diffusion transformer) model",
    "NaiveFS": "a Diffusion-SVC naive (non-diffusion transformer) model",
    "NaiveV2": "a Diffusion-SVC naive v2 (non-diffusion) model",
    "DiffusionNew": "a DDSP-SVC 'DiffusionNew' model (DDSP + diffusion in one network)",
    "DiffusionFast": "a DDSP-SVC 'DiffusionFast' model (DDSP + naive diffusion in one network)",
    "RectifiedFlow": "a DDSP-SVC 6.x rectified-flow model",
    "CombSub": "a DDSP-SVC DDSP model (not a diffusion model)",
    "CombSubFast": "a DDSP-SVC DDSP model (not a diffusion model)",
    "Sins": "a DDSP-SVC DDSP model (not a diffusion model)",
}
# DDSP-SVC / Diffusion-SVC encoder names -> the so-vits-svc name giving the same features.
FOREIGN_ENCODER_NAMES: dict[str, str] = {
    "contentvec768l12": "vec768l12",  # ContentVec layer 12, no final_proj
    "contentvec768": "vec768l9",  # layer 9, no final_proj
    "contentvec": "vec256l9",  # layer 9 through final_proj
}
_EXTRA_ENCODER_DIMS = {"vec768l9": 768}  # registered encoders that config.json's table does not list
MEL_VOCODER_TYPES = ("nsf-hifigan", "nsf-hifigan-log10")
# Sampler names the yaml's infer.method may hold (upstream's five; "ddpm" is ours for the plain ancestral chain).
INFER_METHODS = ("dpm-solver++", "dpm-solver", "unipc", "pndm", "ddim", "ddpm")

DEFAULT_TIMESTEPS = 1000  # model.timesteps of the template (and the fixed chain of DDSP-SVC / Diffusion-SVC 1.x)
DEFAULT_K_STEP_MAX = 0  # 0 = trained on the whole chain
DEFAULT_SAMPLING_RATE = 44100  # Hz
DEFAULT_BLOCK_SIZE = 512  # samples per mel frame (hop)
DEFAULT_ENCODER_SAMPLE_RATE = 16000  # Hz
DEFAULT_ENCODER_HOP_SIZE = 320  # samples at encoder_sample_rate
DEFAULT_INFER_SPEEDUP = 10
DEFAULT_INFER_METHOD = "dpm-solver++"
DEFAULT_UNIT_INTERPOLATE_MODE = "nearest"
DEFAULT_VOCODER_CKPT = "pretrain/nsf_hifigan/model"
_MISSING = object()


def encoder_dim(name: str) -> int | None:
    """Output width of a (so-vits-svc) encoder name, None when unknown."""
    return ENCODER_DIMS.get(name, _EXTRA_ENCODER_DIMS.get(name))


@dataclass(frozen=True)
class DiffusionConfig:
    """A checked diffusion config.yaml. Units: sampling_rate / encoder_sample_rate in Hz, block_size and
    encoder_hop_size in samples. `doc` is the whole yaml as read (unknown keys kept for writing back)."""

    sampling_rate: int
    block_size: int
    encoder: str  # our encoder name (a DDSP-SVC alias is mapped, see FOREIGN_ENCODER_NAMES)
    encoder_out_channels: int
    encoder_sample_rate: int
    encoder_hop_size: int
    unit_interpolate_mode: str
    n_layers: int
    n_chans: int
    n_hidden: int
    use_pitch_aug: bool
    timesteps: int
    k_step_max: int  # as written: 0 (or >= timesteps) means the whole chain was trained
    n_spk: int
    speakers: dict[str, int]  # yaml `spk`: name -> 0-based embedding row
    vocoder_type: str
    vocoder_ckpt: str
    infer_speedup: int
    infer_method: str
    train: dict[str, Any] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict)
    source: str = "config.yaml"

    @property
    def full_chain(self) -> bool:
        """True when the model was trained on every step: it may synthesise from pure noise (only-diffusion)."""
        return self.k_step_max == 0 or self.k_step_max >= self.timesteps

    @property
    def max_k_step(self) -> int:
        """The largest k_step shallow diffusion may use (and where only-diffusion starts)."""
        return self.timesteps if self.full_chain else self.k_step_max

    def speaker_name(self, sid: int) -> str:
        """The spk map's name of embedding row `sid` (the id as text when it has none)."""
        return next((name for name, i in self.speakers.items() if i == sid), str(sid))

    def to_dict(self) -> dict[str, Any]:
        """Upstream's layout (data / model / vocoder / infer / train / spk ...); other keys of the file kept."""
        out = copy.deepcopy(self.doc)
        data = out.setdefault("data", {})
        written_encoder = data.get("encoder")
        if FOREIGN_ENCODER_NAMES.get(written_encoder) != self.encoder:
            written_encoder = self.encoder
        data.update(sampling_rate=self.sampling_rate, block_size=self.block_size, encoder=written_encoder,
                    encoder_out_channels=self.encoder_out_channels, encoder_sample_rate=self.encoder_sample_rate,
                    encoder_hop_size=self.encoder_hop_size, unit_interpolate_mode=self.unit_interpolate_mode)
        model = out.setdefault("model", {})
        model.update(type=model.get("type", MODEL_TYPE), n_layers=self.n_layers, n_chans=self.n_chans,
                     n_hidden=self.n_hidden, use_pitch_aug=self.use_pitch_aug, timesteps=self.timesteps,
                     k_step_max=self.k_step_max, n_spk=self.n_spk)
        out.setdefault("vocoder", {}).update(type=self.vocoder_type, ckpt=self.vocoder_ckpt)
        out.setdefault("infer", {}).update(speedup=self.infer_speedup, method=self.infer_method)
        out["train"] = copy.deepcopy(self.train)
        out["spk"] = dict(self.speakers)
        return out

    def save(self, path: str | os.PathLike) -> None:
        """Write the yaml (keys sorted, as upstream's Saver does)."""
        with open(path, "w", encoding="utf-8") as fh:
            yaml.safe_dump(self.to_dict(), fh, allow_unicode=True)


# ---------------------------------------------------------------------------------------------- parsing


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxstring, _SHORT.maxother = 2, 4, 4, 40, 40


def _show(value: Any) -> str:
    """A short repr for messages (bounded work even for a YAML alias bomb)."""
    return _SHORT.repr(value)


class _Reader(FieldReader):
    """config.json's typed field access, with the yaml's wording and bounded quotes of bad values."""

    def show(self, value: Any) -> str:
        return _show(value)

    def section(self, doc: Mapping[str, Any], name: str, required: bool) -> dict[str, Any]:
        value = doc.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                raise self.fail(f'the "{name}" section', "is missing",
                                f'copy the "{name}" section from the config.yaml the model was trained with')
            return {}
        if not isinstance(value, dict):
            raise self.fail(f'the "{name}" section', f"must be a mapping, not {type(value).__name__}",
                            "restore it from the config.yaml the model was trained with")
        return value

    def get(self, sec: Mapping[str, Any], where: str, kind: str, default: Any = _MISSING) -> Any:
        key = where.split(".", 1)[1]
        value = sec.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise self.fail(where, "is missing", "add it (see the config.yaml the model was trained with)")
            return default
        return self.check(where, value, kind)


def _model_type(r: _Reader, model: Mapping[str, Any]) -> None:
    kind = model.get("type", MODEL_TYPE)
    if kind == MODEL_TYPE:
        return
    if isinstance(kind, str) and kind in OTHER_MODEL_TYPES:
        raise r.fail("model.type", f"is {kind!r}: {OTHER_MODEL_TYPES[kind]}",
                     "only so-vits-svc 4.1 shallow-diffusion models (model.type 'Diffusion', also made by "
                     "DDSP-SVC 3-5 and Diffusion-SVC 1.x) load here")
    raise r.fail("model.type", f"is {_show(kind)}, not 'Diffusion'",
                 "use the config.yaml of a so-vits-svc 4.1 diffusion model (model.type: Diffusion)")


def _no_speaker_encoder(r: _Reader, model: Mapping[str, Any]) -> None:
    if model.get("use_speaker_encoder") is True:
        raise r.fail("model.use_speaker_encoder", "is true: a Diffusion-SVC model conditioned on a speaker "
                     "encoder's embedding, which so-vits-svc's diffusion stage cannot feed",
                     "use a model trained with speaker ids (use_speaker_encoder: false)")


def _encoder(r: _Reader, data: Mapping[str, Any]) -> tuple[str, int]:
    written = r.get(data, "data.encoder", "str")
    name = FOREIGN_ENCODER_NAMES.get(written, written)
    dim = encoder_dim(name)
    if dim is None:
        known = sorted(set(ENCODER_DIMS) | set(_EXTRA_ENCODER_DIMS) | set(FOREIGN_ENCODER_NAMES))
        raise r.fail("data.encoder", f"is {written!r}, which is not a content encoder svc-studio has",
                     "use one of " + ", ".join(known))
    channels = r.get(data, "data.encoder_out_channels", "int")
    if channels != dim:
        raise r.fail("data.encoder_out_channels", f"is {channels} but data.encoder {written!r} gives {dim}-dim "
                     "units", f"set data.encoder_out_channels to {dim}, or data.encoder to the encoder the model "
                     "was trained with")
    return name, channels


def _speakers(r: _Reader, doc: Mapping[str, Any], n_spk: int) -> dict[str, int]:
    spk = r.section(doc, "spk", required=False)
    out: dict[str, int] = {}
    for name, sid in spk.items():
        if isinstance(sid, bool) or not isinstance(sid, int) or sid < 0:
            raise r.fail(f"spk[{str(name)!r}]", f"must be a speaker id (0, 1, ...), got {_show(sid)}",
                         "give every speaker name a whole-number id")
        if sid >= n_spk:
            raise r.fail(f"spk[{str(name)!r}]", f"is {sid} but model.n_spk is {n_spk} (ids 0..{n_spk - 1})",
                         "fix the id, or set model.n_spk to the number of speakers the model was trained with")
        out[str(name)] = sid
    return out


def diffusion_config_from_dict(doc: Mapping[str, Any], source: str = "config.yaml") -> DiffusionConfig:
    """Check and convert a parsed diffusion yaml; `source` names the file in error messages."""
    r = _Reader(source)
    if not isinstance(doc, dict):
        raise ModelError(f"{source}: the file must hold a YAML mapping with data/model/... sections, not "
                         f"{type(doc).__name__}; is this the diffusion model's config.yaml?")
    data = r.section(doc, "data", required=True)
    model = r.section(doc, "model", required=True)
    _model_type(r, model)
    _no_speaker_encoder(r, model)
    vocoder = r.section(doc, "vocoder", required=False)
    infer = r.section(doc, "infer", required=False)
    train = r.section(doc, "train", required=False)
    encoder, channels = _encoder(r, data)
    timesteps = r.get(model, "model.timesteps", "int", DEFAULT_TIMESTEPS)
    k_step_max = r.get(model, "model.k_step_max", "count", DEFAULT_K_STEP_MAX)
    n_spk = r.get(model, "model.n_spk", "int")
    mode = r.get(data, "data.unit_interpolate_mode", "str", DEFAULT_UNIT_INTERPOLATE_MODE)
    if mode not in UNIT_INTERPOLATE_MODES:
        raise r.fail("data.unit_interpolate_mode", f"is {mode!r}", "use one of " + ", ".join(UNIT_INTERPOLATE_MODES))
    vocoder_type = r.get(vocoder, "vocoder.type", "str", MEL_VOCODER_TYPES[0])
    if vocoder_type not in MEL_VOCODER_TYPES:
        raise r.fail("vocoder.type", f"is {vocoder_type!r}", "use one of " + ", ".join(MEL_VOCODER_TYPES))
    method = r.get(infer, "infer.method", "str", DEFAULT_INFER_METHOD)
    if method not in INFER_METHODS:
        raise r.fail("infer.method", f"is {method!r}", "use one of " + ", ".join(INFER_METHODS))
    return DiffusionConfig(
        sampling_rate=r.get(data, "data.sampling_rate", "int", DEFAULT_SAMPLING_RATE),
        block_size=r.get(data, "data.block_size", "int", DEFAULT_BLOCK_SIZE),
        encoder=encoder,
        encoder_out_channels=channels,
        encoder_sample_rate=r.get(data, "data.encoder_sample_rate", "int", DEFAULT_ENCODER_SAMPLE_RATE),
        encoder_hop_size=r.get(data, "data.encoder_hop_size", "int", DEFAULT_ENCODER_HOP_SIZE),
        unit_interpolate_mode=mode,
        n_layers=r.get(model, "model.n_layers", "int"),
        n_chans=r.get(model, "model.n_chans", "int"),
        n_hidden=r.get(model, "model.n_hidden", "int"),
        use_pitch_aug=r.get(model, "model.use_pitch_aug", "bool", False),
        timesteps=timesteps,
        k_step_max=k_step_max,
        n_spk=n_spk,
        speakers=_speakers(r, doc, n_spk),
        vocoder_type=vocoder_type,
        vocoder_ckpt=r.get(vocoder, "vocoder.ckpt", "str", DEFAULT_VOCODER_CKPT),
        infer_speedup=r.get(infer, "infer.speedup", "int", DEFAULT_INFER_SPEEDUP),
        infer_method=method,
        train=copy.deepcopy(train),
        doc=copy.deepcopy(dict(doc)),
        source=source,
    )


def read_diffusion_yaml(path: str | os.PathLike) -> Any:
    """The parsed YAML of a diffusion config; ModelError (naming the file and what to fix) when unreadable."""
    name = os.path.basename(os.fspath(path))
    text = read_config_text(path, "Diffusion config", "a so-vits-svc diffusion model comes with the config.yaml it "
                            "was trained with (logs/44k/diffusion/config.yaml)", "the diffusion model's config.yaml")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ModelError(f"{name} is not valid YAML: {err.problem}{where}; fix that spot (indentation or a "
                         "missing colon is typical).") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise ModelError(f"{name} is not valid YAML ({type(err).__name__}); restore the diffusion model's "
                         "config.yaml.") from None


def load_diffusion_config(path: str | os.PathLike) -> DiffusionConfig:
    """Read and check a diffusion config.yaml. ModelError names the file, the field and the fix."""
    path = os.fspath(path)
    return diffusion_config_from_dict(read_diffusion_yaml(path), source=os.path.basename(path))


def template_diffusion_config(encoder: str = "vec768l12", speakers: Mapping[str, int] | None = None,
                              **model_overrides: Any) -> dict[str, Any]:
    """A diffusion yaml dict as upstream's preprocessing writes it (diffusion_template.yaml with the encoder,
    its width, n_spk and the spk map filled in); `model_overrides` replace model-section values."""
    dim = encoder_dim(encoder)
    if dim is None:
        raise ModelError(f"template_diffusion_config: unknown encoder {encoder!r}")
    speakers = dict(speakers) if speakers is not None else {"speaker0": 0}
    model: dict[str, Any] = {"type": MODEL_TYPE, "n_layers": 20, "n_chans": 512, "n_hidden": 256,
                             "use_pitch_aug": True, "timesteps": DEFAULT_TIMESTEPS, "k_step_max": DEFAULT_K_STEP_MAX,
                             "n_spk": max(speakers.values(), default=-1) + 1}
    model.update(model_overrides)
    return {
        "data": {"sampling_rate": DEFAULT_SAMPLING_RATE, "block_size": DEFAULT_BLOCK_SIZE, "duration": 2,
                 "encoder": encoder, "cnhubertsoft_gate": 10, "encoder_sample_rate": DEFAULT_ENCODER_SAMPLE_RATE,
                 "encoder_hop_size": DEFAULT_ENCODER_HOP_SIZE, "encoder_out_channels": dim,
                 "training_files": "filelists/train.txt", "validation_files": "filelists/val.txt",
                 "extensions": ["wav"], "unit_interpolate_mode": DEFAULT_UNIT_INTERPOLATE_MODE},
        "model": model,
        "device": "cuda",
        "vocoder": {"type": MEL_VOCODER_TYPES[0], "ckpt": DEFAULT_VOCODER_CKPT},
        "infer": {"speedup": DEFAULT_INFER_SPEEDUP, "method": DEFAULT_INFER_METHOD},
        "env": {"expdir": "logs/44k/diffusion", "gpu_id": 0},
        "train": {"num_workers": 4, "amp_dtype": "fp32", "batch_size": 48, "cache_all_data": True,
                  "cache_device": "cpu", "cache_fp16": True, "epochs": 100000, "interval_log": 10,
                  "interval_val": 2000, "interval_force_save": 5000, "lr": 0.0001, "decay_step": 100000,
                  "gamma": 0.5, "weight_decay": 0, "save_opt": False},
        "spk": speakers,
    }
