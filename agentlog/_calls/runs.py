"""The builders of runs, their hash-chained events and their traces (`/v1/runs`)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from agentlog._calls.call import Call, none, options, read_call, segment, write_call
from agentlog.models import ChainCheck, Event, EventPage, Page, Run, RunStatus, Trace, TraceNode, WriteResult, from_json

__all__ = [
    "append_event",
    "begin_run",
    "end_run",
    "events",
    "get_run",
    "list_runs",
    "record_trace",
    "trace_tree",
    "traces",
    "verify_run",
]


def _runs_page(data: Any) -> Page[Run]:
    return Page([from_json(Run, item) for item in data["items"]], data.get("next_cursor"))


def _events_page(data: Any) -> EventPage:
    return EventPage([from_json(Event, item) for item in data["items"]], data.get("next_from_seq"))


def _traces(data: Any) -> list[Trace]:
    return [from_json(Trace, item) for item in data["items"]]


def _trace_tree(data: Any) -> list[TraceNode]:
    return [TraceNode.from_json(item) for item in data["items"]]


def begin_run(
    run_id: str | None = None,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Begin a run (named by the command id unless `run_id` is given); result has `run_id`."""
    body = options(
        run_id=run_id,
        name=name,
        metadata=None if metadata is None else dict(metadata),
        parent_run_id=parent_run_id,
        command_id=command_id,
    )
    return write_call("POST", "/v1/runs", body, branch=branch)


def end_run(
    run_id: str,
    status: RunStatus = "succeeded",
    *,
    result: Any = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """End a running run with `status` (succeeded, failed, cancelled) and an optional JSON result."""
    body = {"status": status, "result": result, **options(command_id=command_id)}
    return write_call("POST", f"/v1/runs/{segment(run_id)}/end", body, branch=branch)


def get_run(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Run | None]:
    """Run `run_id` (status, metadata, event count, chain head), or None if absent."""
    parse = partial(from_json, Run)
    return read_call(f"/v1/runs/{segment(run_id)}", parse, token, consistent, missing=none, branch=branch, as_of=as_of)


def list_runs(
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Page[Run]]:
    """One page of the caller's runs in the order they began, optionally of one status."""
    return read_call(
        "/v1/runs", _runs_page, token, consistent, status=status, cursor=cursor, limit=limit, branch=branch, as_of=as_of
    )


def append_event(
    run_id: str,
    type: str,
    payload: Any = None,
    *,
    thread_id: str | None = None,
    expected_seq: int | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Append an event to the run's hash chain; result has `seq`, `event_id` and `hash`."""
    body = {"type": type, "payload": payload}
    body |= options(thread_id=thread_id, expected_seq=expected_seq, command_id=command_id)
    return write_call("POST", f"/v1/runs/{segment(run_id)}/events", body, branch=branch)


def events(
    run_id: str,
    *,
    from_seq: int = 1,
    limit: int = 100,
    thread_id: str | None = None,
    agent_id: str | None = None,
    type: str | None = None,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[EventPage]:
    """One page of the run's events from `from_seq`, optionally of one thread, agent or type."""
    return read_call(
        f"/v1/runs/{segment(run_id)}/events",
        _events_page,
        token,
        consistent,
        from_seq=from_seq,
        limit=limit,
        thread_id=thread_id,
        agent_id=agent_id,
        type=type,
        branch=branch,
        as_of=as_of,
    )


def verify_run(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[ChainCheck]:
    """Recompute the run's hash chain: ok, or the first event that does not match and why."""
    parse = partial(from_json, ChainCheck)
    return read_call(f"/v1/runs/{segment(run_id)}/verify", parse, token, consistent, branch=branch, as_of=as_of)


def record_trace(
    run_id: str,
    kind: str,
    data: Any = None,
    *,
    trace_id: str | None = None,
    parent_id: str | None = None,
    event_id: str | None = None,
    seq: int | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Record a typed trace (`tool_call`, `decision`, ...) of the run; result has `trace_id`."""
    body = {"kind": kind, "data": data}
    body |= options(trace_id=trace_id, parent_id=parent_id, event_id=event_id, seq=seq, command_id=command_id)
    return write_call("POST", f"/v1/runs/{segment(run_id)}/traces", body, branch=branch)


def traces(
    run_id: str,
    *,
    kind: str | None = None,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[Trace]]:
    """The run's traces in log order, optionally of one kind."""
    return read_call(
        f"/v1/runs/{segment(run_id)}/traces", _traces, token, consistent, kind=kind, branch=branch, as_of=as_of
    )


def trace_tree(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[TraceNode]]:
    """The run's traces as a forest: roots in log order, children nested under their parents."""
    return read_call(
        f"/v1/runs/{segment(run_id)}/traces", _trace_tree, token, consistent, tree=True, branch=branch, as_of=as_of
    )
