"""Request and response models of the memory endpoints (`query_api.http.routers.memories`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commands.fields import Id, Metadata, Namespace
from commands.limits import DEFAULT_NAMESPACE, MAX_K, MAX_VECTOR_DIMENSION
from commands.memory import MAX_CONTENT_CHARS, MAX_MERGE_SOURCES, MAX_REASON_CHARS, MAX_TAGS, MemoryId, MemoryType, Tag
from commands.vectors import Embedding
from projections.memory_search import MemoryHit
from projections.memory_space import MemoryRecord
from query_api.http.bodies import WriteOptions

__all__ = [
    "PROBLEMS",
    "HistoryEntryPublic",
    "MemoryChange",
    "MemoryCreate",
    "MemoryHistoryPublic",
    "MemoryHitPublic",
    "MemoryIndexBody",
    "MemoryList",
    "MemoryMergeBody",
    "MemoryPublic",
    "MemorySearch",
    "MemoryWritten",
    "Problem",
    "SearchResults",
    "hit_public",
    "memory_public",
]

_Millis = Annotated[int, Field(ge=0, le=2**63 - 1)]
_Content = Annotated[str, Field(min_length=1, max_length=MAX_CONTENT_CHARS)]
_Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS)]
_Confidence = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
_Tags = Annotated[list[Tag], Field(max_length=MAX_TAGS)]
_ModelId = Annotated[str, Field(min_length=1, max_length=256)]
#: A query vector component: a finite JSON number.
Component = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class Problem(BaseModel):
    """An RFC 9457 problem: `type` is `urn:agentlog:error:<code>`; extra fields may follow."""

    model_config = ConfigDict(extra="allow")
    type: str
    title: str
    status: int
    detail: str


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": Problem, "description": "A problem", "content": {"application/problem+json": {}}}
        for status in statuses
    }


#: The problem statuses every memory endpoint may answer (identity, tokens, branches, as_of, limits, lag).
PROBLEMS = _problems(400, 401, 404, 409, 413, 422, 503, 504)


class MemoryCreate(WriteOptions):
    """Body of `POST /v1/memories`; without `embedding`, the node embeds `content` (if it has an embedder).

    `run_id` is both the memory's run scope and the run the write belongs to.
    """

    namespace: Namespace = DEFAULT_NAMESPACE
    content: _Content
    memory_type: MemoryType = "fact"
    user_id: Id | None = None
    agent_id: Id | None = Field(None, description="The agent the memory belongs to (scope), not the writer")
    session_id: Id | None = None
    tags: _Tags = Field(default_factory=list)
    metadata: Metadata | None = None
    confidence: _Confidence = 1.0
    source: Annotated[str, Field(min_length=1, max_length=128)] = "manual"
    valid_from: _Millis | None = Field(None, description="World time it became true (ms; default: log time)")
    valid_until: _Millis | None = Field(None, description="World time it stopped being true (ms)")
    embedding: Embedding | None = Field(None, description="A precomputed vector (list of numbers or base64 float32)")
    model_id: _ModelId | None = Field(None, description="The model of `embedding` (required with it)")
    reason: _Reason | None = None


class MemoryChange(WriteOptions):
    """Body of `PUT /v1/memories/{id}`: fields to change; new content is re-embedded unless `embedding` is given."""

    namespace: Namespace = DEFAULT_NAMESPACE
    content: _Content | None = None
    memory_type: MemoryType | None = None
    tags: _Tags | None = None
    metadata: Metadata | None = None
    confidence: _Confidence | None = None
    valid_from: _Millis | None = None
    valid_until: _Millis | None = None
    embedding: Embedding | None = None
    model_id: _ModelId | None = None
    reason: _Reason | None = None


class MemoryMergeBody(WriteOptions):
    """Body of `POST /v1/memories/{id}/merge`: fold `ids` into this memory."""

    namespace: Namespace = DEFAULT_NAMESPACE
    ids: Annotated[list[MemoryId], Field(min_length=1, max_length=MAX_MERGE_SOURCES)]
    content: _Content | None = None
    embedding: Embedding | None = None
    model_id: _ModelId | None = None
    reason: _Reason | None = None


class Position(BaseModel):
    """Where a command sits in the log."""

    partition: int
    offset: int


class MemoryWritten(BaseModel):
    """What a memory write answers: the outcome, the result, the command's position and a token."""

    command_id: str
    outcome: Literal["applied", "rejected"]
    result: dict[str, Any]
    position: Position
    timestamp_ms: int
    token: str


class MemoryPublic(BaseModel):
    """A memory as it stands (or stood, `as_of`); `embedding` only when asked for."""

    id: int
    namespace: str
    content: str
    memory_type: str
    user_id: str | None
    agent_id: str | None
    session_id: str | None
    run_id: str | None
    tags: list[str]
    metadata: dict[str, Any] | None
    confidence: float
    source: str
    model_id: str | None
    has_embedding: bool
    embedding: list[float] | None = None
    valid_from: int
    valid_until: int | None
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None
    version: int
    active: bool
    invalidated_at_ms: int | None
    merged_into: int | None


