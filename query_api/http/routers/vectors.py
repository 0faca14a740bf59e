"""Vector collections: create and list them, upsert and delete vectors, exact filtered top-k and hybrid search."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from commands import CollectionCreate, VectorDelete, VectorUpsert
from commands.fields import Id, JsonInt, Key, Metadata, Namespace
from commands.limits import DEFAULT_NAMESPACE, MAX_K, MAX_VECTOR_DIMENSION
from commands.memory import MAX_CONTENT_CHARS
from commands.vectors import Embedding, Metric
from projections.vector_hybrid import DEFAULT_TEXT_FIELD, HybridHit, hybrid_search
from projections.vectors import (
    CollectionInfo,
    CollectionNotFoundError,
    FilterError,
    Hit,
    VectorQueryError,
    VectorsModel,
)
from query_api.http.bodies import NamespacedWriteOptions
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem
from query_api.http.responses import json_response
from query_api.http.schemas.vectors import CollectionList, CollectionPublic, VectorPublic, VectorSearchResults
from query_api.http.schemas.writes import WriteAccepted

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["vectors"])

CollectionPath = Annotated[Id, Path(description="Collection name")]
VectorIdPath = Annotated[Key, Path(description="Vector id (may contain `/`)")]
NamespaceQuery = Annotated[Namespace, Query(description="Namespace of the collection")]
#: A query vector component: a finite JSON number (no strings, no booleans).
Component = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class CollectionPut(NamespacedWriteOptions):
    """Body of `PUT /v1/collections/{name}`: creating again with the same configuration is a no-op."""

    dimension: JsonInt = Field(..., ge=1, le=MAX_VECTOR_DIMENSION)
    metric: Metric = "cosine"


class VectorPut(NamespacedWriteOptions):
    """Body of `PUT /v1/collections/{name}/vectors/{id}`."""

    embedding: Embedding = Field(..., description="A list of numbers (or the base64 of float32 LE bytes)")
    metadata: Metadata | None = None


class SearchRequest(BaseModel):
    """Body of `POST /v1/collections/{name}/search`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    namespace: Namespace = DEFAULT_NAMESPACE
    vector: list[Component] = Field(..., min_length=1, max_length=MAX_VECTOR_DIMENSION)
    k: JsonInt = Field(10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = Field(None, description="Metadata filter: `$eq $ne $gt ... $and $or`")
    min_score: Component | None = Field(None, description="Keep hits scoring at least this (-distance for euclidean)")
    include_vectors: bool = False


class HybridSearchRequest(BaseModel):
    """Body of `POST /v1/collections/{name}/hybrid-search`: BM25 over a metadata text field fused with the vector."""

    model_config = ConfigDict(extra="forbid", strict=True)
    namespace: Namespace = DEFAULT_NAMESPACE
    text_query: str = Field(..., min_length=1, max_length=MAX_CONTENT_CHARS, description="Text for the BM25 leg")
    vector: list[Component] = Field(..., min_length=1, max_length=MAX_VECTOR_DIMENSION)
    alpha: Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)] = Field(
        0.5, description="Weight of the vector leg (1: vector only, 0: BM25 only)"
    )
    text_field: str = Field(
        DEFAULT_TEXT_FIELD,
        min_length=1,
        max_length=256,
        pattern=r"^[^.]+(\.[^.]+)*$",
        description="Dotted metadata path of the text the BM25 leg searches",
    )
    k: JsonInt = Field(10, ge=1, le=MAX_K)
    filter: dict[str, Any] | None = Field(None, description="Metadata filter: `$eq $ne $gt ... $and $or`")
    min_score: Component | None = Field(None, description="Keep hits whose fused score is at least this")
    include_vectors: bool = False


class HybridHitPublic(BaseModel):
    """A hybrid hit: the fused score and why (each leg's raw score, and rank where it ranked the vector)."""

    id: str
    score: float
    metadata: dict[str, Any]
    vector_score: float
    vector_rank: int | None
    lexical_score: float
    lexical_rank: int | None
    vector: list[float] | None = None


class HybridSearchResults(BaseModel):
    """Hybrid hits, best first, and the weight the vector leg had."""

    alpha: float
    text_field: str
    hits: list[HybridHitPublic]


def vectors_model(node: View) -> VectorsModel:
    """The node's vectors read model."""
    model = node.state.model("vectors")
    assert isinstance(model, VectorsModel)
    return model


def collection_public(info: CollectionInfo) -> dict[str, Any]:
    """The JSON form of a collection."""
    return {**dataclasses.asdict(info), "bytes_per_vector": info.bytes_per_vector}


def hit_public(hit: Hit) -> dict[str, Any]:
    """The JSON form of a search hit; `vector` only when asked for."""
    item: dict[str, Any] = {"id": hit.id, "score": hit.score, "metadata": hit.metadata}
    if hit.vector is not None:
        item["vector"] = hit.vector.tolist()
    return item


def collection_info(node: View, tenant: str, namespace: str, name: str) -> CollectionInfo:
    """The collection's info, or a 404 problem."""
    try:
        return vectors_model(node).collection_info(tenant, namespace, name)
    except CollectionNotFoundError as error:
        raise ApiProblem(404, "not_found", str(error)) from error


@router.put("/collections/{name}", response_model=WriteAccepted)
async def put_collection(name: CollectionPath, body: CollectionPut, node: WriterDep, caller: CallerDep) -> Response:
    """Create a collection of fixed dimension and metric; 409 if it exists with another configuration."""
    command = CollectionCreate(name=name, dimension=body.dimension, metric=body.metric)
    return json_response(
        await execute(node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id)
    )


