"""The builders of key-value records and namespaces (`/v1/kv`, `/v1/namespaces`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from agentlog._calls.call import Call, none, options, read_call, segment, write_call
from agentlog.models import Page, Record, WriteResult, from_json

__all__ = [
    "configure_namespace",
    "kv_batch_get",
    "kv_batch_put",
    "kv_clear",
    "kv_delete",
    "kv_get",
    "kv_list",
    "kv_put",
    "kv_query",
    "namespaces",
]


def _records_page(data: Any) -> Page[Record]:
    return Page([from_json(Record, item) for item in data["items"]], data.get("next_cursor"))


def _documents_page(data: Any) -> Page[dict[str, Any]]:
    return Page(list(data["items"]), data.get("next_cursor"))


def _batch_items(data: Any) -> dict[str, Record | None]:
    return {key: (None if item is None else from_json(Record, item)) for key, item in data["items"].items()}


def _namespace_counts(data: Any) -> dict[str, int]:
    return {entry["namespace"]: int(entry["keys"]) for entry in data["namespaces"]}


def _batch_put_items(items: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Batch items from `{key: value}` or from item objects (`key`, `value`, `metadata`, `ttl_s`, `if_version`)."""
    if isinstance(items, Mapping):
        return [{"key": key, "value": value} for key, value in items.items()]
    return [dict(item) for item in items]


def kv_put(
    namespace: str,
    key: str,
    value: Any,
    *,
    metadata: Mapping[str, Any] | None = None,
    ttl_s: int | None = None,
    if_version: int | None = None,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Write `value` at `key` (`if_version`: only at that version, 0 = must not exist); result has `version`."""
    body = {"value": value, **options(metadata=metadata, ttl_s=ttl_s, if_version=if_version)}
    body |= options(command_id=command_id, run_id=run_id)
    return write_call("PUT", f"/v1/kv/{segment(namespace)}/{segment(key)}", body, branch=branch)


def kv_get(
    namespace: str,
    key: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Record | None]:
    """The record at `key`, or None if absent or expired."""
    path = f"/v1/kv/{segment(namespace)}/{segment(key)}"
    return read_call(path, partial(from_json, Record), token, consistent, missing=none, branch=branch, as_of=as_of)


def kv_delete(
    namespace: str,
    key: str,
    *,
    if_version: int | None = None,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Delete `key` (`if_version`: only at that version); result `deleted` says whether it existed."""
    path = f"/v1/kv/{segment(namespace)}/{segment(key)}"
    return write_call("DELETE", path, if_version=if_version, command_id=command_id, run_id=run_id, branch=branch)


def kv_list(
    namespace: str,
    prefix: str = "",
    cursor: str | None = None,
    limit: int = 100,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Page[Record]]:
    """One page of the namespace's records in key order, from after `cursor`, keys starting with `prefix`."""
    path = f"/v1/kv/{segment(namespace)}"
    return read_call(
        path,
        _records_page,
        token,
        consistent,
        prefix=prefix or None,
        cursor=cursor,
        limit=limit,
        branch=branch,
        as_of=as_of,
    )


def kv_batch_get(
    namespace: str,
    keys: Sequence[str],
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[dict[str, Record | None]]:
    """Several records at once: `{key: Record or None}`."""
    path = f"/v1/kv/{segment(namespace)}/batch-get"
    return read_call(
        path, _batch_items, token, consistent, method="POST", body={"keys": list(keys)}, branch=branch, as_of=as_of
    )


def kv_batch_put(
    namespace: str,
    items: Mapping[str, Any] | Iterable[Mapping[str, Any]],
    *,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Write several keys atomically (all or none): `{key: value}` or item objects with `key`, `value`, ..."""
    body = {"items": _batch_put_items(items), **options(command_id=command_id, run_id=run_id)}
    return write_call("POST", f"/v1/kv/{segment(namespace)}/batch-put", body, branch=branch)


def kv_query(
    namespace: str,
    filter: Mapping[str, Any] | None = None,
    *,
    projection: Sequence[str] | None = None,
    sort: Sequence[tuple[str, str]] | None = None,
    limit: int = 100,
    cursor: str | None = None,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Page[dict[str, Any]]]:
    """One page of documents matching a DSL filter (`$eq $ne $gt ... $prefix`), projected and sorted."""
    body: dict[str, Any] = {"filter": dict(filter or {}), "limit": limit}
    body |= options(
        projection=None if projection is None else list(projection),
        sort=None if sort is None else [list(pair) for pair in sort],
        cursor=cursor,
    )
    return read_call(
        f"/v1/kv/{segment(namespace)}/query",
        _documents_page,
        token,
        consistent,
        method="POST",
        body=body,
        branch=branch,
        as_of=as_of,
    )


def kv_clear(
    namespace: str,
    *,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Delete every key of the namespace; result `deleted` is how many."""
    return write_call("DELETE", f"/v1/kv/{segment(namespace)}", command_id=command_id, run_id=run_id, branch=branch)


def namespaces(
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[dict[str, int]]:
    """The caller's namespaces (with live keys or a config) and their live key counts, sorted."""
    return read_call("/v1/namespaces", _namespace_counts, token, consistent, branch=branch, as_of=as_of)


def configure_namespace(
    namespace: str,
    *,
    json_schema: Mapping[str, Any] | None = None,
    default_ttl_s: int | None = None,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Replace the namespace's JSON Schema for values and its default TTL (None: none)."""
    body = options(
        json_schema=None if json_schema is None else dict(json_schema),
        default_ttl_s=default_ttl_s,
        command_id=command_id,
        run_id=run_id,
    )
    return write_call("PUT", f"/v1/namespaces/{segment(namespace)}", body, branch=branch)
