"""An inverted-file (IVF) partition of a namespace's memory vectors, for approximate search with exact scores.

The centroids are trained at the edge and carried by a `memory.index` command (so they are in the
log); everything here is a pure function of them and of the vectors:

- **assignment**: each vector belongs to the list of the centroid with the largest dot product
  (ties to the lower list number);
- **probing**: a query visits the `nprobe` lists whose centroids score highest against it (ties to
  the lower number); the memories in them are scored exactly, as by the exact scan.

Both choose by an argmax that must not depend on BLAS blocking or threads, or two nodes could pick
different lists on a near-tie. So a fast float32 matrix product proposes, and every choice closer
than its rounding bound is decided again exactly: each product of two float32 values is exact in
float64 and `math.fsum` rounds their sum correctly, whatever the order. Only near-ties pay for it.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["MAX_LISTS", "assign", "probe"]

#: Most lists (centroids) an index may have.
MAX_LISTS: Final = 4_096
_EPSILON32: Final = float(np.finfo(np.float32).eps)
_BLOCK_ROWS: Final = 8_192


def _exact_dot(x: npt.NDArray[np.float32], y: npt.NDArray[np.float32]) -> float:
    """x · y correctly rounded (each float32 product is exact in float64; fsum rounds the sum once)."""
    return math.fsum((x.astype(np.float64) * y.astype(np.float64)).tolist())


def _bound(dimension: int, x_norm: npt.NDArray[np.float32] | float, c_norm_max: float) -> npt.NDArray[np.float64]:
    """A bound on |float32 dot - exact dot| for vectors of these norms (generous: 2·d·eps·|x|·|c|)."""
    return np.asarray(2.0 * dimension * _EPSILON32 * np.asarray(x_norm, dtype=np.float64) * c_norm_max * 1.01 + 1e-30)


def assign(rows: npt.NDArray[np.float32], centroids: npt.NDArray[np.float32]) -> npt.NDArray[np.int32]:
    """The list of each row: argmax over centroids of the dot product, exactly decided, ties to the lower list."""
    count, dimension = rows.shape
    result = np.empty(count, dtype=np.int32)
    c_norm_max = float(np.sqrt((centroids.astype(np.float64) ** 2).sum(axis=1)).max()) if len(centroids) else 0.0
    for start in range(0, count, _BLOCK_ROWS):
        block = rows[start : start + _BLOCK_ROWS]
        scores = block @ centroids.T
        best = np.argmax(scores, axis=1)
        top = scores[np.arange(len(block)), best]
        bound = _bound(dimension, np.sqrt((block.astype(np.float64) ** 2).sum(axis=1)), c_norm_max)
        close = (scores >= (top - 2 * bound)[:, None]).sum(axis=1) > 1
        for i in np.flatnonzero(close).tolist():
            contenders = np.flatnonzero(scores[i] >= top[i] - 2 * bound[i])
            exact = [(-_exact_dot(block[i], centroids[j]), int(j)) for j in contenders.tolist()]
            best[i] = min(exact)[1]
        result[start : start + len(block)] = best
    return result


def probe(centroids: npt.NDArray[np.float32], query: npt.NDArray[np.float32], nprobe: int) -> npt.NDArray[np.intp]:
    """The `nprobe` lists whose centroids score highest against `query`, exactly decided at the boundary."""
    lists = len(centroids)
    if nprobe >= lists:
        return np.arange(lists, dtype=np.intp)
    scores = centroids @ query
    order = np.argsort(-scores, kind="stable")
    cutoff = float(scores[order[nprobe - 1]])
    c_norm_max = float(np.sqrt((centroids.astype(np.float64) ** 2).sum(axis=1)).max())
    bound = float(_bound(centroids.shape[1], float(np.linalg.norm(query.astype(np.float64))), c_norm_max))
    sure = np.flatnonzero(scores > cutoff + 2 * bound)
    contenders = np.flatnonzero((scores >= cutoff - 2 * bound) & (scores <= cutoff + 2 * bound))
    ranked = sorted((-_exact_dot(centroids[j], query), int(j)) for j in contenders.tolist())
    chosen = [*sure.tolist(), *(j for _, j in ranked[: nprobe - len(sure)])]
    return np.asarray(sorted(chosen), dtype=np.intp)
