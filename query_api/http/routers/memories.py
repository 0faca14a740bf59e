"""Memories (DESIGN §9, seed 003): add, get, update, forget, merge, history, recall and search.

Writes embed at the edge: a memory sent without `embedding` is embedded here by the node's
embedder (if it has one) before the command is appended, so replay never embeds. Reads take
`branch`, `as_of` (recorded time) and `valid_at` (world time), like every other read.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request

from commands import MemoryAdd, MemoryIndex, MemoryInvalidate, MemoryMerge, MemoryUpdate
from commands.fields import Id, Namespace
from commands.limits import DEFAULT_NAMESPACE
from commands.memory import MAX_REASON_CHARS, MAX_TAGS, MemoryType
from commands.vectors import embedding_bytes
from projections.memories import MemoriesModel, MemoryFilter
from projections.memory_search import MemoryQueryError, search_with_plan
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.memory_schemas import (
    PROBLEMS,
    MemoryChange,
    MemoryCreate,
    MemoryHistoryPublic,
    MemoryIndexBody,
    MemoryList,
    MemoryMergeBody,
    MemoryPublic,
    MemorySearch,
    MemoryWritten,
    SearchResults,
    hit_public,
    memory_public,
)
from query_api.http.problems import ApiProblem
from query_api.node.memory_edge import EdgeEmbedder, EmbedderError
from query_api.node.memory_index import default_lists, sample_vectors, train_centroids

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["memories"], responses=PROBLEMS)

MemoryIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="The memory's number in its namespace")]
NamespaceQuery = Annotated[Namespace, Query(description="Namespace of the memories")]
#: Most memories one recall page returns.
RECALL_LIMIT_MAX = 1_000


def memories_model(view: View) -> MemoriesModel:
    """The memories read model of the view's state."""
    model = view.model("memories")
    if not isinstance(model, MemoriesModel):
        raise TypeError("the memories model is missing from the state")
    return model


def _embedder(request: Request) -> EdgeEmbedder | None:
    embedder: EdgeEmbedder | None = request.app.state.embedder
    return embedder


async def _embed(request: Request, text: str, query: bool = False) -> tuple[bytes, str] | None:
    """The node's embedding of `text` (a memory, or a search `query`) and its model id; None without an embedder."""
    embedder = _embedder(request)
    if embedder is None:
        return None
    try:
        vectors = await (embedder.embed_queries([text]) if query else embedder.embed([text]))
    except EmbedderError as error:
        raise ApiProblem(502, "embedder_failed", str(error)) from error
    return embedding_bytes(vectors[0]), embedder.model_id


def _model_given(embedding: bytes | None, model_id: str | None) -> None:
    if (embedding is None) != (model_id is None):
        raise ApiProblem(422, "invalid", "embedding and model_id go together: give both or neither")


def _record(view: View, tenant: str, namespace: str, memory_id: int) -> MemoryPublic:
    record = memories_model(view).get(tenant, namespace, memory_id)
    if record is None:
        raise ApiProblem(404, "not_found", f"no memory {memory_id} in namespace {namespace!r}")
    return memory_public(record, namespace)


_EMBEDDER_PROBLEM: dict[int | str, dict[str, Any]] = {
    502: PROBLEMS[503] | {"description": "The node's embedder failed"}
}


@router.post("/memories", response_model=MemoryWritten, responses=_EMBEDDER_PROBLEM)
async def add_memory(body: MemoryCreate, request: Request, node: WriterDep, caller: CallerDep) -> MemoryWritten:
    """Remember something; without `embedding` the node embeds `content` first."""
    _model_given(body.embedding, body.model_id)
    embedding, model_id = body.embedding, body.model_id
    if embedding is None:
        embedded = await _embed(request, body.content)
        if embedded is not None:
            embedding, model_id = embedded
    command = MemoryAdd(
        content=body.content,
        memory_type=body.memory_type,
        user_id=body.user_id,
        agent_id=body.agent_id,
        session_id=body.session_id,
        run_id=body.run_id,
        tags=body.tags,
        metadata=body.metadata,
        confidence=body.confidence,
        source=body.source,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        embedding=embedding,
        model_id=model_id,
        reason=body.reason,
    )
    written = await execute(
        node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id
    )
    return MemoryWritten.model_validate(written)


