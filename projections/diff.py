"""Diffs (DESIGN §5): two runs aligned by event seq, and the state of two cuts record by record.

- `diff_runs(events_a, events_b, commands_a=, commands_b=)`: events are aligned by `seq` and
  compared on `EVENT_FIELDS` (what the agent wrote, not ids, hashes or log times, which always
  differ between two runs). The report names the first divergence (the first seq whose fields
  differ, or where one run has an event and the other none), every differing event, and the
  differing *writes*: the last effect each run's commands had on every kv key, state record, lock,
  vector, collection and namespace config they touched (see `run_writes`).
- `diff_cuts(state_a, state_b, tenant=)`: kv records, state records and vectors (by id) that were
  added, changed or removed from the state at cut A to the state at cut B, with the fields that
  changed. Records compare on every stored field (value, version, metadata, log times, writers,
  expiry); an expired record that no sweep purged yet is still in the state and still compared.
- `states_at(log, topic, cut_a, cut_b)`: the two engine states to diff, rebuilt with
  `projections.timetravel.rebuild`; when A is at or below B on every partition, B continues from a
  copy of A instead of replaying from zero again.
"""

from __future__ import annotations

import base64
import pickle
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from commands import (
    CollectionCreate,
    Envelope,
    KvBatchPut,
    KvClear,
    KvDelete,
    KvExpire,
    KvPut,
    LockAcquire,
    LockRelease,
    LockRenew,
    NamespaceConfig,
    StateCas,
    Txn,
    TxnKvDelete,
    TxnKvPut,
    VectorDelete,
    VectorUpsert,
)
from eventlog.base import EventLog
from projections.engine import Engine, EngineState
from projections.records import RecordsModel
from projections.runs import EventView
from projections.state import StateModel
from projections.timetravel import rebuild
from projections.vectors import VectorsModel

__all__ = [
    "EVENT_FIELDS",
    "CutDiff",
    "EventDiff",
    "RunDiff",
    "StateChange",
    "WriteDiff",
    "diff_cuts",
    "diff_runs",
    "diff_writes",
    "run_writes",
    "states_at",
]

#: The fields two runs' events are compared on.
EVENT_FIELDS: Final = ("type", "payload", "thread_id", "agent_id", "tool_id")

#: A write target: (kind, namespace, key); kind is kv, state, lock, vector, collection or namespace.
WriteTarget = tuple[str, str, str]
Status = Literal["added", "changed", "removed"]


@dataclass(frozen=True, slots=True)
class EventDiff:
    """One seq where two runs differ: `fields` that differ, or `only_a`/`only_b` when one run has no event there."""

    seq: int
    status: Literal["changed", "only_a", "only_b"]
    fields: tuple[str, ...]
    a: dict[str, Any] | None
    b: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class WriteDiff:
    """A record both runs wrote differently, or only one wrote: the last effect each had on it."""

    kind: str
    namespace: str
    key: str
    status: Literal["changed", "only_a", "only_b"]
    a: dict[str, Any] | None
    b: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunDiff:
    """Two runs compared: event counts, the common prefix, the first divergence, differing events and writes."""

    events_a: int
    events_b: int
    common_prefix: int
    first_divergence: EventDiff | None
    events: tuple[EventDiff, ...]
    writes: tuple[WriteDiff, ...]

    @property
    def identical(self) -> bool:
        """True when no event and no write differs."""
        return not self.events and not self.writes


@dataclass(frozen=True, slots=True)
class StateChange:
    """One kv record, state record or vector added, changed or removed between two cuts."""

    kind: Literal["record", "state", "vector"]
    tenant: str
    namespace: str
    key: str
    status: Status
    fields: tuple[str, ...]
    a: dict[str, Any] | None
    b: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class CutDiff:
    """What changed between the states of two cuts, sorted by (kind, tenant, namespace, key)."""

    changes: tuple[StateChange, ...]

    def counts(self) -> dict[str, int]:
        """How many changes of each status."""
        counts = {"added": 0, "changed": 0, "removed": 0}
        for change in self.changes:
            counts[change.status] += 1
        return counts


# -- runs -----------------------------------------------------------------------------------------


def _event_dict(event: EventView | Mapping[str, Any]) -> dict[str, Any]:
    """An event as a plain dict (views and already-plain events alike)."""
    if isinstance(event, EventView):
        return {name: getattr(event, name) for name in EventView.__slots__}
    return dict(event)


