"""Run commands: begin and end a run, append an event to its chain, record a trace entity.

All are run-scoped: the run is the envelope's `run_id` (routed by `tenant/run_id`), never repeated
here. Event sequence numbers count from 1 per run; `expected_seq` is the seq of the run's last event
as the writer saw it (0 = no events yet), so the append is optimistic like a CAS.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from commands.fields import Id, JsonData, Key, Metadata, NonNegative, Positive, Scope, ScopedCommand

__all__ = ["RUN_STATUSES", "TRACE_KINDS", "EventAppend", "RunBegin", "RunEnd", "RunStatus", "TraceKind", "TraceRecord"]

#: How a run ended.
RunStatus = Literal["succeeded", "failed", "cancelled"]
#: The typed trace entities of seed 001.
TraceKind = Literal["tool_call", "model_input", "model_output", "citation", "decision", "confidence", "assumption"]
#: Every `RunStatus`, sorted.
RUN_STATUSES: tuple[str, ...] = ("cancelled", "failed", "succeeded")
#: Every `TraceKind`, sorted.
TRACE_KINDS: tuple[str, ...] = (
    "assumption",
    "citation",
    "confidence",
    "decision",
    "model_input",
    "model_output",
    "tool_call",
)


class RunBegin(ScopedCommand):
    """`run.begin`: open the envelope's run, optionally named, with metadata and a parent run."""

    scope: ClassVar[Scope] = "run"

    type: Literal["run.begin"] = "run.begin"
    name: Key | None = None
    metadata: Metadata | None = None
    parent_run_id: Id | None = None


class RunEnd(ScopedCommand):
    """`run.end`: close the envelope's run with a status and an optional JSON result."""

    scope: ClassVar[Scope] = "run"

    type: Literal["run.end"] = "run.end"
    status: RunStatus
    result: JsonData = None


class EventAppend(ScopedCommand):
    """`event.append`: add an event of `event_type` to the run's chain (optionally a thread's)."""

    scope: ClassVar[Scope] = "run"

    type: Literal["event.append"] = "event.append"
    event_type: Id
    payload: JsonData = None
    thread_id: Id | None = None
    expected_seq: NonNegative | None = None


class TraceRecord(ScopedCommand):
    """`trace.record`: a typed trace entity of the run, linked to an event and to a parent trace."""

    scope: ClassVar[Scope] = "run"

    type: Literal["trace.record"] = "trace.record"
    trace_id: Id
    kind: TraceKind
    data: JsonData = None
    event_id: Id | None = None
    seq: Positive | None = None
    parent_id: Id | None = None
