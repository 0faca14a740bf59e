"""Runs: begin and end them, append to and read their hash-chained events, verify, record traces."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from commands import DEFAULT_RUN_ID, EventAppend, RunBegin, RunEnd, TraceRecord, new_id
from commands.fields import Id, JsonData, Key, Metadata, NonNegative, Positive
from commands.runs import RunStatus, TraceKind
from projections.runs import RunsModel
from projections.traces import TraceNode, TracesModel
from query_api.http.bodies import CommandOptions
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem
from query_api.http.responses import json_response
from query_api.http.schemas.runs import EventList, RunList, RunPublic, TraceList, TracePublic, VerifyPublic
from query_api.http.schemas.writes import WriteAccepted

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["runs"])

RunPath = Annotated[Id, Path(description="Run id")]
#: Most runs or events one list call returns.
LIST_LIMIT_MAX = 1_000


class RunStart(CommandOptions):
    """Body of `POST /v1/runs`; without `run_id` the run is named by the command id (so retries stay one run)."""

    run_id: Id | None = None
    name: Key | None = None
    metadata: Metadata | None = None
    parent_run_id: Id | None = None


class RunFinish(CommandOptions):
    """Body of `POST /v1/runs/{run_id}/end`."""

    status: RunStatus
    result: JsonData = None


class EventPost(CommandOptions):
    """Body of `POST /v1/runs/{run_id}/events`."""

    type: Id = Field(..., description="Event type, e.g. `tool_result`")
    payload: JsonData = None
    thread_id: Id | None = None
    expected_seq: NonNegative | None = Field(
        None, description="Seq of the run's last event as the writer saw it (0: none); 409 if it moved on"
    )


class TracePost(CommandOptions):
    """Body of `POST /v1/runs/{run_id}/traces`; without `trace_id` the trace is named by the command id."""

    trace_id: Id | None = None
    kind: TraceKind
    data: JsonData = None
    parent_id: Id | None = Field(None, description="A trace of the same run recorded earlier")
    event_id: Id | None = Field(None, description="The event this trace explains")
    seq: Positive | None = Field(None, description="The seq of the event this trace explains")


def runs_model(node: View) -> RunsModel:
    """The node's runs read model."""
    model = node.state.model("runs")
    assert isinstance(model, RunsModel)
    return model


def traces_model(node: View) -> TracesModel:
    """The node's traces read model."""
    model = node.state.model("traces")
    assert isinstance(model, TracesModel)
    return model


def require_run(node: View, tenant: str, run_id: str) -> None:
    """404 unless the run exists (the default run always does)."""
    if run_id != DEFAULT_RUN_ID and runs_model(node).get_run(tenant, run_id) is None:
        raise ApiProblem(404, "not_found", f"no run {run_id!r}")


def tree_public(roots: list[TraceNode]) -> list[dict[str, Any]]:
    """The JSON form of a trace forest: each trace with its `children`, built without recursion."""
    forest: list[dict[str, Any]] = []
    stack: list[tuple[TraceNode, list[dict[str, Any]]]] = [(root, forest) for root in reversed(roots)]
    while stack:
        node, siblings = stack.pop()
        item = {**dataclasses.asdict(node.trace), "children": []}
        siblings.append(item)
        stack.extend((child, item["children"]) for child in reversed(node.children))
    return forest


@router.post("/runs", response_model=WriteAccepted, status_code=201)
async def begin_run(body: RunStart, node: WriterDep, caller: CallerDep) -> Response:
    """Begin a run; answers 201 with its `run_id` in the result, 409 if it already exists."""
    command_id = body.command_id or new_id()
    command = RunBegin(name=body.name, metadata=body.metadata, parent_run_id=body.parent_run_id)
    return json_response(
        await execute(node, caller, command, run_id=body.run_id or command_id, command_id=command_id), status_code=201
    )


@router.post("/runs/{run_id}/end", response_model=WriteAccepted)
async def end_run(run_id: RunPath, body: RunFinish, node: WriterDep, caller: CallerDep) -> Response:
    """End a running run with a status and an optional result; 409 `run_closed` if it already ended."""
    command = RunEnd(status=body.status, result=body.result)
    return json_response(await execute(node, caller, command, run_id=run_id, command_id=body.command_id))


