"""A zero-dependency deterministic embedder: hashed content-word unigrams and bigrams, signed, L2-normalized."""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["HashingEmbedder"]

_WORD: Final = re.compile(r"\w+")
#: Weight of a word bigram relative to a unigram.
BIGRAM_WEIGHT: Final = 0.5
#: English function words left out (they match everything and mean little); a text of only these keeps them.
_STOPWORD_TEXT: Final = """
    a about above after again all am an and any are as at be because been before being below between both but
    by can could did do does doing down during each few for from further had has have having he her here hers him
    his how i if in into is it its itself just me more most my no nor not now of off on once only or other our ours
    out over own same she should so some such than that the their them then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you your yours
    s t m re ve ll d"""
STOPWORDS: Final = frozenset(_STOPWORD_TEXT.split())


class HashingEmbedder:
    """The feature-hashing embedder: each content word (and word pair) adds ±1 at a slot chosen by BLAKE2b.

    Same text, same vector, on any machine and in any batch. It captures word overlap, not meaning.
    `calls` counts `embed` calls (texts embedded: `texts_embedded`).
    """

    def __init__(self, dim: int = 384) -> None:
        if not 8 <= dim <= 4096:
            raise ValueError("dim must be from 8 to 4096")
        self._dim = dim
        self.calls = 0
        self.texts_embedded = 0

    @property
    def model_id(self) -> str:
        """`hashing-v2-<dim>`."""
        return f"hashing-v2-{self._dim}"

    @property
    def dim(self) -> int:
        """The dimension."""
        return self._dim

    def _slot(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self._dim, 1.0 if (value >> 63) & 1 else -1.0

    def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """One unit vector per text (a text with no words gets a fixed unit vector)."""
        self.calls += 1
        self.texts_embedded += len(texts)
        out = np.zeros((len(texts), self._dim), dtype=np.float64)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            words = [word for word in words if word not in STOPWORDS] or words
            for word in words:
                slot, sign = self._slot(word)
                out[row, slot] += sign
            for first, second in itertools.pairwise(words):
                slot, sign = self._slot(f"{first} {second}")
                out[row, slot] += sign * BIGRAM_WEIGHT
            norm = float(np.sqrt(np.dot(out[row], out[row])))
            if norm == 0.0:
                out[row, 0] = 1.0
            else:
                out[row] /= norm
        return out.astype(np.float32)
