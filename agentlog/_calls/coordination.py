"""The builders of coordination: state records with compare-and-set, locks, transactions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

from agentlog._calls.call import DEFAULT_NAMESPACE, Call, none, options, read_call, segment, write_call
from agentlog.models import Lock, Page, StateRecord, WriteResult, from_json

__all__ = ["cas", "lock_acquire", "lock_get", "lock_release", "lock_renew", "state_get", "state_list", "txn"]


def _state_page(data: Any) -> Page[StateRecord]:
    return Page([from_json(StateRecord, item) for item in data["items"]], data.get("next_cursor"))


def state_get(
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[StateRecord | None]:
    """The state record `name` with its version, or None if absent."""
    path = f"/v1/state/{segment(name)}"
    parse = partial(from_json, StateRecord)
    return read_call(path, parse, token, consistent, missing=none, namespace=namespace, branch=branch, as_of=as_of)


def state_list(
    prefix: str = "",
    cursor: str | None = None,
    limit: int = 100,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Page[StateRecord]]:
    """One page of the namespace's state records in name order, from after `cursor`."""
    return read_call(
        "/v1/state",
        _state_page,
        token,
        consistent,
        namespace=namespace,
        prefix=prefix or None,
        cursor=cursor,
        limit=limit,
        branch=branch,
        as_of=as_of,
    )


def cas(
    name: str,
    expected_version: int,
    value: Any,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Set state `name` to `value` iff it is at `expected_version` (0 = must not exist); ConflictError if not."""
    body = {"expected_version": expected_version, "value": value, "namespace": namespace}
    body |= options(command_id=command_id, run_id=run_id)
    return write_call("POST", f"/v1/state/{segment(name)}/cas", body, branch=branch)


def lock_get(
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Lock | None]:
    """Lock `name` (holder, fencing token, lease end, held now?), or None if absent."""
    parse = partial(from_json, Lock)
    return read_call(
        f"/v1/locks/{segment(name)}",
        parse,
        token,
        consistent,
        missing=none,
        namespace=namespace,
        branch=branch,
        as_of=as_of,
    )


def lock_acquire(
    name: str,
    holder: str,
    ttl_s: int,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Take lock `name` for `ttl_s` seconds; result has `fencing_token`; ConflictError `lock_held` if taken."""
    body = {"holder": holder, "ttl_s": ttl_s, "namespace": namespace, **options(command_id=command_id, run_id=run_id)}
    return write_call("POST", f"/v1/locks/{segment(name)}/acquire", body, branch=branch)


def lock_renew(
    name: str,
    holder: str,
    fencing_token: int,
    ttl_s: int,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Extend the holder's lease to `ttl_s` from now; the fencing token stays the same."""
    body = {"holder": holder, "fencing_token": fencing_token, "ttl_s": ttl_s, "namespace": namespace}
    body |= options(command_id=command_id, run_id=run_id)
    return write_call("POST", f"/v1/locks/{segment(name)}/renew", body, branch=branch)


def lock_release(
    name: str,
    holder: str,
    fencing_token: int,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Free the holder's lock, if `fencing_token` is still current."""
    body = {"holder": holder, "fencing_token": fencing_token, "namespace": namespace}
    body |= options(command_id=command_id, run_id=run_id)
    return write_call("POST", f"/v1/locks/{segment(name)}/release", body, branch=branch)


def txn(
    *,
    reads: Iterable[Mapping[str, Any]] = (),
    writes: Iterable[Mapping[str, Any]] = (),
    preconditions: Iterable[Mapping[str, Any]] = (),
    namespace: str | None = None,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """All `writes` apply iff every read is at its version and every precondition holds; else ConflictError.

    Items are JSON objects: reads `{kind, namespace, key, version}`, writes `{op: kv.put|kv.delete|state.set,
    namespace, key, value, ...}`, preconditions `{kind, namespace, key, exists | version}`.
    """
    body: dict[str, Any] = {
        "reads": [dict(item) for item in reads],
        "writes": [dict(item) for item in writes],
        "preconditions": [dict(item) for item in preconditions],
    }
    body |= options(namespace=namespace, command_id=command_id, run_id=run_id)
    return write_call("POST", "/v1/txn", body, branch=branch)
