"""Response models of the kv record and namespace routes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["NamespaceCount", "NamespaceList", "QueryPage", "RecordBatch", "RecordList", "RecordPublic"]


class RecordPublic(BaseModel):
    """A kv record as it stands: value, version, metadata, who wrote it and when (log time), expiry."""

    key: str
    value: Any
    version: int
    metadata: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None
    updated_by: str | None
    expires_at_ms: int | None


class RecordList(BaseModel):
    """A page of records in key order; `next_cursor` is the last key when more may follow."""

    items: list[RecordPublic]
    next_cursor: str | None


class RecordBatch(BaseModel):
    """Records by key; an absent key maps to null."""

    items: dict[str, RecordPublic | None]


class QueryPage(BaseModel):
    """A page of query results (projected documents); `next_cursor` pages on."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class NamespaceCount(BaseModel):
    """A namespace with its number of live keys."""

    namespace: str
    keys: int


class NamespaceList(BaseModel):
    """The caller's namespaces."""

    namespaces: list[NamespaceCount]
