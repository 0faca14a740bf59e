"""`DataStore`: seed 002's `data_store` object (get/set/delete/list_keys, namespaces, batches) over a client.

    data_store = DataStore(connect("http://127.0.0.1:8000", tenant="alice", agent_id="summarizer"))
    data_store.set("greeting", {"text": "hello"})
    cache = data_store.use_namespace("cache:github")
    cache.set_many({"a": 1, "b": 2})

Deviations from seed 002, and why:

- *User isolation* is the client's tenant (its `X-Tenant` header or API key), not a user id.
- *Access tracking* (`accessCount`, `lastAccessedByAgent`) is not kept: reads do not write to the
  log. Records carry `created_by`/`updated_by` (the writing agent) and log times instead.
- *TTL* exists (`set(..., ttl_s=...)`), and `set_many` is one atomic batch (all or none), so its
  size is bounded by the node's batch limit (1,000 items); larger mappings are refused, not split.
- `list_namespaces()` lists namespaces holding live keys (a configured but empty one is left out).
- `get_many(keys)` maps only the keys that exist; absent keys are left out of the answer.
- Every read sees this client's own earlier writes (consistency tokens), even on another node of the log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from agentlog.client import AgentlogClient

__all__ = ["DataStore"]

#: Keys fetched per page by `list_keys` (the node's list limit).
LIST_PAGE_SIZE: Final = 1_000


class DataStore:
    """A namespace of KV records with seed 002's `data_store` methods."""

    def __init__(self, client: AgentlogClient, namespace: str = "default") -> None:
        self.client = client
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"DataStore({self.client!r}, namespace={self.namespace!r})"

    def get(self, key: str, default: Any = None) -> Any:
        """The value at `key`, or `default` if absent or expired."""
        record = self.client.kv_get(self.namespace, key)
        return default if record is None else record.value

    def set(self, key: str, value: Any, metadata: Mapping[str, Any] | None = None, *, ttl_s: int | None = None) -> None:
        """Store a JSON value (metadata replaces the record's; without it, earlier metadata is kept)."""
        self.client.kv_put(self.namespace, key, value, metadata=metadata, ttl_s=ttl_s)

    def delete(self, key: str) -> bool:
        """Delete `key`; True if it existed."""
        return bool(self.client.kv_delete(self.namespace, key).result.get("deleted"))

    def list_keys(self, prefix: str | None = None) -> list[str]:
        """Every key of the namespace (starting with `prefix`), sorted; follows the node's pages."""
        keys: list[str] = []
        cursor: str | None = None
        while True:
            page = self.client.kv_list(self.namespace, prefix or "", cursor, LIST_PAGE_SIZE)
            keys.extend(record.key for record in page.items)
            if page.next_cursor is None or not page.items:
                return keys
            cursor = page.next_cursor

    def list_namespaces(self) -> list[str]:
        """The namespaces that hold data, sorted."""
        return [namespace for namespace, count in self.client.namespaces().items() if count > 0]

    def use_namespace(self, namespace: str) -> DataStore:
        """A data store over another namespace, sharing this one's client (and its consistency token)."""
        return DataStore(self.client, namespace)

    def clear(self) -> int:
        """Delete every key of the namespace; how many were deleted."""
        return int(self.client.kv_clear(self.namespace).result.get("deleted", 0))

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """`{key: value}` for those of `keys` that exist (one request)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        found = self.client.kv_batch_get(self.namespace, wanted)
        return {key: record.value for key, record in found.items() if record is not None}

    def set_many(self, items: Mapping[str, Any], metadata: Mapping[str, Any] | None = None) -> None:
        """Store several values in one atomic batch (all or none), each with `metadata` when given."""
        if not items:
            return
        batch = [
            {"key": key, "value": value, **({} if metadata is None else {"metadata": dict(metadata)})}
            for key, value in items.items()
        ]
        self.client.kv_batch_put(self.namespace, batch)
