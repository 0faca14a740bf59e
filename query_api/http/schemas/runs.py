"""Response models of the run, event and trace routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = [
    "EventList",
    "EventPublic",
    "RunList",
    "RunPublic",
    "TraceList",
    "TracePublic",
    "TraceTreePublic",
    "VerifyPublic",
]


class RunPublic(BaseModel):
    """A run: name, metadata, parent, status, times (log time), agent, result, event count and chain head."""

    run_id: str
    name: str | None
    metadata: dict[str, Any] | None
    parent_run_id: str | None
    status: str
    begun_at_ms: int
    ended_at_ms: int | None
    agent_id: str | None
    result: Any
    events: int
    last_hash: str


class RunList(BaseModel):
    """A page of runs in the order they began; `next_cursor` pages on."""

    items: list[RunPublic]
    next_cursor: str | None


class EventPublic(BaseModel):
    """An event of a run's hash chain."""

    run_id: str
    seq: int
    event_id: str
    type: str
    payload: Any
    thread_id: str | None
    agent_id: str | None
    tool_id: str | None
    log_time_ms: int
    prev_hash: str
    hash: str


class EventList(BaseModel):
    """A page of events by seq; `next_from_seq` pages on."""

    items: list[EventPublic]
    next_from_seq: int | None


class VerifyPublic(BaseModel):
    """The result of recomputing a run's hash chain."""

    run_id: str
    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None


class TracePublic(BaseModel):
    """A typed trace entity of a run, linked to an event and a parent trace."""

    run_id: str
    trace_id: str
    kind: str
    data: Any
    seq: int | None
    event_id: str | None
    parent_id: str | None
    agent_id: str | None
    tool_id: str | None
    log_time_ms: int
    position: int


class TraceTreePublic(TracePublic):
    """A trace with the traces recorded under it."""

    children: list[TraceTreePublic]


class TraceList(BaseModel):
    """A run's traces in log order, or (with `tree=true`) as a nested forest."""

    items: list[TraceTreePublic] | list[TracePublic]
