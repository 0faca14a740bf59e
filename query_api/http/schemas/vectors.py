"""Response models of the vector collection routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["CollectionList", "CollectionPublic", "VectorHitPublic", "VectorPublic", "VectorSearchResults"]


class CollectionPublic(BaseModel):
    """A collection: dimension, metric, size and memory."""

    name: str
    dimension: int
    metric: str
    count: int
    capacity: int
    matrix_bytes: int
    bytes_used: int
    bytes_per_vector: float


class CollectionList(BaseModel):
    """The collections of a namespace, by name."""

    items: list[CollectionPublic]


class VectorPublic(BaseModel):
    """A stored vector (float32 components) and its metadata."""

    id: str
    embedding: list[float]
    metadata: dict[str, Any]


class VectorHitPublic(BaseModel):
    """A search hit; `vector` only when asked for."""

    id: str
    score: float
    metadata: dict[str, Any]
    vector: list[float] | None = None


class VectorSearchResults(BaseModel):
    """Hits best first (ties by id)."""

    hits: list[VectorHitPublic]
