"""Loaded voices kept in memory (least recently used dropped first), one lock per voice.

`get` runs in the job's worker thread and sets that thread's torch thread count for the job (svc_core.threads:
'auto' measures the load first; a count is forced), so jobs in other threads keep theirs.

`Svc` keeps per-call state (`last_times`, its f0 predictors), so one voice converts one clip at a time; other
voices run in parallel. Content encoders are shared between voices that use the same one. A voice loaded on the
torch and on the ONNX backend (`backends.py`) is two cache entries; the ONNX one uses the encoder's ONNX export.
"""
from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from . import backends
from .models import ModelEntry

log = logging.getLogger(__name__)


@dataclass
class LoadedVoice:
    """A ready `Svc` and the lock a conversion holds while it uses it."""

    entry: ModelEntry
    svc: object  # svc_core.pipeline.Svc or svc_core.onnx.OnnxSvc
    load_seconds: float
    backend: str = backends.TORCH
    lock: threading.Lock = field(default_factory=threading.Lock)


class VoiceCache:
    """(entry.key, backend) -> LoadedVoice, at most `capacity` voices; ONNX exports go to `export_dir`."""

    def __init__(self, capacity: int = 2, device: str = "cpu", export_dir: Path | None = None,
                 threads: str | int | None = None) -> None:
        self.capacity = max(1, capacity)
        self.device = device
        self.threads = threads  # svc_core.threads setting: None = $SVC_THREADS or auto
        self.export_dir = export_dir or Path(tempfile.mkdtemp(prefix="svc-onnx-"))
        self._voices: "OrderedDict[str, LoadedVoice]" = OrderedDict()
        self._encoders: dict[str, object] = {}
        self._lock = threading.Lock()  # guards the dicts and serialises loading

    def peek(self, key: str, backend: str = backends.TORCH) -> LoadedVoice | None:
        with self._lock:
            return self._voices.get(f"{key}|{backend}")

    def _encoder(self, entry: ModelEntry, ssl_dim: int, backend: str = backends.TORCH):
        """The voice's content encoder: its weights file inside the voice folder if it ships one (starter voices
        carry theirs; an upstream-style ONNX encoder there runs on ONNX Runtime), else the shared one from
        ./pretrain or $SVC_PRETRAIN_DIR. For the ONNX backend, that encoder exported to ONNX
        (backends.onnx_encoder_for); if the export fails, the torch one (logged)."""
        from ..encoders import encoder_info, expected_encoder, get_encoder
        from ..errors import MissingWeightsError

        name = expected_encoder(ssl_dim, entry.speech_encoder)
        exported = self._bundled_onnx_encoder(entry, name)
        if exported is not None:
            return exported
        bundled = entry.folder / encoder_info(name).default_file
        path = str(bundled) if bundled.is_file() else None
        key = f"{name}@{path}" if path else name
        if backend == backends.ONNX:
            if f"{key}|onnx" not in self._encoders:
                try:
                    self._encoders[f"{key}|onnx"] = backends.onnx_encoder_for(name, path, self.export_dir,
                                                                             self.device)
                except MissingWeightsError:
                    raise
                except Exception as err:  # noqa: BLE001 - any export failure: the torch encoder still works
                    log.warning("content encoder %s could not be exported to ONNX (%s); it runs in torch", name, err)
                    self._encoders[f"{key}|onnx"] = self._encoder(entry, ssl_dim)
            return self._encoders[f"{key}|onnx"]
        if key not in self._encoders:
            self._encoders[key] = get_encoder(name, path=path, device=self.device)
        return self._encoders[key]

    def _bundled_onnx_encoder(self, entry: ModelEntry, name: str):
        """The encoder `name` as an upstream-style ONNX file in the voice folder (MoeSS's vec-768-layer-12.onnx
        & co., svc_core.onnx.upstream_file), on ONNX Runtime whatever the backend; None when there is none."""
        from ..onnx.upstream_file import encoder_name_of

        files = sorted(p for p in entry.folder.glob("*.onnx") if encoder_name_of(p) == name)
        if not files:
            return None
        key = f"{name}@{files[0]}"
        if key not in self._encoders:
            from ..onnx import OnnxEncoder

            self._encoders[key] = OnnxEncoder(files[0], device="cuda" if str(self.device).startswith("cuda")
                                              else "auto")
        return self._encoders[key]

    @staticmethod
    def _unit_width(entry: ModelEntry) -> int:
        """The content units the voice takes: its config.json's ssl_dim (or an ONNX voice's descriptor), for a
        diffusion model alone its config.yaml's encoder_out_channels, for an RVC voice its model's content width."""
        from ..onnx.moevs import load_voice_config
        from .diffusion_files import read_config

        if entry.rvc is not None:
            return entry.rvc.content_dim
        if entry.diffusion_only:
            return int(read_config(entry.diffusion).encoder_out_channels)
        config, _ = load_voice_config(entry.config_path)  # config.json, or an ONNX voice's descriptor
        return int(config.model.ssl_dim)

    def get(self, entry: ModelEntry, backend: str = backends.TORCH) -> tuple[LoadedVoice, bool]:
        """(voice, was_cached), ready to convert on the calling thread: its torch thread count is chosen now
        (`svc_core.threads.use_threads`). Loads on a miss (exporting to ONNX first when needed); SvcError messages
        (missing encoder, bad file, failed export) pass through."""
        import time

        from ..threads import use_threads

        use_threads(self.threads)  # before the lock: 'auto' looks at the CPUs for a moment
        backend = backends.backend_for(entry, backend)
        key = f"{entry.key}|{backend}"
        with self._lock:
            voice = self._voices.get(key)
            if voice is not None and voice.entry == entry:
                self._voices.move_to_end(key)
                return voice, True
            start = time.perf_counter()
            onnx_path = None
            if entry.onnx_only:
                onnx_path = entry.model_path
            elif backend == backends.ONNX:  # export the generator first: it refuses WORLD voices before any
                onnx_path = backends.onnx_file_for(entry, self.export_dir)  # encoder export is spent on them
            encoder = self._encoder(entry, self._unit_width(entry), backend)
            svc = backends.load_voice(entry, backend, encoder, self.device, self.export_dir, onnx_path)
            voice = LoadedVoice(entry, svc, time.perf_counter() - start, backend)
            self._voices[key] = voice
            while len(self._voices) > self.capacity:
                self._voices.popitem(last=False)
            used = {id(v.svc.encoder) for v in self._voices.values()}
            for key in [k for k, enc in self._encoders.items() if id(enc) not in used]:
                del self._encoders[key]
            return voice, False
