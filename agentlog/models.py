"""What the SDK answers: frozen dataclasses parsed from the node's JSON (unknown fields are ignored)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "Branch",
    "ChainCheck",
    "Collection",
    "Event",
    "EventPage",
    "Fork",
    "HybridSearchHit",
    "Lock",
    "Metric",
    "Page",
    "Position",
    "Record",
    "Run",
    "RunStatus",
    "SearchHit",
    "StateRecord",
    "StoredVector",
    "Trace",
    "TraceNode",
    "WriteResult",
    "from_json",
]

T = TypeVar("T")
D = TypeVar("D")

#: How a run can end.
RunStatus = Literal["succeeded", "failed", "cancelled"]
#: How a vector collection compares vectors.
Metric = Literal["cosine", "dot", "euclidean"]


def from_json(cls: type[D], data: Any) -> D:
    """An instance of dataclass `cls` from a JSON object: unknown members ignored, missing ones defaulted."""
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: value for name, value in data.items() if name in names})


@dataclass(frozen=True, slots=True)
class Position:
    """Where a command sits in the log."""

    partition: int
    offset: int


@dataclass(frozen=True, slots=True)
class WriteResult:
    """A write's answer: its command id, outcome, the projection's result, its log position and token."""

    command_id: str
    outcome: str
    result: dict[str, Any]
    position: Position
    token: str
    timestamp_ms: int | None = None

    @classmethod
    def from_json(cls, data: Any) -> WriteResult:
        """Parse a write response body."""
        position = data.get("position") or {}
        return cls(
            command_id=data["command_id"],
            outcome=data["outcome"],
            result=data.get("result") or {},
            position=Position(int(position.get("partition", 0)), int(position.get("offset", 0))),
            token=data["token"],
            timestamp_ms=data.get("timestamp_ms"),
        )

    @property
    def version(self) -> int | None:
        """The version the write produced (kv put, state cas), when it reports one."""
        value = self.result.get("version")
        return value if isinstance(value, int) else None


@dataclass(frozen=True, slots=True)
class Record:
    """A KV record as read."""

    key: str
    value: Any
    version: int
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at_ms: int | None = None
    updated_at_ms: int | None = None
    created_by: str | None = None
    updated_by: str | None = None
    expires_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass `next_cursor` back for the next page (None: this was the last)."""

    items: list[T]
    next_cursor: str | None = None


@dataclass(frozen=True, slots=True)
class StateRecord:
    """A versioned state record as read."""

    name: str
    value: Any
    version: int
    namespace: str = "default"
    created_at_ms: int | None = None
    updated_at_ms: int | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class Lock:
    """A lock as read: holder, fencing token, lease end and whether it is held now."""

    name: str
    fencing_token: int
    holder: str | None = None
    expires_at_ms: int | None = None
    held: bool = False
    namespace: str = "default"


@dataclass(frozen=True, slots=True)
class Run:
    """A run: identity, lifecycle, provenance and the head of its event chain."""

    run_id: str
    status: str
    name: str | None = None
    metadata: dict[str, Any] | None = None
    parent_run_id: str | None = None
    begun_at_ms: int | None = None
    ended_at_ms: int | None = None
    agent_id: str | None = None
    result: Any = None
    events: int = 0
    last_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a run's hash chain."""

    run_id: str
    seq: int
    event_id: str
    type: str
    payload: Any = None
    thread_id: str | None = None
    agent_id: str | None = None
    tool_id: str | None = None
    log_time_ms: int | None = None
    prev_hash: str | None = None
    hash: str | None = None


@dataclass(frozen=True, slots=True)
class EventPage:
    """One page of a run's events; pass `next_from_seq` back as `from_seq` (None: this was the last)."""

    items: list[Event]
    next_from_seq: int | None = None


@dataclass(frozen=True, slots=True)
class ChainCheck:
    """The result of recomputing a run's event chain: `first_bad_seq` is the first event that fails."""

    ok: bool
    events: int = 0
    first_bad_seq: int | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Trace:
    """A typed trace entity of a run."""

    run_id: str
    trace_id: str
    kind: str
    data: Any = None
    seq: int | None = None
    event_id: str | None = None
    parent_id: str | None = None
    agent_id: str | None = None
    tool_id: str | None = None
    log_time_ms: int | None = None
    position: int | None = None


@dataclass(frozen=True, slots=True)
class TraceNode:
    """A trace with its children, in log order."""

    trace: Trace
    children: list[TraceNode]

    @classmethod
    def from_json(cls, data: Any) -> TraceNode:
        """Parse one node of `GET /v1/runs/{run_id}/traces?tree=true` (its `children` nested; no recursion)."""
        root = cls(from_json(Trace, data), [])
        stack: list[tuple[TraceNode, Any]] = [(root, data)]
        while stack:
            node, raw = stack.pop()
            for child_raw in raw.get("children") or ():
                child = cls(from_json(Trace, child_raw), [])
                node.children.append(child)
                stack.append((child, child_raw))
        return root


@dataclass(frozen=True, slots=True)
class Collection:
    """A vector collection: configuration, size and memory."""

    name: str
    dimension: int
    metric: str = "cosine"
    count: int = 0
    capacity: int | None = None
    matrix_bytes: int | None = None
    bytes_used: int | None = None
    bytes_per_vector: float | None = None


@dataclass(frozen=True, slots=True)
class StoredVector:
    """A stored vector: its embedding (float32 values, bit-exact as written) and metadata."""

    id: str
    embedding: list[float]
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One vector search result: id, score (higher is better; -distance for euclidean), metadata, vector."""

    id: str
    score: float
    metadata: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(frozen=True, slots=True)
class HybridSearchHit:
    """One hybrid search result: id, fused score, metadata, each leg's raw score and rank (None: not ranked)."""

    id: str
    score: float
    vector_score: float
    lexical_score: float
    vector_rank: int | None = None
    lexical_rank: int | None = None
    metadata: dict[str, Any] | None = None
    vector: list[float] | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    """A branch: its topic, parent branch and fork cut (None for main), and its applied cut if the node runs it."""

    name: str
    topic: str
    parent: str | None = None
    fork_cut: list[int] | None = None
    fork_token: str | None = None
    partitions: int | None = None
    started: bool = False
    applied: str | None = None


@dataclass(frozen=True, slots=True)
class Fork:
    """A forked run: the new branch, where it forked (the cut just after event `at_seq`), and a run begun there."""

    branch: str
    run_id: str
    at_seq: int
    fork_cut: list[int]
    fork_token: str
    new_run_id: str | None = None
    begin: dict[str, Any] | None = None
