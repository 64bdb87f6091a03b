"""`FeatureCache`: per-piece f0/uv and content units kept between conversions of the same input."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np


class FeatureCache:
    """Small LRU of per-piece intermediate results (f0/uv, content units at the encoder's rate), bounded in bytes.

    Keys start with a hash of the piece's samples and rate, so converting the same input again with another
    transpose, speaker, noise scale or cluster ratio skips f0 prediction and the content encoder.
    `max_bytes` 0 disables it. While `paused`, nothing new is stored (a conversion whose features exceed the
    budget would only evict its own first pieces, so a rerun could hit nothing anyway).
    """

    def __init__(self, max_bytes: int = 256 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.paused = False
        self._items: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    @staticmethod
    def _size(value: object) -> int:
        parts = value if isinstance(value, tuple) else (value,)
        return sum(int(p.nbytes) if isinstance(p, np.ndarray) else p.numel() * p.element_size() for p in parts)

    def get(self, key: tuple) -> object:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: tuple, value: object) -> None:
        size = self._size(value)
        if self.paused or size > self.max_bytes:
            return
        if key in self._items:
            self._bytes -= self._items.pop(key)[1]
        self._items[key] = (value, size)
        self._bytes += size
        while self._bytes > self.max_bytes:
            self._bytes -= self._items.popitem(last=False)[1][1]

    def clear(self) -> None:
        self._items.clear()
        self._bytes = 0


class _NoCache:
    """A FeatureCache that keeps nothing (Svc.infer_piece with use_cache=False)."""

    @staticmethod
    def get(key: tuple) -> None:  # noqa: ARG004 - FeatureCache's signature
        return None

    @staticmethod
    def put(key: tuple, value: object) -> None:  # noqa: ARG004 - FeatureCache's signature
        return None


NO_CACHE = _NoCache()
