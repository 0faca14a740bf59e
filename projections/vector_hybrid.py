"""Hybrid search on a vector collection: the exact vector leg and BM25 over a metadata text field, fused by alpha.

- **Lexical leg**: BM25 (`projections.lexical`) over the string at `text_field` (a dotted metadata
  path, default `text`) of every vector in the collection; vectors without a string there have no
  text. The index is a cache, built on first use per (collection, field) and rebuilt when the
  collection's ids or metadata changed; BM25 statistics cover the whole collection (not the filter),
  and a rebuilt index ranks exactly as an incremental one would, so results depend only on state.
- **Vector leg**: the collection's own exact scores (`VectorsModel.search`'s path), over the
  vectors matching `filter`.
- **Fusion** (relative scores, weight `alpha` on the vector leg and `1 - alpha` on the lexical):
  each leg with a positive weight ranks its best `depth = max(k, HYBRID_DEPTH_MIN)` candidates by
  (-score, id) (the lexical leg only those scoring above 0); a leg's scores are min-max normalized
  over its candidates (all 1.0 when they are equal), 0 for a vector the leg did not rank;
  fused = alpha · vector + (1 - alpha) · lexical. Hits order by (-fused, -raw score of the heavier
  leg (vector when alpha ≥ 0.5), id). So alpha = 1 gives exactly the vector search's hits and
  alpha = 0 exactly BM25's. `min_score` applies to the fused score.

Each hit carries both legs' raw scores (lexical 0.0 when the text does not match) and ranks (None
where a leg did not rank it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from commands.limits import MAX_K
from projections.lexical import LexicalIndex
from projections.query_dsl import descend
from projections.vectors import (
    VectorQueryError,
    VectorsModel,
    _Collection,
    _Columns,
    _compile,
    _field_path,
    _query_vector,
    _top,
)

__all__ = ["DEFAULT_TEXT_FIELD", "HYBRID_DEPTH_MIN", "MAX_TEXT_INDEXES", "HybridHit", "hybrid_search"]

#: The metadata path searched when a query names none.
DEFAULT_TEXT_FIELD: Final = "text"
#: Fewest candidates each leg ranks.
HYBRID_DEPTH_MIN: Final = 100
#: Most text indexes a model caches (the oldest is dropped first).
MAX_TEXT_INDEXES: Final = 64


@dataclass(frozen=True, slots=True)
class HybridHit:
    """One hybrid result: the vector id, fused score, metadata, each leg's raw score and rank, the vector."""

    id: str
    score: float
    metadata: dict[str, Any]
    vector_score: float
    vector_rank: int | None
    lexical_score: float
    lexical_rank: int | None
    vector: npt.NDArray[np.float32] | None = None


@dataclass(slots=True)
class _TextIndex:
    """BM25 over one field of a collection, and the ids and metadata it was built from."""

    ids: list[str]
    meta: list[bytes | None]
    index: LexicalIndex


def _text_index(
    model: VectorsModel, key: tuple[Any, ...], stored: _Collection, segments: tuple[str, ...]
) -> LexicalIndex:
    """The collection's BM25 index over `segments` (document = slot + 1), rebuilt if the collection changed."""
    cache = model.text_indexes
    cached = cache.get(key)
    if isinstance(cached, _TextIndex) and cached.ids == stored.ids and cached.meta == stored.meta:
        return cached.index
    index = LexicalIndex()
    for slot in range(stored.count):
        text = descend(stored.metadata(slot), segments) if stored.meta[slot] is not None else None
        index.add(slot + 1, text if isinstance(text, str) else "")
    cache.pop(key, None)
    if len(cache) >= MAX_TEXT_INDEXES:
        del cache[next(iter(cache))]
    cache[key] = _TextIndex(list(stored.ids), list(stored.meta), index)
    return index


