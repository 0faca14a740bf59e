"""KV records: put, get, delete, list, batch get/put, query, clear, namespaces (seed 002's data_store)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from commands import KvBatchPut, KvClear, KvDelete, KvItem, KvPut, NamespaceConfig
from commands.fields import Key, Namespace, NonNegative, TtlSeconds
from commands.limits import MAX_BATCH_COMMANDS
from projections.query_dsl import Query as RecordQuery
from projections.query_dsl import QueryError
from query_api.http.bodies import WriteOptions
from query_api.http.deps import CallerDep, TokenQuery, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem
from query_api.http.responses import json_response
from query_api.http.schemas.records import NamespaceList, QueryPage, RecordBatch, RecordList, RecordPublic
from query_api.http.schemas.writes import WriteAccepted

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["kv"])

NamespacePath = Annotated[Namespace, Path(description="Namespace, e.g. `default` or `cache:api`")]
KeyPath = Annotated[Key, Path(description="Key (may contain `/`)")]
#: Most keys one list call returns.
LIST_LIMIT_MAX = 1_000


class RecordPut(WriteOptions):
    """Body of `PUT /v1/kv/{namespace}/{key}`."""

    value: Any = Field(..., description="Any JSON value")
    metadata: dict[str, Any] | None = None
    ttl_s: TtlSeconds | None = Field(None, description="Expire this many seconds after the write (log time)")
    if_version: NonNegative | None = Field(None, description="Apply only if the current version is this (0: absent)")


class BatchGet(BaseModel):
    """Body of `POST /v1/kv/{namespace}/batch-get`."""

    model_config = ConfigDict(extra="forbid")
    keys: list[str] = Field(..., min_length=1, max_length=MAX_BATCH_COMMANDS)


class BatchPut(WriteOptions):
    """Body of `POST /v1/kv/{namespace}/batch-put`: all items apply, or none."""

    items: list[KvItem] = Field(..., min_length=1, max_length=MAX_BATCH_COMMANDS)


class NamespacePut(WriteOptions):
    """Body of `PUT /v1/namespaces/{namespace}`: replaces the namespace's configuration."""

    json_schema: dict[str, Any] | None = None
    default_ttl_s: TtlSeconds | None = None


@router.put("/kv/{namespace}/{key:path}", response_model=WriteAccepted)
async def put_record(
    namespace: NamespacePath, key: KeyPath, body: RecordPut, node: WriterDep, caller: CallerDep
) -> Response:
    """Write a value; answers once applied with its version, position and consistency token."""
    command = KvPut(key=key, value=body.value, metadata=body.metadata, ttl_s=body.ttl_s, if_version=body.if_version)
    return json_response(
        await execute(node, caller, command, namespace=namespace, run_id=body.run_id, command_id=body.command_id)
    )


@router.get("/kv/{namespace}/{key:path}", response_model=RecordPublic)
async def get_record(
    namespace: NamespacePath,
    key: KeyPath,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Read a value (hidden once expired by this node's clock); 404 if absent."""
    await node.wait_token(token, wait_ms)
    view = node.records.get(caller.tenant, namespace, key, node.now_ms())
    if view is None:
        raise ApiProblem(404, "not_found", f"no key {key!r} in namespace {namespace!r}")
    return json_response(view)


@router.delete("/kv/{namespace}/{key:path}", response_model=WriteAccepted)
async def delete_record(
    namespace: NamespacePath,
    key: KeyPath,
    node: WriterDep,
    caller: CallerDep,
    if_version: Annotated[int | None, Query(ge=0)] = None,
    command_id: Annotated[str | None, Query()] = None,
    run_id: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete a key (optionally only at `if_version`)."""
    command = KvDelete(key=key, if_version=if_version)
    written = await execute(node, caller, command, namespace=namespace, run_id=run_id, command_id=command_id)
    return json_response(written)


@router.get("/kv/{namespace}", response_model=RecordList)
async def list_records(
    namespace: NamespacePath,
    node: ViewDep,
    caller: CallerDep,
    prefix: str = "",
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Keys of a namespace in sorted order, from after `cursor`, with values."""
    await node.wait_token(token, wait_ms)
    views, next_cursor = node.records.list_keys(caller.tenant, namespace, prefix, cursor, limit, node.now_ms())
    return json_response({"items": views, "next_cursor": next_cursor})


@router.delete("/kv/{namespace}", response_model=WriteAccepted)
async def clear_namespace(
    namespace: NamespacePath,
    node: WriterDep,
    caller: CallerDep,
    command_id: Annotated[str | None, Query()] = None,
    run_id: Annotated[str | None, Query()] = None,
) -> Response:
    """Delete every key of a namespace."""
    return json_response(
        await execute(node, caller, KvClear(), namespace=namespace, run_id=run_id, command_id=command_id)
    )


@router.post("/kv/{namespace}/batch-get", response_model=RecordBatch)
async def batch_get(
    namespace: NamespacePath,
    body: BatchGet,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Several keys at once; absent keys map to null."""
    await node.wait_token(token, wait_ms)
    now_ms = node.now_ms()
    found = {key: node.records.get(caller.tenant, namespace, key, now_ms) for key in body.keys}
    return json_response({"items": found})


@router.post("/kv/{namespace}/batch-put", response_model=WriteAccepted)
async def batch_put(namespace: NamespacePath, body: BatchPut, node: WriterDep, caller: CallerDep) -> Response:
    """Write several keys atomically: every item applies, or none does."""
    command = KvBatchPut(items=body.items)
    return json_response(
        await execute(node, caller, command, namespace=namespace, run_id=body.run_id, command_id=body.command_id)
    )


@router.post("/kv/{namespace}/query", response_model=QueryPage)
async def query_records(
    namespace: NamespacePath,
    body: RecordQuery,
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Filter, project, sort and page the records of a namespace."""
    await node.wait_token(token, wait_ms)
    try:
        result: dict[str, Any] = node.records.query(caller.tenant, namespace, body, node.now_ms())
    except QueryError as error:
        raise ApiProblem(400, "bad_query", str(error)) from error
    return json_response(result)


@router.get("/namespaces", response_model=NamespaceList)
async def list_namespaces(
    node: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> Response:
    """The caller's namespaces with their key counts."""
    await node.wait_token(token, wait_ms)
    return json_response(
        {
            "namespaces": [
                {"namespace": ns, "keys": count} for ns, count in node.records.namespaces(caller.tenant, node.now_ms())
            ]
        }
    )


@router.put("/namespaces/{namespace}", response_model=WriteAccepted)
async def configure_namespace(
    namespace: NamespacePath, body: NamespacePut, node: WriterDep, caller: CallerDep, response: Response
) -> Response:
    """Set a namespace's JSON Schema and default TTL."""
    command = NamespaceConfig(json_schema=body.json_schema, default_ttl_s=body.default_ttl_s)
    return json_response(
        await execute(node, caller, command, namespace=namespace, run_id=body.run_id, command_id=body.command_id)
    )
