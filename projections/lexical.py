"""A deterministic incremental BM25 index: its ranking after any add/remove sequence equals a rebuild's.

Documents are small integers (memory numbers) with text. The index keeps exact integer statistics
only (per-term postings of term frequencies, per-document lengths, the document count and the total
length) and computes every score at query time from them, so nothing depends on the order in which
documents came and went. A score is summed over the query's distinct terms in sorted order, in
float64, so equal statistics give bit-equal scores; ties rank by document number.

BM25 with k1 = 1.2, b = 0.75 and idf = ln(1 + (N - df + 0.5) / (df + 0.5)) (always positive).
Tokens are the lowercased Unicode word runs (`\\w+`) of the text, each at most 64 characters.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["BM25_B", "BM25_K1", "LexicalIndex", "tokenize"]

BM25_K1: Final = 1.2
BM25_B: Final = 0.75
#: Longest token kept (longer word runs are cut).
MAX_TOKEN_CHARS: Final = 64
#: Most distinct terms of a query that are scored.
MAX_QUERY_TERMS: Final = 64

_WORD: Final = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    """The index's tokens of `text`: lowercased word runs, each cut to `MAX_TOKEN_CHARS`."""
    return [token[:MAX_TOKEN_CHARS] for token in _WORD.findall(text.lower())]


class LexicalIndex:
    """BM25 over documents numbered from 1; `scores` gives a dense float64 array indexed by number."""

    __slots__ = ("_cache", "_dense_lengths", "_lengths", "_postings", "_total_length")

    def __init__(self) -> None:
        #: term → {document: term frequency}
        self._postings: dict[str, dict[int, int]] = {}
        #: document → length in tokens (documents with no tokens are kept with length 0)
        self._lengths: dict[int, int] = {}
        self._total_length = 0
        #: Caches (rebuilt from the above on demand, never state): lengths by number, postings as arrays.
        self._dense_lengths = np.zeros(16, dtype=np.float64)
        self._cache: dict[str, tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]] = {}

    def __len__(self) -> int:
        return len(self._lengths)

    def __contains__(self, document: object) -> bool:
        return document in self._lengths

    def add(self, document: int, text: str) -> None:
        """Index `document` (which must not be indexed) with `text`."""
        if document in self._lengths:
            raise KeyError(f"document {document} is already indexed")
        tokens = tokenize(text)
        for term, frequency in Counter(tokens).items():
            self._postings.setdefault(term, {})[document] = frequency
            self._cache.pop(term, None)
        self._lengths[document] = len(tokens)
        if document >= len(self._dense_lengths):
            grown = np.zeros(max(2 * len(self._dense_lengths), document + 1), dtype=np.float64)
            grown[: len(self._dense_lengths)] = self._dense_lengths
            self._dense_lengths = grown
        self._dense_lengths[document] = len(tokens)
        self._total_length += len(tokens)

    def remove(self, document: int, text: str) -> None:
        """Remove `document`, indexed with `text` (the same text it was added with)."""
        length = self._lengths.pop(document)
        self._total_length -= length
        self._dense_lengths[document] = 0.0
        for term in set(tokenize(text)):
            self._cache.pop(term, None)
            postings = self._postings[term]
            del postings[document]
            if not postings:
                del self._postings[term]

    def statistics(self) -> tuple[int, int, list[tuple[str, list[tuple[int, int]]]]]:
        """(document count, total length, sorted postings): what every score is a function of."""
        postings = [(term, sorted(self._postings[term].items())) for term in sorted(self._postings)]
        return len(self._lengths), self._total_length, postings

    def scores(self, query: str, size: int) -> npt.NDArray[np.float64]:
        """BM25 of every document for `query`, as an array of `size` (index = document number; 0 = no match)."""
        result = np.zeros(size, dtype=np.float64)
        count = len(self._lengths)
        if count == 0:
            return result
        average = self._total_length / count if self._total_length else 1.0
        terms = sorted(set(tokenize(query)))[:MAX_QUERY_TERMS]
        for term in terms:
            arrays = self._postings_arrays(term)
            if arrays is None:
                continue
            documents, tf = arrays
            frequency = len(documents)
            idf = math.log(1.0 + (count - frequency + 0.5) / (frequency + 0.5))
            lengths = self._dense_lengths[documents]
            norm = BM25_K1 * (1.0 - BM25_B + BM25_B * lengths / average)
            result[documents] += idf * (tf * (BM25_K1 + 1.0)) / (tf + norm)
        return result

    def _postings_arrays(self, term: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]] | None:
        cached = self._cache.get(term)
        if cached is None:
            postings = self._postings.get(term)
            if not postings:
                return None
            documents = np.fromiter(postings.keys(), dtype=np.intp, count=len(postings))
            tf = np.fromiter(postings.values(), dtype=np.float64, count=len(postings))
            cached = self._cache[term] = (documents, tf)
        return cached

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """The k best (document, score) pairs with a score above 0, by (-score, document)."""
        size = max(self._lengths, default=0) + 1
        scores = self.scores(query, size)
        matched = np.flatnonzero(scores > 0.0)
        order = sorted(matched.tolist(), key=lambda d: (-scores[d], d))[:k]
        return [(document, float(scores[document])) for document in order]