class MemoryList(BaseModel):
    """A page of recall: memories by number; `next` is the cursor of the following page, if any."""

    items: list[MemoryPublic]
    next: int | None


class HistoryEntryPublic(BaseModel):
    """One change of a memory: operation, version, old and new content, reason, who and when (log time)."""

    model_config = ConfigDict(extra="allow")
    operation: Literal["add", "update", "invalidate", "merge"]
    version: int
    old_content: str | None
    new_content: str
    reason: str | None
    changed_by: str | None
    at_ms: int
    command_id: str
    changes: list[str] = Field(default_factory=list)


class MemoryHistoryPublic(BaseModel):
    """Every change of one memory, oldest first."""

    id: int
    items: list[HistoryEntryPublic]


class MemorySearch(BaseModel):
    """Body of `POST /v1/search`: text and/or vector, a mode, filters, k and min_score."""

    model_config = ConfigDict(extra="forbid", strict=True)
    namespace: Namespace = DEFAULT_NAMESPACE
    query: Annotated[str, Field(max_length=MAX_CONTENT_CHARS)] | None = Field(None, description="Query text")
    vector: Annotated[list[Component], Field(min_length=1, max_length=MAX_VECTOR_DIMENSION)] | None = Field(
        None, description="Query vector (default: the node embeds `query`)"
    )
    mode: Literal["vector", "lexical", "hybrid"] = "hybrid"
    k: int = Field(10, ge=1, le=MAX_K)
    min_score: Component | None = Field(
        None, description="Keep hits scoring at least this: cosine, BM25, or the fused score in hybrid mode"
    )
    user_id: Id | None = None
    agent_id: Id | None = None
    session_id: Id | None = None
    run_id: Id | None = None
    memory_type: MemoryType | None = None
    tags: _Tags = Field(default_factory=list, description="Memories carrying all of these tags")
    valid_at: _Millis | None = Field(None, description="World time: memories true then, forgotten ones included")
    include_invalidated: bool = False
    exact: bool = Field(False, description="Scan every matching vector even when the namespace has an index")
    nprobe: int = Field(16, ge=1, le=4_096, description="Index lists a query visits (with an index)")


class MemoryIndexBody(WriteOptions):
    """Body of `POST /v1/memories/index`: train an IVF index of the namespace's vectors (lists: about √n)."""

    namespace: Namespace = DEFAULT_NAMESPACE
    lists: int | None = Field(None, ge=1, le=1_024)
    sample: int = Field(100_000, ge=1, le=100_000, description="Vectors the training looks at")


class LegScore(BaseModel):
    """How one leg ranked a hit."""

    score: float
    rank: int


class MemoryHitPublic(BaseModel):
    """A search hit: the memory, the score that ranked it, and each leg's score and rank (why it matched)."""

    memory: MemoryPublic
    score: float
    vector: LegScore | None
    lexical: LegScore | None


class SearchResults(BaseModel):
    """Search results, best first, and the model the query vector came from (None: the client's vector)."""

    mode: str
    query_model_id: str | None
    probed_lists: int | None = Field(description="Index lists the vector leg visited; None: an exact scan")
    hits: list[MemoryHitPublic]


def memory_public(record: MemoryRecord, namespace: str, include_embedding: bool = False) -> MemoryPublic:
    """The public form of a record."""
    vector = record.vector()
    return MemoryPublic(
        id=record.id,
        namespace=namespace,
        content=record.content,
        memory_type=record.memory_type,
        user_id=record.user_id,
        agent_id=record.agent_id,
        session_id=record.session_id,
        run_id=record.run_id,
        tags=list(record.tags),
        metadata=record.metadata,
        confidence=record.confidence,
        source=record.source,
        model_id=record.model_id,
        has_embedding=vector is not None,
        embedding=vector.tolist() if include_embedding and vector is not None else None,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        created_at_ms=record.created_at_ms,
        updated_at_ms=record.updated_at_ms,
        created_by=record.created_by,
        version=record.version,
        active=record.active,
        invalidated_at_ms=record.invalidated_at_ms,
        merged_into=record.merged_into,
    )


def hit_public(hit: MemoryHit, namespace: str) -> MemoryHitPublic:
    """The public form of a hit."""
    vector = None if hit.vector_rank is None else LegScore(score=hit.vector_score or 0.0, rank=hit.vector_rank)
    lexical = None if hit.lexical_rank is None else LegScore(score=hit.lexical_score or 0.0, rank=hit.lexical_rank)
    return MemoryHitPublic(memory=memory_public(hit.memory, namespace), score=hit.score, vector=vector, lexical=lexical)
