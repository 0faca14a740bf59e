"""Partition routing: Kafka's murmur2 partitioner over `tenant/namespace` or `tenant/run_id`.

Namespaced commands (kv, ns, state, lock, txn, collection, vector) route by `tenant/namespace`;
run-scoped ones (run, event, trace) by `tenant/run_id`. Neither part may contain `/`, so keys never
collide across tenants. A plain Kafka producer keying its records this way lands on the same
partitions. A txn must also keep every namespace it touches on its own partition (see `commands.txn`).
"""

from __future__ import annotations

from typing import Protocol

from commands.envelope import Envelope
from commands.errors import CommandError
from commands.fields import Scope
from eventlog.partitioner import partition_for

__all__ = ["Routable", "check_single_partition", "partition_key", "partition_of", "scope_key"]


def scope_key(tenant: str, scope: str) -> bytes:
    """The partition key of `scope` (a namespace or a run id) of `tenant`: `tenant/scope` in UTF-8."""
    return f"{tenant}/{scope}".encode()


class Routable(Protocol):
    """What routing reads of an envelope (the pydantic `Envelope` and the apply path's `WireEnvelope`)."""

    @property
    def tenant(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def run_id(self) -> str: ...
    @property
    def scope(self) -> Scope: ...
    @property
    def type(self) -> str: ...


def partition_key(envelope: Routable) -> bytes:
    """The record key that routes `envelope`: `tenant/namespace` or `tenant/run_id`."""
    if envelope.scope == "namespace":
        if envelope.namespace is None:  # the envelope validator refuses this; a hand-built envelope may not
            raise CommandError("invalid", f"{envelope.type} needs a namespace")
        return scope_key(envelope.tenant, envelope.namespace)
    return scope_key(envelope.tenant, envelope.run_id)


def partition_of(envelope: Envelope, partitions: int) -> int:
    """The partition of `envelope` in a topic of `partitions` partitions."""
    return partition_for(partition_key(envelope), partitions)


def check_single_partition(envelope: Envelope, partitions: int) -> int:
    """The partition of `envelope`; CommandError `cross_partition` if it touches namespaces on other partitions.

    Only a txn can touch several namespaces; projections may call this too, to refuse records that a
    foreign producer appended in spite of the rule.
    """
    partition = partition_of(envelope, partitions)
    if envelope.namespace is None:
        return partition
    touched = envelope.command.namespaces(envelope.namespace)
    if len(touched) == 1:
        return partition
    elsewhere = sorted(
        (namespace, other)
        for namespace in touched
        if (other := partition_for(scope_key(envelope.tenant, namespace), partitions)) != partition
    )
    if elsewhere:
        listed = ", ".join(f"{namespace!r} (partition {other})" for namespace, other in elsewhere)
        raise CommandError(
            "cross_partition",
            f"{envelope.type} in namespace {envelope.namespace!r} (partition {partition} of {partitions}) also touches "
            f"{listed}; all keys of one txn must share a partition: keep them in one namespace",
        )
    return partition
