"""Runs and their hash-chained event logs (DESIGN §4, seed 001's event log).

A run is `(tenant, run_id)` → name, metadata, parent run, status, begin/end log times, the agent that
began it, its result, its events and the hash of its last event. Decisions:

- `run.begin` of an existing run → `already_exists`. The parent run is recorded, not checked: it
  may live on another partition, and a check across partitions would depend on their interleaving.
- The default run (`commands.limits.DEFAULT_RUN_ID`) exists implicitly in every tenant: it takes
  events without `run.begin`, materializes (status `running`, begun at its first event's log time)
  on its first event, cannot be begun (`already_exists`) and cannot be ended (`forbidden`).
- `event.append` to any other unknown run → `not_found` (no auto-creation: a typo in a run id must
  not silently open a run); to an ended run → `run_closed`. `run.end` of an unknown run →
  `not_found`, of an ended run → `run_closed`.
- Events get a per-run sequence from 1 and `event_id` = the envelope's `command_id`. The hashed
  fields are `run_id, seq, event_id, type, payload, thread_id, agent_id, tool_id, log_time_ms,
  prev_hash`; the hash is `sha256(bytes.fromhex(prev_hash) ‖ canonical_json(those fields))`, the
  first `prev_hash` being 64 zeros. DESIGN scopes the chain "by run, thread and agent": there is **one chain per run**
  (a total order that every thread and agent of the run shares), and each event records its
  `thread_id`, `agent_id` and `tool_id` (all inside the hashed bytes), so reads filter by them and
  a verified run chain covers every thread's and agent's sub-sequence.
- `expected_seq` (the seq of the last event the writer saw, 0 = none) makes the append optimistic:
  a mismatch → `version_conflict` with `current_seq`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import orjson

from commands import DEFAULT_RUN_ID, canonical_json
from commands.wire import EventAppend, LoggedEnvelope, RunBegin, RunEnd
from projections.model import ApplyContext, ReadModel, chunked
from projections.outcome import Rejected

__all__ = ["GENESIS_HASH", "EventView", "RunView", "RunsModel", "VerifyResult", "event_hash"]

#: The `prev_hash` of a run's first event.
GENESIS_HASH: Final = "0" * 64
_RUNNING: Final = "running"


def _canonical(value: Any) -> bytes:
    """`canonical_json` without its NaN/Infinity scan: the bytes are the same for validated command values."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as read: identity, lifecycle, provenance and the head of its event chain."""

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


@dataclass(frozen=True, slots=True)
class EventView:
    """One event of a run's chain, with its hash and the hash it links to."""

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


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of recomputing a run's chain: `first_bad_seq` is the first event that fails."""

    ok: bool
    events: int
    first_bad_seq: int | None
    reason: str | None


class _Run:
    """One run's mutable state; `events` holds plain dicts (the hashed fields plus `hash`)."""

    __slots__ = (
        "agent_id",
        "begun_at_ms",
        "ended_at_ms",
        "event_ids",
        "events",
        "last_hash",
        "metadata",
        "name",
        "parent_run_id",
        "result",
        "status",
    )

    def __init__(self, envelope: LoggedEnvelope, begin: RunBegin | None, at_ms: int) -> None:
        self.name = begin.name if begin is not None else None
        self.metadata = begin.metadata if begin is not None else None
        self.parent_run_id = begin.parent_run_id if begin is not None else None
        self.agent_id = envelope.agent_id if begin is not None else None
        self.status = _RUNNING
        self.begun_at_ms = at_ms
        self.ended_at_ms: int | None = None
        self.result: Any = None
        self.events: list[dict[str, Any]] = []
        self.event_ids: dict[str, int] = {}
        self.last_hash = GENESIS_HASH

    def __getstate__(self) -> dict[str, Any]:
        return {slot: getattr(self, slot) for slot in self.__slots__}

    def __setstate__(self, state: dict[str, Any]) -> None:
        for slot, value in state.items():
            setattr(self, slot, value)

    def header(self, run_id: str) -> list[Any]:
        """The run's fields in a fixed order, for the digest."""
        return [
            run_id,
            self.name,
            self.metadata,
            self.parent_run_id,
            self.status,
            self.begun_at_ms,
            self.ended_at_ms,
            self.agent_id,
            self.result,
            len(self.events),
            self.last_hash,
        ]


def event_hash(event: dict[str, Any]) -> str:
    """The hash of `event`: sha256(prev_hash bytes ‖ canonical JSON of its fields other than `hash`)."""
    fields = {key: value for key, value in event.items() if key != "hash"}
    return hashlib.sha256(bytes.fromhex(fields["prev_hash"]) + canonical_json(fields)).hexdigest()


