"""Memory search over one namespace: exact vector scan, BM25, and hybrid by reciprocal rank fusion.

- **Filter**: a boolean mask over memory numbers from the space's columns (scope codes, tags,
  validity), the same condition as `MemoryFilter.keeps`.
- **Vector** (cosine): each row is scored alone by `np.vecdot` (one dot per row, as in
  `projections.vectors`), so a memory's score depends only on its embedding and the query, whatever
  the filter or the count; score = (x · q/|q|) / |x|.
- **Lexical**: BM25 from `projections.lexical`, restricted to the mask; only scores above 0 match.
- **Approximate vector leg**: when the namespace has an IVF index (`memory.index`) and more than
  `APPROXIMATE_MIN_ROWS` vectors pass the filter, only the memories in the `nprobe` lists nearest
  the query (`projections.memory_ivf`) are scored, exactly as above; `exact=True` scans them all.
- **Hybrid**: each leg ranks its best `depth` candidates (at least `HYBRID_DEPTH_MIN`, at least k);
  fused = Σ 1 / (RRF_K + rank) over the legs that ranked the memory (rank from 1).

Every ranking breaks ties by memory number. `min_score` keeps hits scoring at least that: the
cosine in vector mode, the BM25 score in lexical mode, the fused score in hybrid mode. Each hit
carries both legs' scores and ranks (None where a leg did not rank it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from commands.limits import MAX_K
from projections.memories import MemoryFilter
from projections.memory_ivf import MAX_LISTS, probe
from projections.memory_space import MAX_NORM, MIN_NORM, MemoryRecord, MemorySpace

__all__ = [
    "APPROXIMATE_MIN_ROWS",
    "DEFAULT_NPROBE",
    "HYBRID_DEPTH_MIN",
    "RRF_K",
    "MemoryHit",
    "MemoryQueryError",
    "SearchMode",
    "filter_mask",
    "search",
    "search_with_plan",
]

#: The constant of reciprocal rank fusion (Cormack et al.).
RRF_K: Final = 60
#: Fewest candidates each leg ranks for a hybrid search.
HYBRID_DEPTH_MIN: Final = 100
#: With an IVF index, a vector leg over more matching vectors than this visits only `nprobe` lists.
APPROXIMATE_MIN_ROWS: Final = 20_000
#: Lists a query visits by default.
DEFAULT_NPROBE: Final = 16

SearchMode = Literal["vector", "lexical", "hybrid"]
_Mask = npt.NDArray[np.bool_]
#: A filter keeping more than this fraction of rows scores the whole matrix instead of gathering rows.
_GATHER_FRACTION: Final = 0.25
_VECDOT: Final[Callable[..., npt.NDArray[np.float32]] | None] = getattr(np, "vecdot", None)


class MemoryQueryError(ValueError):
    """A search that cannot run (bad k, mode, query vector, or a missing leg input): HTTP 4xx."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One result: the memory, the score that ranked it, and each leg's score and rank."""

    memory: MemoryRecord
    score: float
    vector_score: float | None
    vector_rank: int | None
    lexical_score: float | None
    lexical_rank: int | None


def filter_mask(space: MemorySpace, where: MemoryFilter) -> _Mask:
    """Memories (by number; slot 0 is never set) passing `where`."""
    size = space.count + 1
    if where.valid_at is not None:
        mask = (space.valid_from[:size] <= where.valid_at) & (where.valid_at < space.valid_until[:size])
    elif where.include_invalidated:
        mask = np.ones(size, dtype=np.bool_)
    else:
        mask = space.active[:size].copy()
    mask[0] = False
    for name, codes in space.scopes.items():
        wanted = getattr(where, name)
        if wanted is None:
            continue
        code = codes.code_of.get(wanted)
        if code is None:
            return np.zeros(size, dtype=np.bool_)
        mask &= codes.codes[:size] == code
    for tag in where.tags:
        slots = space.tags.get(tag)
        if not slots:
            return np.zeros(size, dtype=np.bool_)
        tagged = np.zeros(size, dtype=np.bool_)
        tagged[np.fromiter(slots, dtype=np.intp, count=len(slots))] = True
        mask &= tagged
    return mask


