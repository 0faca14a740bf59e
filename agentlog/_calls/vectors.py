"""The builders of vector collections, their vectors, exact and hybrid search (`/v1/collections`)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from agentlog._calls.call import DEFAULT_NAMESPACE, Call, none, options, read_call, segment, write_call
from agentlog.models import Collection, HybridSearchHit, Metric, SearchHit, StoredVector, WriteResult, from_json

__all__ = [
    "create_collection",
    "delete_vector",
    "get_collection",
    "get_vector",
    "hybrid_search",
    "list_collections",
    "search",
    "upsert_vector",
]


def _hits(data: Any) -> list[SearchHit]:
    return [from_json(SearchHit, item) for item in data["hits"]]


def _hybrid_hits(data: Any) -> list[HybridSearchHit]:
    return [from_json(HybridSearchHit, item) for item in data["hits"]]


def _collections(data: Any) -> list[Collection]:
    return [from_json(Collection, item) for item in data["items"]]


def _embedding(values: bytes | Iterable[float]) -> str | list[float]:
    """An embedding as JSON: float32 LE bytes as base64 (bit-exact), anything iterable as a list of floats."""
    if isinstance(values, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(values)).decode("ascii")
    return [float(value) for value in values]


def create_collection(
    name: str,
    dimension: int,
    metric: Metric = "cosine",
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Create a vector collection of fixed `dimension` and `metric` (again with the same config: a no-op)."""
    body = {"dimension": dimension, "metric": metric, "namespace": namespace}
    body |= options(command_id=command_id, run_id=run_id)
    return write_call("PUT", f"/v1/collections/{segment(name)}", body, branch=branch)


def get_collection(
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Collection | None]:
    """Collection `name` (dimension, metric, size, memory), or None if absent."""
    parse = partial(from_json, Collection)
    return read_call(
        f"/v1/collections/{segment(name)}",
        parse,
        token,
        consistent,
        missing=none,
        namespace=namespace,
        branch=branch,
        as_of=as_of,
    )


def list_collections(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[Collection]]:
    """The namespace's vector collections, by name."""
    return read_call(
        "/v1/collections", _collections, token, consistent, namespace=namespace, branch=branch, as_of=as_of
    )


def upsert_vector(
    collection: str,
    id: str,
    embedding: bytes | Iterable[float],
    *,
    metadata: Mapping[str, Any] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Insert or replace vector `id` (numbers, a numpy array, or float32 LE bytes) with its metadata."""
    body = {"embedding": _embedding(embedding), "namespace": namespace}
    body |= options(metadata=None if metadata is None else dict(metadata), command_id=command_id, run_id=run_id)
    return write_call("PUT", f"/v1/collections/{segment(collection)}/vectors/{segment(id)}", body, branch=branch)


def get_vector(
    collection: str,
    id: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[StoredVector | None]:
    """Vector `id` of the collection (its embedding and metadata), or None if absent."""
    path = f"/v1/collections/{segment(collection)}/vectors/{segment(id)}"
    return read_call(
        path,
        partial(from_json, StoredVector),
        token,
        consistent,
        missing=none,
        namespace=namespace,
        branch=branch,
        as_of=as_of,
    )


def delete_vector(
    collection: str,
    id: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Delete vector `id`; result `deleted` says whether it existed (NotFoundError if the collection does not)."""
    path = f"/v1/collections/{segment(collection)}/vectors/{segment(id)}"
    return write_call("DELETE", path, namespace=namespace, command_id=command_id, run_id=run_id, branch=branch)


def search(
    collection: str,
    vector: Iterable[float],
    *,
    k: int = 10,
    filter: Mapping[str, Any] | None = None,
    min_score: float | None = None,
    include_vectors: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[SearchHit]]:
    """Exact top-`k` vectors by score (ties by id) among those whose metadata match `filter`."""
    body: dict[str, Any] = {"vector": [float(value) for value in vector], "k": k, "namespace": namespace}
    body |= options(
        filter=None if filter is None else dict(filter),
        min_score=min_score,
        include_vectors=include_vectors or None,
    )
    path = f"/v1/collections/{segment(collection)}/search"
    return read_call(path, _hits, token, consistent, method="POST", body=body, branch=branch, as_of=as_of)


def hybrid_search(
    collection: str,
    text_query: str,
    vector: Iterable[float],
    alpha: float = 0.5,
    *,
    k: int = 10,
    text_field: str = "text",
    filter: Mapping[str, Any] | None = None,
    min_score: float | None = None,
    include_vectors: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[HybridSearchHit]]:
    """Top-`k` by `alpha` · vector score + (1 - `alpha`) · BM25 of metadata `text_field` (each leg min-max scaled)."""
    body: dict[str, Any] = {
        "text_query": text_query,
        "vector": [float(value) for value in vector],
        "alpha": float(alpha),
        "k": k,
        "text_field": text_field,
        "namespace": namespace,
    }
    body |= options(
        filter=None if filter is None else dict(filter),
        min_score=min_score,
        include_vectors=include_vectors or None,
    )
    path = f"/v1/collections/{segment(collection)}/hybrid-search"
    return read_call(path, _hybrid_hits, token, consistent, method="POST", body=body, branch=branch, as_of=as_of)
