"""Typed trace entities of a run, linked to its events and to each other as a tree (seed 001's trace store).

A trace is `(tenant, run_id, trace_id)` → kind (`tool_call`, `model_input`, `model_output`,
`citation`, `decision`, `confidence`, `assumption`), JSON data, the event it explains (`seq` and/or
`event_id`), an optional parent trace, the writer (agent, tool) and log time. Decisions:

- `trace_id` is unique per run (`already_exists`); a parent must already exist in the same run
  (`not_found`), so parents always precede their children in log order and the links form a forest.
- Given the `RunsModel` (constructor or `bind`), traces follow the runs' rules: the run must exist
  (`not_found`; the default run always does) and be running (`run_closed`), and a linked event must
  exist (`not_found`); when both `seq` and `event_id` are given they must name the same event
  (`invalid`). Either given alone, the other is filled in. Runs and traces route by `tenant/run_id`,
  so both models see a run's commands in the same partition order and the checks are deterministic.
- The runs model is referenced, not owned: pickled together with it (one `pickle.dumps` of the
  engine state, as snapshots do) the reference is shared again on load; pickled alone, this model
  carries a copy. Without a runs model (or after `bind(None)`), run and event links go unchecked.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from commands.wire import TraceRecord
from projections.model import ApplyContext, ReadModel, chunked
from projections.outcome import Rejected
from projections.runs import RunsModel

__all__ = ["TraceNode", "TraceView", "TracesModel"]

_RunKey = tuple[str, str]


def _canonical(value: Any) -> bytes:
    """`commands.canonical_json` without its NaN/Infinity scan: the same bytes for validated command values."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class TraceView:
    """One trace entity as read; `position` is its place (from 1) in the run's trace log order."""

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


@dataclass(frozen=True, slots=True)
class TraceNode:
    """A trace with its children, in log order."""

    trace: TraceView
    children: tuple[TraceNode, ...]


class _RunTraces:
    """A run's traces: rows in log order, and trace_id → index into them."""

    __slots__ = ("index", "rows")

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def __getstate__(self) -> tuple[list[dict[str, Any]], dict[str, int]]:
        return (self.rows, self.index)

    def __setstate__(self, state: tuple[list[dict[str, Any]], dict[str, int]]) -> None:
        self.rows, self.index = state