def _ranked(candidates: npt.NDArray[np.intp], scores: npt.NDArray[np.float64], depth: int) -> list[int]:
    """The `depth` best of `candidates` by (-score, number)."""
    if len(candidates) > depth:
        values = scores[candidates]
        threshold = np.partition(values, len(values) - depth)[len(values) - depth]
        candidates = candidates[values >= threshold]
    return sorted(candidates.tolist(), key=lambda slot: (-scores[slot], slot))[:depth]


def _query_vector(space: MemorySpace, query: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.asarray(query)
    if array.ndim != 1 or array.dtype.kind not in "iuf":
        raise MemoryQueryError("bad_query", "query vector must be a flat list of numbers")
    if len(array) != space.dimension:
        raise MemoryQueryError(
            "invalid", f"query vector has dimension {len(array)}; the namespace's embeddings have {space.dimension}"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        wide = array.astype(np.float32).astype(np.float64)
    if not bool(np.isfinite(wide).all()):
        raise MemoryQueryError("bad_query", "query vector values must be finite float32 numbers")
    norm = math.sqrt(float(np.dot(wide, wide)))
    if not MIN_NORM <= norm <= MAX_NORM:
        raise MemoryQueryError("bad_query", f"query vector norm {norm:.3g} is outside [{MIN_NORM:g}, {MAX_NORM:g}]")
    return (wide / norm).astype(np.float32)


def vector_scores(
    space: MemorySpace, rows: npt.NDArray[np.intp], query: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Cosine of each of `rows` with the unit `query`, each row scored on its own."""
    block = space.matrix[rows]
    dots = _VECDOT(block, query) if _VECDOT is not None else np.einsum("ij,j->i", block, query)
    result: npt.NDArray[np.float32] = dots * space.inverse_norms[rows]
    return result


def _vector_leg(
    space: MemorySpace, mask: _Mask, query: npt.ArrayLike, depth: int, nprobe: int | None
) -> tuple[list[int], dict[int, float], int | None]:
    if space.model_id is None:
        return [], {}, None
    unit = _query_vector(space, query)
    matching = mask & space.has_vector[: len(mask)]
    probed: int | None = None
    if nprobe is not None and space.centroids is not None and int(matching.sum()) > APPROXIMATE_MIN_ROWS:
        space.ensure_lists()
        visited = np.zeros(len(space.centroids) + 1, dtype=np.bool_)  # the last entry serves list -1
        visited[probe(space.centroids, unit, nprobe)] = True
        matching &= visited[space.lists[: len(mask)]]
        probed = min(nprobe, len(space.centroids))
    rows = np.flatnonzero(matching)
    if len(rows) == 0:
        return [], {}, probed
    scores = np.zeros(len(mask), dtype=np.float64)
    if len(rows) > _GATHER_FRACTION * len(mask):
        # Score every row in place (no gathered copy of the matrix); per-row dots give the same values.
        block = space.matrix[: len(mask)]
        dots = _VECDOT(block, unit) if _VECDOT is not None else np.einsum("ij,j->i", block, unit)
        scores[rows] = (dots * space.inverse_norms[: len(mask)])[rows]
    else:
        scores[rows] = vector_scores(space, rows, unit)
    ranked = _ranked(rows, scores, depth)
    return ranked, {slot: float(scores[slot]) for slot in ranked}, probed


def _lexical_leg(space: MemorySpace, mask: _Mask, text: str, depth: int) -> tuple[list[int], dict[int, float]]:
    scores = space.lexical.scores(text, len(mask))
    scores[~mask] = 0.0
    candidates = np.flatnonzero(scores > 0.0)
    ranked = _ranked(candidates, scores, depth)
    return ranked, {slot: float(scores[slot]) for slot in ranked}


def search(
    space: MemorySpace | None,
    where: MemoryFilter,
    *,
    mode: SearchMode,
    text: str | None = None,
    vector: npt.ArrayLike | None = None,
    k: int = 10,
    min_score: float | None = None,
    exact: bool = False,
    nprobe: int = DEFAULT_NPROBE,
) -> list[MemoryHit]:
    """The k best memories of `space` passing `where`, by `mode`; MemoryQueryError on a bad request."""
    hits, _ = search_with_plan(
        space, where, mode=mode, text=text, vector=vector, k=k, min_score=min_score, exact=exact, nprobe=nprobe
    )
    return hits


def search_with_plan(
    space: MemorySpace | None,
    where: MemoryFilter,
    *,
    mode: SearchMode,
    text: str | None = None,
    vector: npt.ArrayLike | None = None,
    k: int = 10,
    min_score: float | None = None,
    exact: bool = False,
    nprobe: int = DEFAULT_NPROBE,
) -> tuple[list[MemoryHit], int | None]:
    """`search`'s hits, and the lists the vector leg visited (None: it scanned every match exactly)."""
    if isinstance(nprobe, bool) or not isinstance(nprobe, int) or not 1 <= nprobe <= MAX_LISTS:
        raise MemoryQueryError("bad_query", f"nprobe must be an integer from 1 to {MAX_LISTS}, not {nprobe!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise MemoryQueryError("bad_query", f"k must be an integer from 1 to {MAX_K}, not {k!r}")
    if mode not in ("vector", "lexical", "hybrid"):
        raise MemoryQueryError("bad_query", f"mode must be vector, lexical or hybrid, not {mode!r}")
    if mode in ("vector", "hybrid") and vector is None:
        raise MemoryQueryError("bad_query", f"{mode} search needs a query vector (or text and an embedder)")
    if mode in ("lexical", "hybrid") and not text:
        raise MemoryQueryError("bad_query", f"{mode} search needs query text")
    if min_score is not None and not math.isfinite(min_score):
        raise MemoryQueryError("bad_query", "min_score must be finite")
    if space is None or space.count == 0:
        return [], None
    mask = filter_mask(space, where)
    probed: int | None = None
    depth = k if mode != "hybrid" else max(k, HYBRID_DEPTH_MIN)
    vector_ranked: list[int] = []
    vector_of: dict[int, float] = {}
    lexical_ranked: list[int] = []
    lexical_of: dict[int, float] = {}
    if mode != "lexical":
        assert vector is not None
        vector_ranked, vector_of, probed = _vector_leg(space, mask, vector, depth, None if exact else nprobe)
    if mode != "vector":
        assert text is not None
        lexical_ranked, lexical_of = _lexical_leg(space, mask, text, depth)
    vector_rank = {slot: rank for rank, slot in enumerate(vector_ranked, 1)}
    lexical_rank = {slot: rank for rank, slot in enumerate(lexical_ranked, 1)}
    if mode == "vector":
        order, score_of = vector_ranked, vector_of
    elif mode == "lexical":
        order, score_of = lexical_ranked, lexical_of
    else:
        score_of = {}
        for slot in sorted(set(vector_rank) | set(lexical_rank)):
            fused = 0.0
            if slot in vector_rank:
                fused += 1.0 / (RRF_K + vector_rank[slot])
            if slot in lexical_rank:
                fused += 1.0 / (RRF_K + lexical_rank[slot])
            score_of[slot] = fused
        order = sorted(score_of, key=lambda slot: (-score_of[slot], slot))
    hits: list[MemoryHit] = []
    for slot in order[:k]:
        score = score_of[slot]
        if min_score is not None and score < min_score:
            break
        hits.append(
            MemoryHit(
                memory=space.records[slot - 1],
                score=score,
                vector_score=vector_of.get(slot),
                vector_rank=vector_rank.get(slot),
                lexical_score=lexical_of.get(slot),
                lexical_rank=lexical_rank.get(slot),
            )
        )
    return hits, probed