@router.get("/memories/{memory_id:int}", response_model=MemoryPublic)
async def get_memory(
    memory_id: MemoryIdPath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    include_embedding: bool = False,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> MemoryPublic:
    """One memory as it stands (or stood, with `as_of`), forgotten or not; 404 if absent."""
    await node.wait_token(token, wait_ms)
    record = memories_model(node).get(caller.tenant, namespace, memory_id)
    if record is None:
        raise ApiProblem(404, "not_found", f"no memory {memory_id} in namespace {namespace!r}")
    return memory_public(record, namespace, include_embedding)


@router.put("/memories/{memory_id:int}", response_model=MemoryWritten, responses=_EMBEDDER_PROBLEM)
async def update_memory(
    memory_id: MemoryIdPath, body: MemoryChange, request: Request, node: WriterDep, caller: CallerDep
) -> MemoryWritten:
    """Change a memory (recorded in its history); new content is re-embedded when the memory has a vector."""
    _model_given(body.embedding, body.model_id)
    embedding, model_id = body.embedding, body.model_id
    if body.content is not None and embedding is None:
        current = memories_model(node).get(caller.tenant, body.namespace, memory_id)
        if current is not None and current.embedding is not None and current.content != body.content:
            embedded = await _embed(request, body.content)
            if embedded is not None:
                embedding, model_id = embedded
    command = MemoryUpdate(
        id=memory_id,
        content=body.content,
        memory_type=body.memory_type,
        tags=body.tags,
        metadata=body.metadata,
        confidence=body.confidence,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        embedding=embedding,
        model_id=model_id,
        reason=body.reason,
    )
    written = await execute(
        node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id
    )
    return MemoryWritten.model_validate(written)


@router.delete("/memories/{memory_id:int}", response_model=MemoryWritten)
async def forget_memory(
    memory_id: MemoryIdPath,
    node: WriterDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    reason: Annotated[str | None, Query(max_length=MAX_REASON_CHARS)] = None,
    valid_until: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="World time it stopped (ms)")] = None,
    command_id: Annotated[Id | None, Query()] = None,
    run_id: Annotated[Id | None, Query()] = None,
) -> MemoryWritten:
    """Forget = invalidate: the memory stays, with `valid_until` set (default: now, log time) and its history."""
    command = MemoryInvalidate(id=memory_id, reason=reason, valid_until=valid_until)
    written = await execute(node, caller, command, namespace=namespace, run_id=run_id, command_id=command_id)
    return MemoryWritten.model_validate(written)


@router.post("/memories/{memory_id:int}/merge", response_model=MemoryWritten)
async def merge_memories(
    memory_id: MemoryIdPath, body: MemoryMergeBody, request: Request, node: WriterDep, caller: CallerDep
) -> MemoryWritten:
    """Fold memories `ids` into this one (tags united, content replaced if given); the sources are invalidated."""
    _model_given(body.embedding, body.model_id)
    embedding, model_id = body.embedding, body.model_id
    if body.content is not None and embedding is None:
        current = memories_model(node).get(caller.tenant, body.namespace, memory_id)
        if current is not None and current.embedding is not None:
            embedded = await _embed(request, body.content)
            if embedded is not None:
                embedding, model_id = embedded
    command = MemoryMerge(
        ids=body.ids, into=memory_id, content=body.content, embedding=embedding, model_id=model_id, reason=body.reason
    )
    written = await execute(
        node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id
    )
    return MemoryWritten.model_validate(written)


