"""The transaction model: optimistic reads, preconditions and atomic writes over kv and state records.

A `txn` commits iff every read is still at its version and every precondition holds, in log time
(an expired kv record is at version 0). Checks run in this order, and the first failing stage
rejects the whole txn having written nothing:

1. reads → `version_conflict` with `conflicts=[{kind, namespace, key, expected_version, current_version}]`
   listing every stale read;
2. preconditions → `precondition_failed` with `failed=[{kind, namespace, key, exists | version,
   current_version}]` listing every false one;
3. the namespace JSON Schema of every kv put → `schema_violation`.

Then every write applies, in order, through the records model's and the state model's
unconditional writers; the result lists each write's outcome. An item without a namespace uses the
envelope's; the tenant is always the envelope's. The model keeps no state of its own: its digest is
that of the empty state (the records and state models digest what a txn wrote).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Protocol

from commands.wire import Txn, TxnKvDelete, TxnKvPut, TxnPrecondition, TxnRead, TxnStateSet
from projections.model import ApplyContext, ReadModel
from projections.outcome import Rejected
from projections.records import RecordsModel

__all__ = ["StateModelProtocol", "TxnModel"]


class StateModelProtocol(Protocol):
    """What a txn needs of the state model: versions in log time, and an unconditional set that never rejects."""

    def current_version(self, tenant: str, namespace: str, name: str, log_time_ms: int) -> int:
        """The version of state `name` at `log_time_ms` (0 if absent)."""
        ...

    def write_set(
        self, tenant: str, namespace: str, name: str, value: Any, agent_id: str | None, log_time_ms: int
    ) -> dict[str, Any]:
        """Set state `name` to `value` (version + 1) without checks; return the write's result."""
        ...


class _Scope:
    """One txn's tenant, default namespace and log time, and how to read versions at that time."""

    __slots__ = ("log_time_ms", "namespace", "records", "state", "tenant")

    def __init__(
        self, records: RecordsModel, state: StateModelProtocol, tenant: str, namespace: str, log_time_ms: int
    ) -> None:
        self.records, self.state = records, state
        self.tenant, self.namespace, self.log_time_ms = tenant, namespace, log_time_ms

    def version(self, item: TxnRead | TxnPrecondition) -> tuple[str, int]:
        """The item's resolved namespace and its record's current version."""
        namespace = item.namespace or self.namespace
        if item.kind == "state":
            return namespace, self.state.current_version(self.tenant, namespace, item.key, self.log_time_ms)
        return namespace, self.records.current_version(self.tenant, namespace, item.key, self.log_time_ms)


def _stale_reads(scope: _Scope, reads: list[TxnRead]) -> list[dict[str, Any]]:
    conflicts = []
    for read in reads:
        namespace, current = scope.version(read)
        if current != read.version:
            conflicts.append(
                {
                    "kind": read.kind,
                    "namespace": namespace,
                    "key": read.key,
                    "expected_version": read.version,
                    "current_version": current,
                }
            )
    return conflicts


def _holds(condition: TxnPrecondition, current: int) -> bool:
    if condition.exists is not None:
        return (current > 0) is condition.exists
    return current == condition.version


def _failed_preconditions(scope: _Scope, conditions: list[TxnPrecondition]) -> list[dict[str, Any]]:
    failed = []
    for condition in conditions:
        namespace, current = scope.version(condition)
        if not _holds(condition, current):
            wanted = {"exists": condition.exists} if condition.exists is not None else {"version": condition.version}
            failed.append(
                {
                    "kind": condition.kind,
                    "namespace": namespace,
                    "key": condition.key,
                    **wanted,
                    "current_version": current,
                }
            )
    return failed


def _describe(item: dict[str, Any]) -> str:
    return f"{item['kind']} {item['key']!r} in {item['namespace']!r} (at version {item['current_version']})"


class TxnModel(ReadModel):
    """Applies `txn` commands atomically over the records and state models; holds no state itself."""

    name: ClassVar[str] = "txn"
    command_types: ClassVar[frozenset[str]] = frozenset(("txn",))

    def __init__(self, records: RecordsModel, state: StateModelProtocol) -> None:
        self.records = records
        self.state = state

    def snapshot_state(self) -> Iterator[Any]:
        """Nothing: a transaction's effects live in the records and state models."""
        return iter(())

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Nothing to restore (see `snapshot_state`)."""
        for _ in pieces:
            raise ValueError("the txn model keeps no state, but its snapshot section is not empty")

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Check every read, precondition and schema in log time, then apply every write; or reject, writing nothing."""
        envelope = context.envelope
        command = envelope.command
        if not isinstance(command, Txn) or envelope.namespace is None:
            raise Rejected("invalid", f"the txn model does not apply {command.type} without a namespace")
        scope = _Scope(self.records, self.state, envelope.tenant, envelope.namespace, context.log_time_ms)
        self._check(scope, command)
        results = [self._write(scope, write, envelope.agent_id) for write in command.writes]
        return {"committed": True, "writes": results}

    def _check(self, scope: _Scope, command: Txn) -> None:
        """Raise Rejected for the first failing stage: stale reads, false preconditions, schema violations."""
        conflicts = _stale_reads(scope, command.reads)
        if conflicts:
            detail = "; ".join(_describe(item) + f" was read at {item['expected_version']}" for item in conflicts)
            raise Rejected("version_conflict", f"stale reads: {detail}", conflicts=conflicts)
        failed = _failed_preconditions(scope, command.preconditions)
        if failed:
            raise Rejected("precondition_failed", "; ".join(_describe(item) for item in failed), failed=failed)
        for write in command.writes:
            if isinstance(write, TxnKvPut):
                self.records.check_schema(scope.tenant, write.namespace or scope.namespace, write.value)

    def _write(self, scope: _Scope, write: TxnKvPut | TxnKvDelete | TxnStateSet, agent: str | None) -> dict[str, Any]:
        """Apply one write unconditionally; its result tagged with `op` and the resolved namespace."""
        namespace = write.namespace or scope.namespace
        tenant, now = scope.tenant, scope.log_time_ms
        if isinstance(write, TxnKvPut):
            result = self.records.write_put(
                tenant, namespace, write.key, write.value, write.metadata, write.ttl_s, agent, now
            )
        elif isinstance(write, TxnKvDelete):
            result = self.records.write_delete(tenant, namespace, write.key, now)
        else:
            result = self.state.write_set(tenant, namespace, write.key, write.value, agent, now)
        return {"op": write.op, "namespace": namespace, **result}

    def digest(self) -> str:
        """The digest of the empty state: a txn model holds nothing of its own."""
        return hashlib.sha256(b"txn/1\n").hexdigest()
