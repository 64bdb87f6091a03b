"""Convert the inputs of ../shared/eval (`make_inputs.py`) with a voice folder, for `evaluate.py` to score.

    convert_eval_inputs(EvalSettings(inputs="build/eval/inputs", voice="voices/starter", out="build/eval/out"))

`inputs` holds `<pair_id>.wav` (the source singing) and `manifest.json` ({pair_id: {source_voice, target_voice,
transpose, text}}); every pair is converted to its `target_voice` (a speaker name of the voice's config, which the
starter voices share with the evaluation corpus: flite_awb, flite_rms, flite_slt, fest_ked) with its transpose, and
written as `<out>/<pair_id>.wav` at the model rate. The content encoder is the one inside the voice folder when it
ships one (the starter voices do), else the usual pretrain lookup.

A second stage can follow (EvalSettings.second): shallow diffusion or only-diffusion with a diffusion model
(`diffusion`: a model_*.pt or a folder holding model_*.pt + config.yaml; default the voice's own diffusion/ folder),
or the NSF-HiFiGAN enhancer; `vocoder` names the mel vocoder (default the diffusion config's).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ModelError, OptionError, SpeakerError

SECOND_STAGES = ("none", "shallow", "only", "enhance")  # EvalSettings.second


@dataclass
class SecondStage:
    """What runs after the so-vits synthesizer (ConvertOptions' diffusion fields)."""

    kind: str = "none"  # one of SECOND_STAGES
    diffusion: str | None = None  # model_*.pt, or a folder with model_*.pt + config.yaml (None: <voice>/diffusion)
    vocoder: str | None = None  # NSF-HiFiGAN `model` file or folder (None: the diffusion config's vocoder)
    k_step: int = 100
    method: str | None = None  # sampler; None: the diffusion config's infer.method
    speedup: int | None = None  # None: the diffusion config's infer.speedup

    def __post_init__(self) -> None:
        if self.kind not in SECOND_STAGES:
            raise OptionError(f"Unknown second stage '{self.kind}'; choose one of {', '.join(SECOND_STAGES)}.")

    def options(self) -> dict:
        """ConvertOptions keyword arguments."""
        if self.kind == "none":
            return {}
        if self.kind == "enhance":
            return {"enhance": True}
        return {"shallow_diffusion": self.kind == "shallow", "only_diffusion": self.kind == "only",
                "k_step": self.k_step, "diffusion_method": self.method, "diffusion_speedup": self.speedup}


@dataclass
class EvalSettings:
    inputs: str
    voice: str  # a voice folder: G_*.pth + config.json (+ kmeans, encoder file)
    out: str
    f0: str = "fcpe"
    cluster_ratio: float = 0.0
    noise_scale: float = 0.4
    limit: int = 0  # convert only the first N pairs (0 = all)
    f0_threshold: float | None = None  # voicing threshold of the f0 predictor (None: its default)
    second: SecondStage = field(default_factory=SecondStage)


def diffusion_files(voice: str | Path, given: str | None) -> tuple[str, str] | None:
    """(model_*.pt, config.yaml) from `given` (a model file, or a folder holding them: the highest step) or, when
    None, the voice folder's diffusion/ (None when it has none)."""
    from ..diffusion.loader import CONFIG_NAMES, MODEL_FILE, find_diffusion_files

    if given is None:
        return find_diffusion_files(voice)
    path = Path(given)
    folder = path.parent if path.is_file() else path
    if path.is_file():
        models = [path]
    else:
        found = [p for p in folder.iterdir() if MODEL_FILE.match(p.name)] if folder.is_dir() else []
        models = sorted(found, key=lambda p: int(MODEL_FILE.match(p.name).group(1)))
    config = next((folder / n for n in CONFIG_NAMES if (folder / n).is_file()), None)
    if not models or config is None:
        raise ModelError(f"No diffusion model (model_*.pt with its config.yaml beside it) in {given}.")
    return str(models[-1]), str(config)


def load_voice(folder: str | Path, second: SecondStage | None = None):
    """Svc for a voice folder, with the encoder file it ships (if any), its cluster file and, for a diffusion
    second stage, the diffusion model and vocoder."""
    from ..config import load_config
    from ..encoders import encoder_info, expected_encoder, get_encoder
    from ..pipeline import Svc
    from ..ui.models import describe_folder

    folder = Path(folder)
    entry = describe_folder(folder, folder.name)
    config = load_config(entry.config_path)
    name = expected_encoder(int(config.model.ssl_dim), entry.speech_encoder)
    bundled = folder / encoder_info(name).default_file
    encoder = get_encoder(name, str(bundled) if bundled.is_file() else None)
    extra = {}
    if second is not None and second.kind != "none":
        if second.kind in ("shallow", "only"):
            files = diffusion_files(folder, second.diffusion)
            if files is None:
                raise ModelError(f"The voice in {folder} has no diffusion/ model; give one with --diffusion.")
            extra.update(diffusion_model_path=files[0], diffusion_config_path=files[1])
        extra["vocoder_path"] = second.vocoder
    return Svc(entry.model_path, entry.config_path, cluster_path=entry.cluster_path, encoder=encoder, **extra)


def convert_eval_inputs(settings: EvalSettings, progress: bool = True) -> dict:
    """Convert every pair; returns {"pairs", "audio_seconds", "seconds", "rtf"}."""
    from ..audio import load_audio, write_audio

    manifest = json.loads((Path(settings.inputs) / "manifest.json").read_text(encoding="utf-8"))
    pairs = sorted(manifest.items())[: settings.limit or None]
    svc = load_voice(settings.voice, settings.second)
    missing = sorted({p["target_voice"] for _, p in pairs} - set(svc.config.spk))
    if missing:
        raise SpeakerError(f"The voice in {settings.voice} has no speaker(s) {', '.join(missing)} "
                           f"(it has {svc.config.describe_speakers()}).")
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    start, audio_seconds = time.perf_counter(), 0.0
    for i, (pair_id, pair) in enumerate(pairs, 1):
        wav, sr = load_audio(Path(settings.inputs) / f"{pair_id}.wav")
        converted = svc.slice_inference(wav, sr, pair["target_voice"], transpose=float(pair["transpose"]),
                                        f0_predictor=settings.f0, cluster_ratio=settings.cluster_ratio,
                                        noise_scale=settings.noise_scale, f0_threshold=settings.f0_threshold,
                                        **settings.second.options())
        write_audio(out / f"{pair_id}.wav", converted, svc.sample_rate)
        audio_seconds += len(wav) / sr
        if progress:
            print(f"  {i}/{len(pairs)} {pair_id} ({svc.last_times.total:.1f} s)", flush=True)
    seconds = time.perf_counter() - start
    return {"pairs": len(pairs), "audio_seconds": audio_seconds, "seconds": seconds,
            "rtf": seconds / max(audio_seconds, 1e-9)}