def _normalized(scores: dict[int, float]) -> dict[int, float]:
    """Min-max over the leg's candidates (1.0 for all when they are equal)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high <= low:
        return dict.fromkeys(scores, 1.0)
    return {slot: (value - low) / (high - low) for slot, value in scores.items()}


def _check(k: Any, alpha: Any, min_score: Any, text: Any) -> tuple[float, float | None]:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise VectorQueryError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 <= float(alpha) <= 1.0:
        raise VectorQueryError(f"alpha must be a number from 0 to 1, not {alpha!r}")
    if min_score is not None:
        if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not math.isfinite(min_score):
            raise VectorQueryError(f"min_score must be a finite number, not {min_score!r}")
        min_score = float(min_score)
    if not isinstance(text, str) or not text:
        raise VectorQueryError("hybrid search needs a non-empty text query")
    return float(alpha), min_score


def hybrid_search(
    model: VectorsModel,
    tenant: str,
    namespace: str,
    collection: str,
    text: str,
    query: npt.ArrayLike,
    *,
    alpha: float = 0.5,
    k: int = 10,
    filter: dict[str, Any] | None = None,
    text_field: str = DEFAULT_TEXT_FIELD,
    min_score: float | None = None,
    include_vectors: bool = False,
) -> list[HybridHit]:
    """The k best vectors of the collection matching `filter` by alpha-weighted vector and BM25 scores."""
    stored = model.stored_collection(tenant, namespace, collection)
    weight, floor = _check(k, alpha, min_score, text)
    segments = _field_path(text_field)
    node = _compile(filter, 0) if filter is not None else None
    vector, query_sq = _query_vector(query, stored)
    if stored.count == 0:
        return []
    rows: npt.NDArray[np.intp] = np.arange(stored.count, dtype=np.intp)
    if node is not None:
        rows = np.flatnonzero(node.mask(_Columns(stored)))
        if len(rows) == 0:
            return []
    vector_all = stored.scores(None, vector, query_sq)
    index = _text_index(model, (tenant, namespace, collection, segments), stored, segments)
    lexical_all = index.scores(text, stored.count + 1)[1:]
    depth = max(k, HYBRID_DEPTH_MIN)

    vector_of: dict[int, float] = {}
    if weight > 0.0:
        subset = vector_all[rows]
        best = _top(subset, depth, lambda position: stored.ids[int(rows[position])])
        vector_of = {int(rows[position]): float(subset[position]) for position in best.tolist()}
    lexical_of: dict[int, float] = {}
    if weight < 1.0:
        matched = rows[lexical_all[rows] > 0.0]
        ranked = sorted(matched.tolist(), key=lambda slot: (-lexical_all[slot], stored.ids[slot]))[:depth]
        lexical_of = {slot: float(lexical_all[slot]) for slot in ranked}
    vector_rank = {slot: rank for rank, slot in enumerate(vector_of, 1)}
    lexical_rank = {slot: rank for rank, slot in enumerate(lexical_of, 1)}
    vector_norm, lexical_norm = _normalized(vector_of), _normalized(lexical_of)
    fused = {
        slot: weight * vector_norm.get(slot, 0.0) + (1.0 - weight) * lexical_norm.get(slot, 0.0)
        for slot in vector_of.keys() | lexical_of.keys()
    }
    heavier = vector_all if weight >= 0.5 else lexical_all
    order = sorted(fused, key=lambda slot: (-fused[slot], -float(heavier[slot]), stored.ids[slot]))
    hits: list[HybridHit] = []
    for slot in order[:k]:
        score = fused[slot]
        if floor is not None and score < floor:
            break
        hits.append(
            HybridHit(
                id=stored.ids[slot],
                score=score,
                metadata=stored.metadata(slot),
                vector_score=float(vector_all[slot]),
                vector_rank=vector_rank.get(slot),
                lexical_score=float(lexical_all[slot]),
                lexical_rank=lexical_rank.get(slot),
                vector=stored.matrix[slot].copy() if include_vectors else None,
            )
        )
    return hits