@router.get("/runs", response_model=RunList)
async def list_runs(
    node: ViewDep,
    caller: CallerDep,
    status: Literal["running", "succeeded", "failed", "cancelled"] | None = None,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The caller's runs in the order they began, optionally of one status, a page at a time."""
    await node.wait_token(token, wait_ms)
    try:
        views = runs_model(node).list_runs(caller.tenant, status, cursor, limit)
    except ValueError as error:
        raise ApiProblem(400, "bad_cursor", str(error)) from error
    next_cursor = views[-1].run_id if len(views) == limit else None
    return json_response({"items": [dataclasses.asdict(v) for v in views], "next_cursor": next_cursor})


@router.get("/runs/{run_id}", response_model=RunPublic)
async def get_run(
    run_id: RunPath, node: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> Response:
    """A run: status, metadata, event count and chain head; 404 if absent."""
    await node.wait_token(token, wait_ms)
    view = runs_model(node).get_run(caller.tenant, run_id)
    if view is None:
        raise ApiProblem(404, "not_found", f"no run {run_id!r}")
    return json_response(dataclasses.asdict(view))


@router.post("/runs/{run_id}/events", response_model=WriteAccepted)
async def append_event(run_id: RunPath, body: EventPost, node: WriterDep, caller: CallerDep) -> Response:
    """Append an event to the run's chain; the result carries its `seq` and `hash`."""
    command = EventAppend(
        event_type=body.type, payload=body.payload, thread_id=body.thread_id, expected_seq=body.expected_seq
    )
    return json_response(await execute(node, caller, command, run_id=run_id, command_id=body.command_id))


@router.get("/runs/{run_id}/events", response_model=EventList)
async def list_events(
    run_id: RunPath,
    node: ViewDep,
    caller: CallerDep,
    from_seq: Annotated[int, Query(ge=1)] = 1,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    thread_id: str | None = None,
    agent_id: str | None = None,
    event_type: Annotated[str | None, Query(alias="type")] = None,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The run's events from `from_seq`, optionally of one thread, agent or type; `next_from_seq` pages on."""
    await node.wait_token(token, wait_ms)
    require_run(node, caller.tenant, run_id)
    views = runs_model(node).events(caller.tenant, run_id, from_seq, limit, thread_id, agent_id, event_type)
    next_from_seq = views[-1].seq + 1 if len(views) == limit else None
    return json_response({"items": [dataclasses.asdict(v) for v in views], "next_from_seq": next_from_seq})


@router.get("/runs/{run_id}/verify", response_model=VerifyPublic)
async def verify_run(
    run_id: RunPath, node: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> Response:
    """Recompute the run's hash chain; `ok`, or the first event that does not match and why."""
    await node.wait_token(token, wait_ms)
    require_run(node, caller.tenant, run_id)
    result = runs_model(node).verify(caller.tenant, run_id)
    return json_response({"run_id": run_id, **dataclasses.asdict(result)})


@router.post("/runs/{run_id}/traces", response_model=WriteAccepted)
async def record_trace(run_id: RunPath, body: TracePost, node: WriterDep, caller: CallerDep) -> Response:
    """Record a typed trace entity of the run, linked to an event and a parent trace."""
    command_id = body.command_id or new_id()
    command = TraceRecord(
        trace_id=body.trace_id or command_id,
        kind=body.kind,
        data=body.data,
        event_id=body.event_id,
        seq=body.seq,
        parent_id=body.parent_id,
    )
    return json_response(await execute(node, caller, command, run_id=run_id, command_id=command_id))


@router.get("/runs/{run_id}/traces", response_model=TraceList)
async def list_traces(
    run_id: RunPath,
    node: ViewDep,
    caller: CallerDep,
    kind: TraceKind | None = None,
    tree: Annotated[bool, Query(description="Nest traces under their parents (ignores `kind`)")] = False,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The run's traces in log order, optionally of one kind, or with `tree=true` as a nested forest."""
    await node.wait_token(token, wait_ms)
    require_run(node, caller.tenant, run_id)
    traces = traces_model(node)
    if tree:
        return json_response({"items": tree_public(traces.tree(caller.tenant, run_id))})
    return json_response({"items": [dataclasses.asdict(v) for v in traces.list(caller.tenant, run_id, kind)]})


@router.get("/runs/{run_id}/traces/{trace_id}", response_model=TracePublic)
async def get_trace(
    run_id: RunPath,
    trace_id: Annotated[Id, Path(description="Trace id")],
    node: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """One trace of the run; 404 if absent."""
    await node.wait_token(token, wait_ms)
    view = traces_model(node).get(caller.tenant, run_id, trace_id)
    if view is None:
        raise ApiProblem(404, "not_found", f"no trace {trace_id!r} in run {run_id!r}")
    return json_response(dataclasses.asdict(view))