class TracesModel(ReadModel):
    """Trace entities per `(tenant, run_id)`, forming a tree through parent links."""

    name: ClassVar[str] = "traces"
    command_types: ClassVar[frozenset[str]] = frozenset(("trace.record",))

    def __init__(self, runs: RunsModel | None = None) -> None:
        self._traces: dict[_RunKey, _RunTraces] = {}
        self._runs_model = runs

    def bind(self, runs: RunsModel | None) -> None:
        """Check run and event links against `runs` from now on (None: leave them unchecked)."""
        self._runs_model = runs

    def snapshot_state(self) -> Iterator[Any]:
        """Per run: `[tenant, run_id, rows]` in log order, chunked (the index is rebuilt on load)."""
        for (tenant, run_id), traces in self._traces.items():
            for rows in chunked(traces.rows):
                yield [tenant, run_id, rows]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Rebuild the traces and their index from `snapshot_state` pieces."""
        for tenant, run_id, rows in pieces:
            traces = self._traces.get((tenant, run_id))
            if traces is None:
                traces = self._traces[(tenant, run_id)] = _RunTraces()
            for row in rows:
                traces.index[row["trace_id"]] = len(traces.rows)
                traces.rows.append(row)

    # -- apply -------------------------------------------------------------------------------------

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a `trace.record`; raise `Rejected` having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        if not isinstance(command, TraceRecord):
            raise Rejected("invalid", f"{envelope.type} is not a trace command")
        key = (envelope.tenant, envelope.run_id)
        traces = self._traces.get(key)
        if traces is not None and command.trace_id in traces.index:
            raise Rejected("already_exists", f"trace {command.trace_id!r} already exists in run {envelope.run_id!r}")
        if command.parent_id is not None and (traces is None or command.parent_id not in traces.index):
            raise Rejected("not_found", f"no parent trace {command.parent_id!r} in run {envelope.run_id!r}")
        seq, event_id = self._link(envelope.tenant, envelope.run_id, command)
        if traces is None:
            traces = self._traces[key] = _RunTraces()
        traces.index[command.trace_id] = len(traces.rows)
        traces.rows.append(
            {
                "trace_id": command.trace_id,
                "kind": command.kind,
                "data": command.data,
                "seq": seq,
                "event_id": event_id,
                "parent_id": command.parent_id,
                "agent_id": envelope.agent_id,
                "tool_id": envelope.tool_id,
                "log_time_ms": context.log_time_ms,
            }
        )
        return {"run_id": envelope.run_id, "trace_id": command.trace_id, "position": len(traces.rows)}

    def _link(self, tenant: str, run_id: str, command: TraceRecord) -> tuple[int | None, str | None]:
        """The `(seq, event_id)` the trace links to, checked against the runs model when bound."""
        runs = self._runs_model
        if runs is None:
            return command.seq, command.event_id
        runs.check_open(tenant, run_id)
        seq, event_id = command.seq, command.event_id
        if event_id is not None:
            found = runs.event_seq(tenant, run_id, event_id)
            if found is None:
                raise Rejected("not_found", f"no event {event_id!r} in run {run_id!r}")
            if seq is not None and seq != found:
                raise Rejected("invalid", f"event {event_id!r} is seq {found}, not {seq}")
            return found, event_id
        if seq is not None:
            event_id = runs.event_id_at(tenant, run_id, seq)
            if event_id is None:
                raise Rejected("not_found", f"no event {seq} in run {run_id!r}")
            return seq, event_id
        return None, None

    # -- reads -------------------------------------------------------------------------------------

    def get(self, tenant: str, run_id: str, trace_id: str) -> TraceView | None:
        """Trace `trace_id` of the run, or None."""
        traces = self._traces.get((tenant, run_id))
        if traces is None or trace_id not in traces.index:
            return None
        position = traces.index[trace_id]
        return _view(run_id, traces.rows[position], position)

    def list(self, tenant: str, run_id: str, kind: str | None = None) -> builtins.list[TraceView]:
        """The run's traces in log order, optionally only those of `kind`."""
        traces = self._traces.get((tenant, run_id))
        if traces is None:
            return []
        return [
            _view(run_id, row, position)
            for position, row in enumerate(traces.rows)
            if kind is None or row["kind"] == kind
        ]

    def tree(self, tenant: str, run_id: str) -> builtins.list[TraceNode]:
        """The run's traces as a forest: roots in log order, each node's children in log order."""
        traces = self._traces.get((tenant, run_id))
        if traces is None:
            return []
        children: dict[str, builtins.list[TraceNode]] = {}
        roots: builtins.list[TraceNode] = []
        # Children always follow their parent in log order, so walking backwards builds leaves first.
        for position in range(len(traces.rows) - 1, -1, -1):
            row = traces.rows[position]
            node = TraceNode(_view(run_id, row, position), tuple(reversed(children.pop(row["trace_id"], []))))
            parent = row["parent_id"]
            (roots if parent is None else children.setdefault(parent, [])).append(node)
        roots.reverse()
        return roots

    def digest(self) -> str:
        """Hex SHA-256 over every trace, sorted by (tenant, run_id), then in log order."""
        hasher = hashlib.sha256(b"agentlog.traces/1\n")
        for key in sorted(self._traces):
            for row in self._traces[key].rows:
                hasher.update(_canonical([*key, row]))
                hasher.update(b"\n")
        return hasher.hexdigest()


def _view(run_id: str, row: dict[str, Any], position: int) -> TraceView:
    """The frozen view of a stored trace at `position` (0-based) of its run."""
    return TraceView(
        run_id,
        row["trace_id"],
        row["kind"],
        row["data"],
        row["seq"],
        row["event_id"],
        row["parent_id"],
        row["agent_id"],
        row["tool_id"],
        row["log_time_ms"],
        position + 1,
    )