def _aligned(events: Iterable[EventView | Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
    """Events by seq (a later duplicate seq replaces an earlier one)."""
    by_seq: dict[int, dict[str, Any]] = {}
    for event in events:
        plain = _event_dict(event)
        by_seq[int(plain["seq"])] = plain
    return by_seq


def diff_runs(
    events_a: Iterable[EventView | Mapping[str, Any]],
    events_b: Iterable[EventView | Mapping[str, Any]],
    *,
    commands_a: Iterable[Envelope] = (),
    commands_b: Iterable[Envelope] = (),
) -> RunDiff:
    """Align two runs' events by seq; report the first divergence, every differing event and the differing writes."""
    a, b = _aligned(events_a), _aligned(events_b)
    changes: list[EventDiff] = []
    for seq in sorted(a.keys() | b.keys()):
        left, right = a.get(seq), b.get(seq)
        if left is None:
            changes.append(EventDiff(seq, "only_b", (), None, right))
        elif right is None:
            changes.append(EventDiff(seq, "only_a", (), left, None))
        else:
            fields = tuple(name for name in EVENT_FIELDS if left.get(name) != right.get(name))
            if fields:
                changes.append(EventDiff(seq, "changed", fields, left, right))
    first = changes[0] if changes else None
    common = (first.seq - 1) if first is not None else min(len(a), len(b))
    writes = diff_writes(run_writes(commands_a), run_writes(commands_b))
    return RunDiff(len(a), len(b), common, first, tuple(changes), tuple(writes))


def _txn_effects(envelope: Envelope, txn: Txn) -> Iterator[tuple[WriteTarget, dict[str, Any]]]:
    """The (target, effect) pairs of a transaction's writes."""
    default = envelope.namespace or ""
    for write in txn.writes:
        namespace = write.namespace or default
        if isinstance(write, TxnKvPut):
            yield ("kv", namespace, write.key), {"op": "put", "value": write.value, "metadata": write.metadata}
        elif isinstance(write, TxnKvDelete):
            yield ("kv", namespace, write.key), {"op": "delete"}
        else:
            yield ("state", namespace, write.key), {"op": "set", "value": write.value}


def _effects(envelope: Envelope) -> Iterator[tuple[WriteTarget, dict[str, Any]]]:
    """The (target, effect) pairs one command writes; run-scoped commands write none."""
    command = envelope.command
    namespace = envelope.namespace or ""
    if isinstance(command, KvPut):
        yield ("kv", namespace, command.key), {"op": "put", "value": command.value, "metadata": command.metadata}
    elif isinstance(command, KvBatchPut):
        for item in command.items:
            yield ("kv", namespace, item.key), {"op": "put", "value": item.value, "metadata": item.metadata}
    elif isinstance(command, KvDelete | KvExpire):
        yield ("kv", namespace, command.key), {"op": "delete"}
    elif isinstance(command, KvClear):
        yield ("kv", namespace, "*"), {"op": "clear"}
    elif isinstance(command, NamespaceConfig):
        config = {"op": "config", "json_schema": command.json_schema, "default_ttl_s": command.default_ttl_s}
        yield ("namespace", namespace, ""), config
    elif isinstance(command, StateCas):
        yield ("state", namespace, command.name), {"op": "set", "value": command.value}
    elif isinstance(command, LockAcquire | LockRenew | LockRelease):
        yield ("lock", namespace, command.name), {"op": command.type.removeprefix("lock."), "holder": command.holder}
    elif isinstance(command, Txn):
        yield from _txn_effects(envelope, command)
    elif isinstance(command, CollectionCreate):
        yield ("collection", namespace, command.name), {"dimension": command.dimension, "metric": command.metric}
    elif isinstance(command, VectorUpsert):
        embedding = base64.b64encode(command.embedding).decode("ascii")
        target = ("vector", namespace, f"{command.collection}/{command.id}")
        yield target, {"op": "upsert", "embedding": embedding, "metadata": command.metadata}
    elif isinstance(command, VectorDelete):
        yield ("vector", namespace, f"{command.collection}/{command.id}"), {"op": "delete"}


def run_writes(commands: Iterable[Envelope]) -> dict[WriteTarget, dict[str, Any]]:
    """The last effect a run's commands (in order) had on each target; pass only the applied ones."""
    last: dict[WriteTarget, dict[str, Any]] = {}
    for envelope in commands:
        for target, effect in _effects(envelope):
            last[target] = effect
    return last


def diff_writes(a: Mapping[WriteTarget, dict[str, Any]], b: Mapping[WriteTarget, dict[str, Any]]) -> list[WriteDiff]:
    """Targets whose last effect differs between two runs' writes, sorted by target."""
    found: list[WriteDiff] = []
    for target in sorted(a.keys() | b.keys()):
        left, right = a.get(target), b.get(target)
        if left == right:
            continue
        status: Literal["changed", "only_a", "only_b"] = (
            "only_b" if left is None else "only_a" if right is None else "changed"
        )
        found.append(WriteDiff(*target, status, left, right))
    return found


# -- cuts -----------------------------------------------------------------------------------------

_RECORD_FIELDS: Final = (
    "value",
    "version",
    "metadata",
    "created_at_ms",
    "updated_at_ms",
    "created_by",
    "updated_by",
    "expires_at_ms",
)
_STATE_FIELDS: Final = ("value", "version", "created_at_ms", "updated_at_ms", "updated_by")
_VECTOR_FIELDS: Final = ("embedding", "metadata")
_Rows = dict[tuple[str, str, str], dict[str, Any]]


def _records_rows(model: RecordsModel, tenant: str | None) -> _Rows:
    """Every stored kv record (expired-but-unswept included) by (tenant, namespace, key)."""
    rows: _Rows = {}
    for owner, spaces in model._tenants.items():  # the model's own state, read-only
        if tenant is not None and owner != tenant:
            continue
        for namespace, space in spaces.items():
            for key, record in space.records.items():
                rows[(owner, namespace, key)] = dict(zip(_RECORD_FIELDS, record.row()[1:], strict=True))
    return rows


def _state_rows(model: StateModel, tenant: str | None) -> _Rows:
    """Every state record by (tenant, namespace, name)."""
    rows: _Rows = {}
    for (owner, namespace), records in model._records.items():  # the model's own state, read-only
        if tenant is not None and owner != tenant:
            continue
        for name, record in records.items():
            values = (record.value, record.version, record.created_at_ms, record.updated_at_ms, record.updated_by)
            rows[(owner, namespace, name)] = dict(zip(_STATE_FIELDS, values, strict=True))
    return rows


def _vector_rows(model: VectorsModel, tenant: str | None) -> _Rows:
    """Every vector by (tenant, namespace, "collection/id"): its embedding (base64 of float32 LE) and metadata."""
    rows: _Rows = {}
    for (owner, namespace), collections in model._spaces.items():  # the model's own state, read-only
        if tenant is not None and owner != tenant:
            continue
        for name, stored in collections.items():
            for slot, vector_id in enumerate(stored.ids):
                embedding = base64.b64encode(stored.matrix[slot].astype("<f4").tobytes()).decode("ascii")
                rows[(owner, namespace, f"{name}/{vector_id}")] = {
                    "embedding": embedding,
                    "metadata": stored.metadata(slot),
                }
    return rows


def _compare(
    kind: Literal["record", "state", "vector"], a: _Rows, b: _Rows, fields: Sequence[str]
) -> Iterator[StateChange]:
    """The changes of one kind from rows `a` to rows `b`, in target order."""
    for target in sorted(a.keys() | b.keys()):
        left, right = a.get(target), b.get(target)
        if left is None:
            yield StateChange(kind, *target, "added", (), None, right)
        elif right is None:
            yield StateChange(kind, *target, "removed", (), left, None)
        else:
            changed = tuple(name for name in fields if left[name] != right[name])
            if changed:
                yield StateChange(kind, *target, "changed", changed, left, right)


def _model(state: EngineState, name: str, cls: type[Any]) -> Any:
    """The model called `name` in `state`, checked to be a `cls`."""
    model = state.model(name)
    assert isinstance(model, cls), (name, type(model))
    return model


def diff_cuts(state_a: EngineState, state_b: EngineState, *, tenant: str | None = None) -> CutDiff:
    """KV records, state records and vectors added, changed or removed from `state_a` to `state_b` (of `tenant`)."""
    changes: list[StateChange] = []
    for kind, name, cls, rows, fields in (
        ("record", "records", RecordsModel, _records_rows, _RECORD_FIELDS),
        ("state", "state", StateModel, _state_rows, _STATE_FIELDS),
        ("vector", "vectors", VectorsModel, _vector_rows, _VECTOR_FIELDS),
    ):
        a = rows(_model(state_a, name, cls), tenant)
        b = rows(_model(state_b, name, cls), tenant)
        changes.extend(_compare(kind, a, b, fields))  # type: ignore[arg-type]
    return CutDiff(tuple(changes))


async def states_at(
    log: EventLog, topic: str, cut_a: Sequence[int], cut_b: Sequence[int], snapshot_dir: Path | None = None
) -> tuple[EngineState, EngineState]:
    """The engine states at two cuts (TimeTravelError for a cut that does not fit the topic)."""
    state_a = await rebuild(log, topic, cut_a, snapshot_dir)
    if all(x <= y for x, y in zip(cut_a, cut_b, strict=True)):
        state_b: EngineState = pickle.loads(pickle.dumps(state_a, protocol=pickle.HIGHEST_PROTOCOL))
        await Engine(log, topic, state_b).catch_up(dict(enumerate(cut_b)))
        if state_b.applied != list(cut_b):
            state_b = await rebuild(log, topic, cut_b, snapshot_dir)  # let rebuild explain the bad cut
        return state_a, state_b
    return state_a, await rebuild(log, topic, cut_b, snapshot_dir)