class RunsModel(ReadModel):
    """Runs per tenant, each with a hash-chained, sequenced event log."""

    name: ClassVar[str] = "runs"
    command_types: ClassVar[frozenset[str]] = frozenset(("event.append", "run.begin", "run.end"))

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, _Run]] = {}

    def snapshot_state(self) -> Iterator[Any]:
        """Per run: `[tenant, run_id, fields]` (every slot but the events), then its events in chunks."""
        for tenant, runs in self._runs.items():
            for run_id, run in runs.items():
                fields = {slot: getattr(run, slot) for slot in _Run.__slots__ if slot != "events"}
                yield [tenant, run_id, fields, None]
                for events in chunked(run.events):
                    yield [tenant, run_id, None, events]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Rebuild the runs from `snapshot_state` pieces."""
        for tenant, run_id, fields, events in pieces:
            if fields is not None:
                run = _Run.__new__(_Run)
                run.__setstate__({**fields, "events": []})
                self._runs.setdefault(tenant, {})[run_id] = run
            else:
                self._runs[tenant][run_id].events.extend(events)

    # -- apply -------------------------------------------------------------------------------------

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply `run.begin`, `run.end` or `event.append`; raise `Rejected` having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        if isinstance(command, EventAppend):
            return self._append(envelope, command, context.log_time_ms)
        if isinstance(command, RunBegin):
            return self._begin(envelope, command, context.log_time_ms)
        if isinstance(command, RunEnd):
            return self._end(envelope, command, context.log_time_ms)
        raise Rejected("invalid", f"{envelope.type} is not a run command")

    def _begin(self, envelope: LoggedEnvelope, command: RunBegin, now: int) -> dict[str, Any]:
        runs = self._runs.get(envelope.tenant)
        run_id = envelope.run_id
        if run_id == DEFAULT_RUN_ID or (runs is not None and run_id in runs):
            raise Rejected("already_exists", f"run {run_id!r} already exists")
        if runs is None:
            runs = self._runs[envelope.tenant] = {}
        runs[run_id] = _Run(envelope, command, now)
        return {"run_id": run_id, "status": _RUNNING, "begun_at_ms": now}

    def _end(self, envelope: LoggedEnvelope, command: RunEnd, now: int) -> dict[str, Any]:
        run_id = envelope.run_id
        if run_id == DEFAULT_RUN_ID:
            raise Rejected("forbidden", f"the default run {run_id!r} cannot be ended")
        run = self._open_run(envelope.tenant, run_id)
        if run is None:
            raise Rejected("not_found", f"no run {run_id!r}")
        run.status = command.status
        run.ended_at_ms = now
        run.result = command.result
        return {"run_id": run_id, "status": command.status, "ended_at_ms": now, "events": len(run.events)}

    def _append(self, envelope: LoggedEnvelope, command: EventAppend, now: int) -> dict[str, Any]:
        tenant, run_id = envelope.tenant, envelope.run_id
        run = self._open_run(tenant, run_id)
        count = len(run.events) if run is not None else 0
        if run is None and run_id != DEFAULT_RUN_ID:
            raise Rejected("not_found", f"no run {run_id!r}; begin it first")
        if command.expected_seq is not None and command.expected_seq != count:
            raise Rejected(
                "version_conflict",
                f"run {run_id!r} is at seq {count}, not {command.expected_seq}",
                current_seq=count,
            )
        if run is None:
            run = self._runs.setdefault(tenant, {})[run_id] = _Run(envelope, None, now)
        event = {
            "run_id": run_id,
            "seq": count + 1,
            "event_id": envelope.command_id,
            "type": command.event_type,
            "payload": command.payload,
            "thread_id": command.thread_id,
            "agent_id": envelope.agent_id,
            "tool_id": envelope.tool_id,
            "log_time_ms": now,
            "prev_hash": run.last_hash,
        }
        digest = hashlib.sha256(bytes.fromhex(run.last_hash) + _canonical(event)).hexdigest()
        event["hash"] = digest
        run.events.append(event)
        run.event_ids.setdefault(envelope.command_id, count + 1)
        run.last_hash = digest
        return {"run_id": run_id, "seq": count + 1, "event_id": envelope.command_id, "hash": digest}

    def _open_run(self, tenant: str, run_id: str) -> _Run | None:
        """The run if it exists and is running, None if unknown; `run_closed` if it has ended."""
        run = self._runs.get(tenant, {}).get(run_id)
        if run is not None and run.status != _RUNNING:
            raise Rejected("run_closed", f"run {run_id!r} ended ({run.status})")
        return run

    # -- checks for other models (traces) ----------------------------------------------------------

    def check_open(self, tenant: str, run_id: str) -> None:
        """Raise `Rejected` unless run `run_id` is running (the default run always is)."""
        if self._open_run(tenant, run_id) is None and run_id != DEFAULT_RUN_ID:
            raise Rejected("not_found", f"no run {run_id!r}")

    def event_seq(self, tenant: str, run_id: str, event_id: str) -> int | None:
        """The seq of the event `event_id` of the run, or None."""
        run = self._runs.get(tenant, {}).get(run_id)
        return None if run is None else run.event_ids.get(event_id)

    def event_id_at(self, tenant: str, run_id: str, seq: int) -> str | None:
        """The event_id of event `seq` of the run, or None."""
        run = self._runs.get(tenant, {}).get(run_id)
        if run is None or not 1 <= seq <= len(run.events):
            return None
        event_id: str = run.events[seq - 1]["event_id"]
        return event_id

    # -- reads -------------------------------------------------------------------------------------

    def get_run(self, tenant: str, run_id: str) -> RunView | None:
        """Run `run_id` of `tenant`, or None (the default run shows once it has an event)."""
        run = self._runs.get(tenant, {}).get(run_id)
        return None if run is None else _run_view(run_id, run)

    def list_runs(
        self, tenant: str, status: str | None = None, after: str | None = None, limit: int = 100
    ) -> list[RunView]:
        """Up to `limit` runs ordered by (begun_at_ms, run_id), optionally of one status, after run `after`.

        `after` is the run_id of the last run of the previous page; an unknown one raises ValueError.
        """
        runs = self._runs.get(tenant, {})
        order = sorted(runs, key=lambda run_id: (runs[run_id].begun_at_ms, run_id))
        start = 0
        if after is not None:
            if after not in runs:
                raise ValueError(f"unknown cursor run {after!r}")
            start = order.index(after) + 1
        found: list[RunView] = []
        for run_id in order[start:]:
            if len(found) >= limit:
                break
            run = runs[run_id]
            if status is None or run.status == status:
                found.append(_run_view(run_id, run))
        return found

    def events(
        self,
        tenant: str,
        run_id: str,
        from_seq: int = 1,
        limit: int = 1000,
        thread_id: str | None = None,
        agent_id: str | None = None,
        type: str | None = None,
    ) -> list[EventView]:
        """Up to `limit` events of the run from `from_seq` on, optionally of one thread, agent or type."""
        run = self._runs.get(tenant, {}).get(run_id)
        if run is None or limit <= 0:
            return []
        found: list[EventView] = []
        stored = run.events
        for index in range(max(from_seq, 1) - 1, len(stored)):
            event = stored[index]
            if (
                (thread_id is None or event["thread_id"] == thread_id)
                and (agent_id is None or event["agent_id"] == agent_id)
                and (type is None or event["type"] == type)
            ):
                found.append(_event_view(event))
                if len(found) >= limit:
                    break
        return found

    def verify(self, tenant: str, run_id: str) -> VerifyResult:
        """Recompute the run's chain from its stored events; report the first event that does not match."""
        run = self._runs.get(tenant, {}).get(run_id)
        if run is None:
            ok = run_id == DEFAULT_RUN_ID
            return VerifyResult(ok, 0, None, None if ok else f"no run {run_id!r}")
        prev = GENESIS_HASH
        for index, event in enumerate(run.events):
            seq = index + 1
            reason = _event_fault(event, seq, run_id, prev)
            if reason is not None:
                return VerifyResult(False, len(run.events), seq, reason)
            prev = event["hash"]
        if prev != run.last_hash:
            return VerifyResult(False, len(run.events), len(run.events) or None, "run head hash does not match")
        return VerifyResult(True, len(run.events), None, None)

    def digest(self) -> str:
        """Hex SHA-256 over every run's fields and chain head, sorted by (tenant, run_id)."""
        hasher = hashlib.sha256(b"agentlog.runs/1\n")
        for tenant in sorted(self._runs):
            runs = self._runs[tenant]
            for run_id in sorted(runs):
                hasher.update(_canonical([tenant, *runs[run_id].header(run_id)]))
                hasher.update(b"\n")
        return hasher.hexdigest()


