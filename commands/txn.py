"""The transaction command: optimistic reads, writes and preconditions, all or nothing.

A txn commits only if every read is still at its version and every precondition holds; then all its
writes apply, else none. Each item may name a namespace; one that names none uses the envelope's.

**Routing rule**: a txn is applied by one partition, so every namespace it touches must route, as
`tenant/namespace`, to the partition of the envelope's own `tenant/namespace`. A txn within one
namespace always qualifies, whatever the partition count; one spanning namespaces qualifies only if
they happen to hash to the same partition, so the producer checks it against the topic's partition
count (`routing.check_single_partition`) and refuses the rest with `cross_partition` before append.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from commands import limits
from commands.errors import CommandError
from commands.fields import CommandModel, JsonData, Key, Metadata, Namespace, NonNegative, ScopedCommand, TtlSeconds

__all__ = [
    "ItemKind",
    "Txn",
    "TxnKvDelete",
    "TxnKvPut",
    "TxnPrecondition",
    "TxnRead",
    "TxnStateSet",
    "TxnWrite",
]

#: What a txn item addresses: a kv record or a state record.
ItemKind = Literal["kv", "state"]


class TxnRead(CommandModel):
    """A read the txn depends on: `key` (a kv key or state name) was at `version` (0 = absent)."""

    kind: ItemKind = "kv"
    namespace: Namespace | None = None
    key: Key
    version: NonNegative


class TxnPrecondition(CommandModel):
    """A condition on `key`: it exists (or not) with `exists`, or is at `version`; exactly one of the two."""

    kind: ItemKind = "kv"
    namespace: Namespace | None = None
    key: Key
    exists: bool | None = None
    version: NonNegative | None = None

    @model_validator(mode="after")
    def _one_condition(self) -> TxnPrecondition:
        if (self.exists is None) == (self.version is None):
            raise ValueError("a precondition names exactly one of `exists` and `version`")
        return self


class TxnKvPut(CommandModel):
    """A txn write: put a kv value."""

    op: Literal["kv.put"] = "kv.put"
    namespace: Namespace | None = None
    key: Key
    value: JsonData
    metadata: Metadata | None = None
    ttl_s: TtlSeconds | None = None


class TxnKvDelete(CommandModel):
    """A txn write: delete a kv key."""

    op: Literal["kv.delete"] = "kv.delete"
    namespace: Namespace | None = None
    key: Key


class TxnStateSet(CommandModel):
    """A txn write: set a state record's value (its version goes up by one)."""

    op: Literal["state.set"] = "state.set"
    namespace: Namespace | None = None
    key: Key
    value: JsonData


#: One write of a txn, tagged by `op`.
TxnWrite = Annotated[TxnKvPut | TxnKvDelete | TxnStateSet, Field(discriminator="op")]

_Reads = Annotated[list[TxnRead], Field(max_length=limits.MAX_BATCH_COMMANDS)]
_Writes = Annotated[list[TxnWrite], Field(max_length=limits.MAX_BATCH_COMMANDS)]
_Preconditions = Annotated[list[TxnPrecondition], Field(max_length=limits.MAX_BATCH_COMMANDS)]


def _write_kind(write: TxnKvPut | TxnKvDelete | TxnStateSet) -> ItemKind:
    return "state" if isinstance(write, TxnStateSet) else "kv"


class Txn(ScopedCommand):
    """`txn`: `writes` apply atomically iff every read is still at its version and every precondition holds."""

    type: Literal["txn"] = "txn"
    reads: _Reads = Field(default_factory=list)
    writes: _Writes = Field(default_factory=list)
    preconditions: _Preconditions = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_empty(self) -> Txn:
        if not (self.reads or self.writes or self.preconditions):
            raise ValueError("a txn needs at least one read, write or precondition")
        return self

    def namespaces(self, default: str) -> frozenset[str]:
        """Every namespace the txn touches, items without one counting as `default`."""
        found = {default}
        for item in (*self.reads, *self.writes, *self.preconditions):
            found.add(item.namespace or default)
        return frozenset(found)

    def check_scope(self, namespace: str | None) -> None:
        """Refuse two writes to the same record (kind, namespace, key) once namespaces are resolved."""
        seen: set[tuple[str, str | None, str]] = set()
        for write in self.writes:
            target = (_write_kind(write), write.namespace or namespace, write.key)
            if target in seen:
                raise CommandError("invalid", f"txn writes {target[0]} {target[2]!r} of {target[1]!r} twice")
            seen.add(target)
