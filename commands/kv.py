"""KV commands: put, delete, batch put, clear, namespace config and the sweeper's expire.

All are namespaced: the namespace is the envelope's, never repeated here. Versions count from 1 per
key; `if_version` 0 means "must not exist". Whether a condition holds is decided by the projection.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from commands import limits
from commands.fields import CommandModel, JsonData, Key, Metadata, NonNegative, Positive, ScopedCommand, TtlSeconds

__all__ = ["KvBatchPut", "KvClear", "KvDelete", "KvExpire", "KvItem", "KvPut", "NamespaceConfig"]


class KvItem(CommandModel):
    """One key's write in a `kv.batch_put`: value, optional metadata, TTL and version condition."""

    key: Key
    value: JsonData
    metadata: Metadata | None = None
    ttl_s: TtlSeconds | None = None
    if_version: NonNegative | None = None


class KvPut(ScopedCommand):
    """`kv.put`: write `value` at `key`; `if_version` (0 = must not exist) makes it conditional."""

    type: Literal["kv.put"] = "kv.put"
    key: Key
    value: JsonData
    metadata: Metadata | None = None
    ttl_s: TtlSeconds | None = None
    if_version: NonNegative | None = None


class KvDelete(ScopedCommand):
    """`kv.delete`: remove `key`; with `if_version`, only if it is still at that version."""

    type: Literal["kv.delete"] = "kv.delete"
    key: Key
    if_version: NonNegative | None = None


class KvBatchPut(ScopedCommand):
    """`kv.batch_put`: up to 1,000 puts in one namespace, atomic: all apply or (any condition fails) none."""

    type: Literal["kv.batch_put"] = "kv.batch_put"
    items: Annotated[list[KvItem], Field(min_length=1, max_length=limits.MAX_BATCH_COMMANDS)]

    @model_validator(mode="after")
    def _unique_keys(self) -> KvBatchPut:
        seen: set[str] = set()
        for item in self.items:
            if item.key in seen:
                raise ValueError(f"key {item.key!r} appears twice in one batch")
            seen.add(item.key)
        return self


class KvClear(ScopedCommand):
    """`kv.clear`: delete every key of the namespace."""

    type: Literal["kv.clear"] = "kv.clear"


class NamespaceConfig(ScopedCommand):
    """`ns.config`: replace the namespace's config: a JSON Schema for values and a default TTL (None = none)."""

    type: Literal["ns.config"] = "ns.config"
    json_schema: Metadata | None = None
    default_ttl_s: TtlSeconds | None = None


class KvExpire(ScopedCommand):
    """`kv.expire` (internal, from the TTL sweeper): purge `key` if it is still at `expected_version`."""

    internal: ClassVar[bool] = True

    type: Literal["kv.expire"] = "kv.expire"
    key: Key
    expected_version: Positive