@router.get("/memories/{memory_id:int}/history", response_model=MemoryHistoryPublic)
async def memory_history(
    memory_id: MemoryIdPath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> MemoryHistoryPublic:
    """Every change of a memory, oldest first: operation, old/new content, reason, who, when; 404 if absent."""
    await node.wait_token(token, wait_ms)
    history = memories_model(node).history(caller.tenant, namespace, memory_id)
    if history is None:
        raise ApiProblem(404, "not_found", f"no memory {memory_id} in namespace {namespace!r}")
    return MemoryHistoryPublic.model_validate({"id": memory_id, "items": history})


#: What the `tags` parameter looks like: 1 to `MAX_TAGS` tags of 1 to 128 characters, comma-separated.
_TAGS_PATTERN: Final = rf"^,*[A-Za-z0-9._:@/-]{{1,128}}(?:,+[A-Za-z0-9._:@/-]{{1,128}}){{0,{MAX_TAGS - 1}}},*$"


def _tags(text: str | None) -> tuple[str, ...]:
    """The tags of a comma-separated parameter, each checked like a memory's tag."""
    if not text:
        return ()
    tags = tuple(sorted({tag for tag in text.split(",") if tag}))
    if len(tags) > MAX_TAGS or any(len(tag) > 128 for tag in tags):
        raise ApiProblem(422, "invalid", f"at most {MAX_TAGS} tags of at most 128 characters each")
    return tags


@router.get("/memories", response_model=MemoryList)
async def recall_memories(
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    user_id: Annotated[Id | None, Query()] = None,
    agent_id: Annotated[Id | None, Query()] = None,
    session_id: Annotated[Id | None, Query()] = None,
    run_id: Annotated[Id | None, Query()] = None,
    memory_type: Annotated[MemoryType | None, Query()] = None,
    tags: Annotated[
        str | None,
        Query(
            max_length=8_192,
            pattern=_TAGS_PATTERN,
            description=f"Comma-separated: all of these tags (at most {MAX_TAGS}, each at most 128 characters)",
        ),
    ] = None,
    valid_at: Annotated[int | None, Query(ge=0, le=2**63 - 1, description="World time (ms)")] = None,
    include_invalidated: bool = False,
    limit: Annotated[int, Query(ge=1, le=RECALL_LIMIT_MAX)] = 100,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="Cursor: memories numbered above this")] = 0,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> MemoryList:
    """Recall by scope, tags, kind and validity, by number; `next` continues the listing."""
    await node.wait_token(token, wait_ms)
    where = MemoryFilter(
        user_id=user_id,
        agent_id=agent_id,
        session_id=session_id,
        run_id=run_id,
        memory_type=memory_type,
        tags=_tags(tags),
        valid_at=valid_at,
        include_invalidated=include_invalidated,
    )
    records = memories_model(node).recall(caller.tenant, namespace, where, limit + 1, after)
    more = len(records) > limit
    records = records[:limit]
    return MemoryList(
        items=[memory_public(record, namespace) for record in records],
        next=records[-1].id if more and records else None,
    )


@router.post("/search", response_model=SearchResults, responses=_EMBEDDER_PROBLEM)
async def search_memories(
    body: MemorySearch,
    request: Request,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> SearchResults:
    """Vector, lexical (BM25) or hybrid (reciprocal rank fusion) search; each hit gives each leg's score and rank."""
    await node.wait_token(token, wait_ms)
    space = memories_model(node).space(caller.tenant, body.namespace)
    vector: list[float] | bytes | None = body.vector
    query_model_id = None
    if vector is None and body.mode != "lexical" and body.query:
        embedder = _embedder(request)
        if embedder is not None:
            if space is not None and space.model_id is not None and space.model_id != embedder.model_id:
                raise ApiProblem(
                    422,
                    "model_mismatch",
                    f"the namespace's memories were embedded by {space.model_id!r}; this node embeds with"
                    f" {embedder.model_id!r}: send a `vector` from that model, or search in lexical mode",
                )
            embedded = await _embed(request, body.query, query=True)
            if embedded is not None:
                vector, query_model_id = list(memoryview(embedded[0]).cast("f")), embedded[1]
    where = MemoryFilter(
        user_id=body.user_id,
        agent_id=body.agent_id,
        session_id=body.session_id,
        run_id=body.run_id,
        memory_type=body.memory_type,
        tags=tuple(body.tags),
        valid_at=body.valid_at,
        include_invalidated=body.include_invalidated,
    )
    try:
        hits, probed = search_with_plan(
            space,
            where,
            mode=body.mode,
            text=body.query,
            vector=vector,
            k=body.k,
            min_score=body.min_score,
            exact=body.exact,
            nprobe=body.nprobe,
        )
    except MemoryQueryError as error:
        raise ApiProblem(422 if error.code == "invalid" else 400, error.code, str(error)) from error
    return SearchResults(
        mode=body.mode,
        query_model_id=query_model_id,
        probed_lists=probed,
        hits=[hit_public(hit, body.namespace) for hit in hits],
    )


@router.post("/memories/index", response_model=MemoryWritten)
async def index_memories(body: MemoryIndexBody, node: WriterDep, caller: CallerDep) -> MemoryWritten:
    """Train an IVF index of the namespace's vectors here (k-means) and log its centroids (`memory.index`)."""
    space = memories_model(node).space(caller.tenant, body.namespace)
    if space is None or space.model_id is None:
        raise ApiProblem(404, "not_found", f"namespace {body.namespace!r} has no memory vectors to index")
    vectors = sample_vectors(space, body.sample)
    lists = body.lists or default_lists(len(vectors))
    if len(vectors) < lists:
        raise ApiProblem(422, "invalid", f"{len(vectors)} vectors cannot train {lists} lists")
    centroids = await asyncio.to_thread(train_centroids, vectors, lists)
    command = MemoryIndex(lists=lists, centroids=centroids.astype("<f2").tobytes(), model_id=space.model_id)
    written = await execute(
        node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id
    )
    return MemoryWritten.model_validate(written)
