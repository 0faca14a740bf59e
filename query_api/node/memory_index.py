"""Training a namespace's IVF index at the edge: spherical k-means over a sample of its vectors.

The training is not deterministic (sampling, BLAS); its result, the centroids, goes into a
`memory.index` command, so the log makes every node use the same ones (`projections.memory_ivf`).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from projections.memory_space import MemorySpace

__all__ = ["SAMPLE_MAX", "default_lists", "sample_vectors", "train_centroids"]

#: Most vectors a training run looks at.
SAMPLE_MAX: Final = 100_000
#: k-means rounds.
ITERATIONS: Final = 12


def default_lists(vectors: int) -> int:
    """About √n lists, from 16 to 512 (512 float16 centroids of dimension 1,024 still fit one command)."""
    return max(16, min(512, int(math.sqrt(max(vectors, 1)))))


def sample_vectors(space: MemorySpace, sample: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """A copy of up to `sample` of the space's vectors, normalized (taken on the loop thread, trained off it)."""
    rows = np.flatnonzero(space.has_vector[: space.count + 1])
    if len(rows) > sample:
        rows = np.sort(np.random.default_rng(seed).choice(rows, size=sample, replace=False))
    vectors = space.matrix[rows].astype(np.float32)
    vectors *= space.inverse_norms[rows][:, None]
    return vectors


def train_centroids(vectors: npt.NDArray[np.float32], lists: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """`lists` unit centroids by spherical k-means (an empty list keeps its previous centroid)."""
    if len(vectors) < lists:
        raise ValueError(f"{len(vectors)} vectors cannot train {lists} lists")
    rng = np.random.default_rng(seed)
    centroids = vectors[rng.choice(len(vectors), size=lists, replace=False)].copy()
    for _ in range(ITERATIONS):
        nearest = np.argmax(vectors @ centroids.T, axis=1)
        sums = np.zeros_like(centroids, dtype=np.float64)
        np.add.at(sums, nearest, vectors)
        norms = np.linalg.norm(sums, axis=1)
        filled = norms > 0
        centroids[filled] = (sums[filled] / norms[filled][:, None]).astype(np.float32)
    return centroids
