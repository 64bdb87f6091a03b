"""Convert the inputs of ../shared/eval (`make_inputs.py`) with a voice folder, for `evaluate.py` to score.

    convert_eval_inputs(EvalSettings(inputs="build/eval/inputs", voice="voices/starter", out="build/eval/out"))

`inputs` holds `<pair_id>.wav` (the source singing) and `manifest.json` ({pair_id: {source_voice, target_voice,
transpose, text}}); every pair is converted to its `target_voice` (a speaker name of the voice's config, which the
starter voices share with the evaluation corpus: flite_awb, flite_rms, flite_slt, fest_ked) with its transpose, and
written as `<out>/<pair_id>.wav` at the model rate. The content encoder is the one inside the voice folder when it
ships one (the starter voices do), else the usual pretrain lookup.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpeakerError


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


def load_voice(folder: str | Path):
    """Svc for a voice folder, with the encoder file it ships (if any) and its cluster file."""
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
    return Svc(entry.model_path, entry.config_path, cluster_path=entry.cluster_path, encoder=encoder)


def convert_eval_inputs(settings: EvalSettings, progress: bool = True) -> dict:
    """Convert every pair; returns {"pairs", "audio_seconds", "seconds", "rtf"}."""
    from ..audio import load_audio, write_audio

    manifest = json.loads((Path(settings.inputs) / "manifest.json").read_text(encoding="utf-8"))
    pairs = sorted(manifest.items())[: settings.limit or None]
    svc = load_voice(settings.voice)
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
                                        noise_scale=settings.noise_scale, f0_threshold=settings.f0_threshold)
        write_audio(out / f"{pair_id}.wav", converted, svc.sample_rate)
        audio_seconds += len(wav) / sr
        if progress:
            print(f"  {i}/{len(pairs)} {pair_id} ({svc.last_times.total:.1f} s)", flush=True)
    seconds = time.perf_counter() - start
    return {"pairs": len(pairs), "audio_seconds": audio_seconds, "seconds": seconds,
            "rtf": seconds / max(audio_seconds, 1e-9)}