@router.get("/collections", response_model=CollectionList)
async def list_collections(
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The collections of a namespace, by name, with dimension, metric, size and memory."""
    await node.wait_token(token, wait_ms)
    return json_response(
        {"items": [collection_public(info) for info in vectors_model(node).collections(caller.tenant, namespace)]}
    )


@router.get("/collections/{name}", response_model=CollectionPublic)
async def get_collection(
    name: CollectionPath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """One collection's dimension, metric, size and memory; 404 if absent."""
    await node.wait_token(token, wait_ms)
    return json_response(collection_public(collection_info(node, caller.tenant, namespace, name)))


@router.put("/collections/{name}/vectors/{vector_id:path}", response_model=WriteAccepted)
async def put_vector(
    name: CollectionPath, vector_id: VectorIdPath, body: VectorPut, node: WriterDep, caller: CallerDep
) -> Response:
    """Insert or replace a vector; 404 if the collection is absent, 422 if the dimension differs."""
    command = VectorUpsert(collection=name, id=vector_id, embedding=body.embedding, metadata=body.metadata)
    return json_response(
        await execute(node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id)
    )


@router.get("/collections/{name}/vectors/{vector_id:path}", response_model=VectorPublic)
async def get_vector(
    name: CollectionPath,
    vector_id: VectorIdPath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """A stored vector (its float32 embedding, bit-exact) and metadata; 404 if absent."""
    await node.wait_token(token, wait_ms)
    try:
        stored = vectors_model(node).get_vector(caller.tenant, namespace, name, vector_id)
    except CollectionNotFoundError as error:
        raise ApiProblem(404, "not_found", str(error)) from error
    if stored is None:
        raise ApiProblem(404, "not_found", f"no vector {vector_id!r} in collection {name!r}")
    return json_response({"id": stored.id, "embedding": stored.vector.tolist(), "metadata": stored.metadata})


@router.delete("/collections/{name}/vectors/{vector_id:path}", response_model=WriteAccepted)
async def delete_vector(
    name: CollectionPath,
    vector_id: VectorIdPath,
    node: WriterDep,
    caller: CallerDep,
    namespace: Annotated[Namespace | None, Query()] = None,
    command_id: Annotated[Id | None, Query()] = None,
    run_id: Annotated[Id | None, Query()] = None,
) -> Response:
    """Delete a vector (`deleted` is false if it was absent); 404 if the collection is absent."""
    command = VectorDelete(collection=name, id=vector_id)
    return json_response(
        await execute(node, caller, command, namespace=namespace, run_id=run_id, command_id=command_id)
    )


@router.post("/collections/{name}/search", response_model=VectorSearchResults)
async def search_collection(
    name: CollectionPath,
    body: SearchRequest,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Exact top-k by score (ties by id) among vectors matching `filter`; 400 on a bad filter."""
    await node.wait_token(token, wait_ms)
    info = collection_info(node, caller.tenant, body.namespace, name)
    if len(body.vector) != info.dimension:
        raise ApiProblem(
            422,
            "invalid",
            f"query has dimension {len(body.vector)}; collection {name!r} has {info.dimension}",
            dimension=info.dimension,
        )
    try:
        hits = vectors_model(node).search(
            caller.tenant,
            body.namespace,
            name,
            body.vector,
            k=body.k,
            filter=body.filter,
            min_score=body.min_score,
            include_vectors=body.include_vectors,
        )
    except FilterError as error:
        raise ApiProblem(400, "bad_filter", str(error)) from error
    except VectorQueryError as error:
        raise ApiProblem(400, "bad_query", str(error)) from error
    return json_response({"hits": [hit_public(hit) for hit in hits]})


def hybrid_hit_public(hit: HybridHit) -> HybridHitPublic:
    """The public form of a hybrid hit."""
    return HybridHitPublic(
        id=hit.id,
        score=hit.score,
        metadata=hit.metadata,
        vector_score=hit.vector_score,
        vector_rank=hit.vector_rank,
        lexical_score=hit.lexical_score,
        lexical_rank=hit.lexical_rank,
        vector=None if hit.vector is None else hit.vector.tolist(),
    )


@router.post("/collections/{name}/hybrid-search", response_model=HybridSearchResults)
async def hybrid_search_collection(
    name: CollectionPath,
    body: HybridSearchRequest,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> HybridSearchResults:
    """Top-k by alpha · vector + (1 - alpha) · BM25 of `text_field`, each leg min-max scaled; 400 on a bad filter."""
    await node.wait_token(token, wait_ms)
    info = collection_info(node, caller.tenant, body.namespace, name)
    if len(body.vector) != info.dimension:
        raise ApiProblem(
            422,
            "invalid",
            f"query has dimension {len(body.vector)}; collection {name!r} has {info.dimension}",
            dimension=info.dimension,
        )
    try:
        hits = hybrid_search(
            vectors_model(node),
            caller.tenant,
            body.namespace,
            name,
            body.text_query,
            body.vector,
            alpha=body.alpha,
            k=body.k,
            filter=body.filter,
            text_field=body.text_field,
            min_score=body.min_score,
            include_vectors=body.include_vectors,
        )
    except FilterError as error:
        raise ApiProblem(400, "bad_filter", str(error)) from error
    except VectorQueryError as error:
        raise ApiProblem(400, "bad_query", str(error)) from error
    return HybridSearchResults(
        alpha=body.alpha, text_field=body.text_field, hits=[hybrid_hit_public(hit) for hit in hits]
    )
