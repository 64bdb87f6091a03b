"""Loaded voices kept in memory (least recently used dropped first), one lock per voice.

`Svc` keeps per-call state (`last_times`, its f0 predictors), so one voice converts one clip at a time; other
voices run in parallel. Content encoders are shared between voices that use the same one.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from .models import ModelEntry


@dataclass
class LoadedVoice:
    """A ready `Svc` and the lock a conversion holds while it uses it."""

    entry: ModelEntry
    svc: object  # svc_core.pipeline.Svc
    load_seconds: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class VoiceCache:
    """entry.key -> LoadedVoice, at most `capacity` voices."""

    def __init__(self, capacity: int = 2, device: str = "cpu") -> None:
        self.capacity = max(1, capacity)
        self.device = device
        self._voices: "OrderedDict[str, LoadedVoice]" = OrderedDict()
        self._encoders: dict[str, object] = {}
        self._lock = threading.Lock()  # guards the dicts and serialises loading

    def peek(self, key: str) -> LoadedVoice | None:
        with self._lock:
            return self._voices.get(key)

    def _encoder(self, entry: ModelEntry, ssl_dim: int):
        """The voice's content encoder: its weights file inside the voice folder if it ships one (starter voices
        carry theirs), else the shared one from ./pretrain or $SVC_PRETRAIN_DIR."""
        from ..encoders import encoder_info, expected_encoder, get_encoder

        name = expected_encoder(ssl_dim, entry.speech_encoder)
        bundled = entry.model_path.parent / encoder_info(name).default_file
        path = str(bundled) if bundled.is_file() else None
        key = f"{name}@{path}" if path else name
        if key not in self._encoders:
            self._encoders[key] = get_encoder(name, path=path, device=self.device)
        return self._encoders[key]

    def get(self, entry: ModelEntry) -> tuple[LoadedVoice, bool]:
        """(voice, was_cached). Loads on a miss; SvcError messages (missing encoder, bad file) pass through."""
        import time

        from ..config import load_config
        from ..pipeline import Svc

        with self._lock:
            voice = self._voices.get(entry.key)
            if voice is not None and voice.entry == entry:
                self._voices.move_to_end(entry.key)
                return voice, True
            start = time.perf_counter()
            config = load_config(entry.config_path)
            encoder = self._encoder(entry, int(config.model.ssl_dim))
            svc = Svc(entry.model_path, entry.config_path, cluster_path=entry.cluster_path, device=self.device,
                      encoder=encoder)
            voice = LoadedVoice(entry, svc, time.perf_counter() - start)
            self._voices[entry.key] = voice
            while len(self._voices) > self.capacity:
                self._voices.popitem(last=False)
            used = {id(v.svc.encoder) for v in self._voices.values()}
            for key in [k for k, enc in self._encoders.items() if id(enc) not in used]:
                del self._encoders[key]
            return voice, False
