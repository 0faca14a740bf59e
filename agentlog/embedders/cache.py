"""An edge cache of vectors by `(model_id, sha256(text))` in front of any embedder."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from agentlog.embedders.adapters import embed_queries
from agentlog.embedders.base import Embedder, check_output

__all__ = ["CachedEmbedder"]

#: Vectors kept by default (384 floats each: ~1.5 KiB).
CACHE_ENTRIES_MAX = 50_000


class CachedEmbedder:
    """Wraps an embedder; texts seen before are not embedded again (least recently used go first)."""

    def __init__(self, inner: Embedder, entries_max: int = CACHE_ENTRIES_MAX) -> None:
        self.inner = inner
        self.entries_max = entries_max
        self._cache: OrderedDict[tuple[str, bytes], npt.NDArray[np.float32]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def model_id(self) -> str:
        """The inner model's id."""
        return self.inner.model_id

    @property
    def dim(self) -> int:
        """The inner model's dimension."""
        return self.inner.dim

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Vectors for `texts`: cached ones reused, the rest embedded in one call to the inner embedder."""
        return self._embed(texts, self.inner.model_id, self.inner.embed)

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """Query vectors (asymmetric models embed queries apart; cached apart, under `<model_id>#query`)."""
        if getattr(self.inner, "embed_queries", None) is None:
            return self.embed(texts)
        return self._embed(texts, self.inner.model_id + "#query", lambda batch: embed_queries(self.inner, batch))

    def _embed(
        self, texts: Sequence[str], model_id: str, embed: Callable[[Sequence[str]], npt.NDArray[np.float32]]
    ) -> npt.NDArray[np.float32]:
        keys = [(model_id, hashlib.sha256(text.encode()).digest()) for text in texts]
        missing = sorted({i for i, key in enumerate(keys) if key not in self._cache}, key=lambda i: i)
        unique: dict[tuple[str, bytes], int] = {}
        for i in missing:
            unique.setdefault(keys[i], i)
        if unique:
            order = list(unique.values())
            fresh = check_output(embed([texts[i] for i in order]), len(order), self.dim, model_id)
            for row, i in enumerate(order):
                self._cache[keys[i]] = fresh[row].copy()
                if len(self._cache) > self.entries_max:
                    self._cache.popitem(last=False)
        self.misses += len(unique)
        self.hits += len(texts) - len(unique)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            vector = self._cache.get(key)
            if vector is None:  # evicted within this very call (more texts than the cache holds)
                vector = check_output(embed([texts[row]]), 1, self.dim, model_id)[0]
            else:
                self._cache.move_to_end(key)
            out[row] = vector
        return out