def _event_fault(event: dict[str, Any], seq: int, run_id: str, prev: str) -> str | None:
    """Why stored `event` does not belong at `seq` after hash `prev`, or None if it does."""
    if event.get("seq") != seq:
        return f"seq is {event.get('seq')!r}, expected {seq}"
    if event.get("run_id") != run_id:
        return f"run_id is {event.get('run_id')!r}"
    if event.get("prev_hash") != prev:
        return "prev_hash does not link to the previous event"
    try:
        recomputed = event_hash(event)
    except (ValueError, TypeError) as exc:
        return f"event does not hash: {exc}"
    if recomputed != event.get("hash"):
        return "hash does not match the event's contents"
    return None


def _run_view(run_id: str, run: _Run) -> RunView:
    """The frozen view of `run`."""
    return RunView(
        run_id,
        run.name,
        run.metadata,
        run.parent_run_id,
        run.status,
        run.begun_at_ms,
        run.ended_at_ms,
        run.agent_id,
        run.result,
        len(run.events),
        run.last_hash,
    )


def _event_view(event: dict[str, Any]) -> EventView:
    """The frozen view of a stored event."""
    return EventView(
        event["run_id"],
        event["seq"],
        event["event_id"],
        event["type"],
        event["payload"],
        event["thread_id"],
        event["agent_id"],
        event["tool_id"],
        event["log_time_ms"],
        event["prev_hash"],
        event["hash"],
    )
