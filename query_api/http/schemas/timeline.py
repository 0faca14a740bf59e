"""Response models of the replay cassette and diff routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

__all__ = [
    "CassetteItem",
    "CassettePublic",
    "CutDiffPublic",
    "DiffCounts",
    "EventDiffPublic",
    "OutcomePublic",
    "RunDiffPublic",
    "StateChangePublic",
    "WriteDiffPublic",
]

_Status = Literal["changed", "only_a", "only_b"]


class OutcomePublic(BaseModel):
    """A command's recorded outcome."""

    status: Literal["applied", "rejected"]
    result: dict[str, Any]
    reason: str | None
    detail: str | None


class CassetteItem(BaseModel):
    """One recorded command: position, log time, sender, the command, its outcome, its event seq, retry mark."""

    partition: int
    offset: int
    timestamp_ms: int
    command_id: str
    type: str
    agent_id: str | None
    tool_id: str | None
    namespace: str | None
    command: dict[str, Any]
    event_seq: int | None
    outcome: OutcomePublic | None
    retry: bool


class CassettePublic(BaseModel):
    """A run's recorded commands in order, up to `cut`."""

    run_id: str
    items: list[CassetteItem]
    truncated: bool
    cut: str


class EventDiffPublic(BaseModel):
    """Events of one seq that differ (fields named), or an event only one run has."""

    seq: int
    status: _Status
    fields: list[str]
    a: dict[str, Any] | None
    b: dict[str, Any] | None


class WriteDiffPublic(BaseModel):
    """A record the two runs left different."""

    kind: str
    namespace: str
    key: str
    status: _Status
    a: dict[str, Any] | None
    b: dict[str, Any] | None


class RunDiffPublic(BaseModel):
    """Two runs aligned by seq: first divergence, differing events and writes."""

    run_a: str
    run_b: str
    branch_a: str
    branch_b: str
    identical: bool
    events_a: int
    events_b: int
    common_prefix: int
    first_divergence: EventDiffPublic | None
    events: list[EventDiffPublic]
    writes: list[WriteDiffPublic]
    truncated: bool


class DiffCounts(BaseModel):
    """How many changes of each status."""

    added: int
    changed: int
    removed: int


class StateChangePublic(BaseModel):
    """A kv record, state record or vector added, changed or removed between two cuts."""

    kind: Literal["record", "state", "vector"]
    tenant: str
    namespace: str
    key: str
    status: Literal["added", "changed", "removed"]
    fields: list[str]
    a: dict[str, Any] | None
    b: dict[str, Any] | None


class CutDiffPublic(BaseModel):
    """The state at two cuts compared."""

    cut_a: str
    cut_b: str
    branch_a: str
    branch_b: str
    counts: DiffCounts
    changes: list[StateChangePublic]
    truncated: bool
