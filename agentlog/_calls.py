"""The SDK's one place for request building and response parsing, shared by the sync and async clients.

Each public operation is a *builder*: a function taking the operation's arguments and answering a
`Call` (method, path, query, body, how to parse the answer, whether it is a write or a read). The
clients turn builders into methods with `sync_method`/`async_method` (client.py, aclient.py), so an
operation's signature and docstring are written once, here, and the transports stay a few lines.

`Session` holds what both transports share: identity headers and the newest consistency token. A
write's token is merged into it; a read sends it (unless `consistent=False` or an explicit `token`)
so the node answers only once it has applied the client's own writes (read-your-writes).

Every operation takes `branch` (None: main), and reads take `as_of` (a cut `0:12,3:40`, `t:<ms>` or
an ISO-8601 time: the answer as of then). Offsets differ between branches, so the session keeps one
token per branch and a call sends the token of its own branch.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

import orjson

from agentlog.errors import AgentlogError, InvalidRequestError, error_from_problem
from agentlog.models import (
    Branch,
    ChainCheck,
    Collection,
    Event,
    EventPage,
    Fork,
    Lock,
    Metric,
    Page,
    Record,
    Run,
    RunStatus,
    SearchHit,
    StateRecord,
    StoredVector,
    Trace,
    TraceNode,
    WriteResult,
    from_json,
)

__all__ = ["Call", "Session"]

T = TypeVar("T")

#: The namespace of state records and locks when none is named (commands.DEFAULT_NAMESPACE).
DEFAULT_NAMESPACE: Final = "default"
#: Sent as `User-Agent` by both clients.
USER_AGENT: Final = "agentlog-sdk/0.1.0"
#: The branch a call without `branch` goes to.
MAIN_BRANCH: Final = "main"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP exchange: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: A write: its answer's token is merged into the session's.
    write: bool = False
    #: A read: sends `token`, or the session's token when `consistent`.
    read: bool = False
    token: str | None = None
    consistent: bool = True
    #: What a 404 answers instead of raising NotFoundError (reads of one thing answer None).
    missing: Callable[[], T] | None = None
    #: The branch whose consistency token the call sends and updates (None: main).
    branch: str | None = None


class Session:
    """Identity headers and the newest consistency token (per partition), shared by one client's calls."""

    def __init__(
        self,
        *,
        tenant: str | None = None,
        agent_id: str | None = None,
        tool_id: str | None = None,
        api_key: str | None = None,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
        for name, value in (("X-Tenant", tenant), ("X-Agent-Id", agent_id), ("X-Tool-Id", tool_id)):
            if value is not None:
                headers[name] = value
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        self.headers: dict[str, str] = headers
        self._applied: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    @property
    def token(self) -> str | None:
        """The token covering every write this client has seen answered on main, or None before the first."""
        return self.token_for(None)

    def token_for(self, branch: str | None) -> str | None:
        """The token covering every write this client has seen answered on `branch` (None: main)."""
        with self._lock:
            applied = self._applied.get(branch or MAIN_BRANCH)
            if not applied:
                return None
            return ",".join(f"{p}:{o}" for p, o in sorted(applied.items()))

    def observe(self, token: str, branch: str | None = None) -> None:
        """Merge a write's token (`p:next_offset,...`) on `branch` into the session's; malformed parts are ignored."""
        with self._lock:
            applied = self._applied.setdefault(branch or MAIN_BRANCH, {})
            for part in token.split(","):
                partition, _, offset = part.partition(":")
                if partition.isdigit() and offset.isdigit():
                    p, o = int(partition), int(offset)
                    applied[p] = max(applied.get(p, 0), o)

    def params(self, call: Call[Any]) -> dict[str, str]:
        """The query parameters to send: the call's, plus the consistency token of a read."""
        params = {name: _param(value) for name, value in call.params.items() if value is not None}
        if call.read:
            token = call.token if call.token is not None else (self.token_for(call.branch) if call.consistent else None)
            if token:
                params["token"] = token
        return params

    def request(self, call: Call[Any]) -> dict[str, Any]:
        """The keyword arguments of `httpx.(Async)Client.request` for a call, besides method and path."""
        content = self.content(call)
        headers = None if content is None else {"Content-Type": "application/json"}
        return {"params": self.params(call), "content": content, "headers": headers}

    @staticmethod
    def content(call: Call[Any]) -> bytes | None:
        """The call's JSON body as bytes; InvalidRequestError (status 0) for what JSON cannot carry (NaN, sets)."""
        if call.body is None:
            return None
        try:
            return json.dumps(call.body, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise InvalidRequestError(0, "invalid", f"the request body is not JSON: {error}") from error

    def finish(self, call: Call[T], status: int, content: bytes) -> T:
        """Parse an answer: the typed error for a problem, else the call's result; writes update the token."""
        body = _decode(content)
        if status >= 400:
            if call.write and isinstance(body, dict):
                # A rejected command is in the log too: reads after it should see the state it met.
                write = body.get("write")
                if isinstance(write, dict) and isinstance(write.get("token"), str):
                    self.observe(write["token"], call.branch)
            if status == 404 and call.missing is not None:
                return call.missing()
            raise error_from_problem(status, body, content.decode("utf-8", "replace")[:2000])
        if call.write and isinstance(body, dict) and isinstance(body.get("token"), str):
            self.observe(body["token"], call.branch)
        try:
            return call.parse(body)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            detail = f"unexpected answer to {call.method} {call.path}: {error!r}"
            raise AgentlogError(status, "bad_response", detail) from error


def _decode(content: bytes) -> Any:
    """The JSON of a body, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _param(value: Any) -> str:
    """A query parameter's text (booleans as `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def segment(text: str) -> str:
    """`text` as one URL path segment: everything reserved escaped, and `.`/`..` too (never normalized away)."""
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def _options(**values: Any) -> dict[str, Any]:
    """The named values that are not None (optional body members)."""
    return {name: value for name, value in values.items() if value is not None}


def _write(
    method: str, path: str, body: dict[str, Any] | None = None, *, branch: str | None = None, **params: Any
) -> Call[WriteResult]:
    """A write call answering a `WriteResult`, on `branch` (None: main)."""
    params["branch"] = branch
    return Call(method, path, WriteResult.from_json, params=params, body=body, write=True, branch=branch)


def _read(
    path: str,
    parse: Callable[[Any], T],
    token: str | None,
    consistent: bool,
    *,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    missing: Callable[[], T] | None = None,
    branch: str | None = None,
    as_of: str | None = None,
    **params: Any,
) -> Call[T]:
    """A read call that carries the consistency token of its branch (None: main), as of `as_of` if given."""
    params |= {"branch": branch, "as_of": as_of}
    return Call(
        method,
        path,
        parse,
        params=params,
        body=body,
        read=True,
        token=token,
        consistent=consistent,
        missing=missing,
        branch=branch,
    )


def _none() -> None:
    """The answer of a read of one thing that does not exist."""
    return None


def _records_page(data: Any) -> Page[Record]:
    return Page([from_json(Record, item) for item in data["items"]], data.get("next_cursor"))


def _documents_page(data: Any) -> Page[dict[str, Any]]:
    return Page(list(data["items"]), data.get("next_cursor"))


def _batch_items(data: Any) -> dict[str, Record | None]:
    return {key: (None if item is None else from_json(Record, item)) for key, item in data["items"].items()}


def _namespace_counts(data: Any) -> dict[str, int]:
    return {entry["namespace"]: int(entry["keys"]) for entry in data["namespaces"]}


def _state_page(data: Any) -> Page[StateRecord]:
    return Page([from_json(StateRecord, item) for item in data["items"]], data.get("next_cursor"))


def _runs_page(data: Any) -> Page[Run]:
    return Page([from_json(Run, item) for item in data["items"]], data.get("next_cursor"))


def _events_page(data: Any) -> EventPage:
    return EventPage([from_json(Event, item) for item in data["items"]], data.get("next_from_seq"))


def _traces(data: Any) -> list[Trace]:
    return [from_json(Trace, item) for item in data["items"]]


def _trace_tree(data: Any) -> list[TraceNode]:
    return [TraceNode.from_json(item) for item in data["items"]]


def _json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data


def _batch_put_items(items: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Batch items from `{key: value}` or from item objects (`key`, `value`, `metadata`, `ttl_s`, `if_version`)."""
    if isinstance(items, Mapping):
        return [{"key": key, "value": value} for key, value in items.items()]
    return [dict(item) for item in items]


# -- KV -------------------------------------------------------------------------------------------


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
    body = {"value": value, **_options(metadata=metadata, ttl_s=ttl_s, if_version=if_version)}
    body |= _options(command_id=command_id, run_id=run_id)
    return _write("PUT", f"/v1/kv/{segment(namespace)}/{segment(key)}", body, branch=branch)


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
    return _read(path, partial(from_json, Record), token, consistent, missing=_none, branch=branch, as_of=as_of)


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
    return _write("DELETE", path, if_version=if_version, command_id=command_id, run_id=run_id, branch=branch)


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
    return _read(
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
    return _read(
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
    body = {"items": _batch_put_items(items), **_options(command_id=command_id, run_id=run_id)}
    return _write("POST", f"/v1/kv/{segment(namespace)}/batch-put", body, branch=branch)


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
    body |= _options(
        projection=None if projection is None else list(projection),
        sort=None if sort is None else [list(pair) for pair in sort],
        cursor=cursor,
    )
    return _read(
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
    return _write("DELETE", f"/v1/kv/{segment(namespace)}", command_id=command_id, run_id=run_id, branch=branch)


def namespaces(
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[dict[str, int]]:
    """The caller's namespaces (with live keys or a config) and their live key counts, sorted."""
    return _read("/v1/namespaces", _namespace_counts, token, consistent, branch=branch, as_of=as_of)


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
    body = _options(
        json_schema=None if json_schema is None else dict(json_schema),
        default_ttl_s=default_ttl_s,
        command_id=command_id,
        run_id=run_id,
    )
    return _write("PUT", f"/v1/namespaces/{segment(namespace)}", body, branch=branch)


# -- State, locks, transactions -------------------------------------------------------------------


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
    return _read(path, parse, token, consistent, missing=_none, namespace=namespace, branch=branch, as_of=as_of)


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
    return _read(
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
    body |= _options(command_id=command_id, run_id=run_id)
    return _write("POST", f"/v1/state/{segment(name)}/cas", body, branch=branch)


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
    return _read(
        f"/v1/locks/{segment(name)}",
        parse,
        token,
        consistent,
        missing=_none,
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
    body = {"holder": holder, "ttl_s": ttl_s, "namespace": namespace, **_options(command_id=command_id, run_id=run_id)}
    return _write("POST", f"/v1/locks/{segment(name)}/acquire", body, branch=branch)


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
    body |= _options(command_id=command_id, run_id=run_id)
    return _write("POST", f"/v1/locks/{segment(name)}/renew", body, branch=branch)


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
    body |= _options(command_id=command_id, run_id=run_id)
    return _write("POST", f"/v1/locks/{segment(name)}/release", body, branch=branch)


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
    body |= _options(namespace=namespace, command_id=command_id, run_id=run_id)
    return _write("POST", "/v1/txn", body, branch=branch)


# -- Runs, events, traces -------------------------------------------------------------------------


def begin_run(
    run_id: str | None = None,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    parent_run_id: str | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Begin a run (named by the command id unless `run_id` is given); result has `run_id`."""
    body = _options(
        run_id=run_id,
        name=name,
        metadata=None if metadata is None else dict(metadata),
        parent_run_id=parent_run_id,
        command_id=command_id,
    )
    return _write("POST", "/v1/runs", body, branch=branch)


def end_run(
    run_id: str,
    status: RunStatus = "succeeded",
    *,
    result: Any = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """End a running run with `status` (succeeded, failed, cancelled) and an optional JSON result."""
    body = {"status": status, "result": result, **_options(command_id=command_id)}
    return _write("POST", f"/v1/runs/{segment(run_id)}/end", body, branch=branch)


def get_run(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Run | None]:
    """Run `run_id` (status, metadata, event count, chain head), or None if absent."""
    parse = partial(from_json, Run)
    return _read(f"/v1/runs/{segment(run_id)}", parse, token, consistent, missing=_none, branch=branch, as_of=as_of)


def list_runs(
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 100,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Page[Run]]:
    """One page of the caller's runs in the order they began, optionally of one status."""
    return _read(
        "/v1/runs", _runs_page, token, consistent, status=status, cursor=cursor, limit=limit, branch=branch, as_of=as_of
    )


def append_event(
    run_id: str,
    type: str,
    payload: Any = None,
    *,
    thread_id: str | None = None,
    expected_seq: int | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Append an event to the run's hash chain; result has `seq`, `event_id` and `hash`."""
    body = {"type": type, "payload": payload}
    body |= _options(thread_id=thread_id, expected_seq=expected_seq, command_id=command_id)
    return _write("POST", f"/v1/runs/{segment(run_id)}/events", body, branch=branch)


def events(
    run_id: str,
    *,
    from_seq: int = 1,
    limit: int = 100,
    thread_id: str | None = None,
    agent_id: str | None = None,
    type: str | None = None,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[EventPage]:
    """One page of the run's events from `from_seq`, optionally of one thread, agent or type."""
    return _read(
        f"/v1/runs/{segment(run_id)}/events",
        _events_page,
        token,
        consistent,
        from_seq=from_seq,
        limit=limit,
        thread_id=thread_id,
        agent_id=agent_id,
        type=type,
        branch=branch,
        as_of=as_of,
    )


def verify_run(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[ChainCheck]:
    """Recompute the run's hash chain: ok, or the first event that does not match and why."""
    parse = partial(from_json, ChainCheck)
    return _read(f"/v1/runs/{segment(run_id)}/verify", parse, token, consistent, branch=branch, as_of=as_of)


def record_trace(
    run_id: str,
    kind: str,
    data: Any = None,
    *,
    trace_id: str | None = None,
    parent_id: str | None = None,
    event_id: str | None = None,
    seq: int | None = None,
    command_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Record a typed trace (`tool_call`, `decision`, ...) of the run; result has `trace_id`."""
    body = {"kind": kind, "data": data}
    body |= _options(trace_id=trace_id, parent_id=parent_id, event_id=event_id, seq=seq, command_id=command_id)
    return _write("POST", f"/v1/runs/{segment(run_id)}/traces", body, branch=branch)


def traces(
    run_id: str,
    *,
    kind: str | None = None,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[Trace]]:
    """The run's traces in log order, optionally of one kind."""
    return _read(
        f"/v1/runs/{segment(run_id)}/traces", _traces, token, consistent, kind=kind, branch=branch, as_of=as_of
    )


def trace_tree(
    run_id: str,
    *,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[TraceNode]]:
    """The run's traces as a forest: roots in log order, children nested under their parents."""
    return _read(
        f"/v1/runs/{segment(run_id)}/traces", _trace_tree, token, consistent, tree=True, branch=branch, as_of=as_of
    )


# -- Vectors --------------------------------------------------------------------------------------


def _hits(data: Any) -> list[SearchHit]:
    return [from_json(SearchHit, item) for item in data["hits"]]


def _collections(data: Any) -> list[Collection]:
    return [from_json(Collection, item) for item in data["items"]]


def _embedding(values: bytes | Iterable[float]) -> str | list[float]:
    """An embedding as JSON: float32 LE bytes as base64 (bit-exact), anything iterable as a list of floats."""
    if isinstance(values, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(values)).decode("ascii")
    return [float(value) for value in values]


def create_collection(
    name: str,
    dimension: int,
    metric: Metric = "cosine",
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Create a vector collection of fixed `dimension` and `metric` (again with the same config: a no-op)."""
    body = {"dimension": dimension, "metric": metric, "namespace": namespace}
    body |= _options(command_id=command_id, run_id=run_id)
    return _write("PUT", f"/v1/collections/{segment(name)}", body, branch=branch)


def get_collection(
    name: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[Collection | None]:
    """Collection `name` (dimension, metric, size, memory), or None if absent."""
    parse = partial(from_json, Collection)
    return _read(
        f"/v1/collections/{segment(name)}",
        parse,
        token,
        consistent,
        missing=_none,
        namespace=namespace,
        branch=branch,
        as_of=as_of,
    )


def list_collections(
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[Collection]]:
    """The namespace's vector collections, by name."""
    return _read("/v1/collections", _collections, token, consistent, namespace=namespace, branch=branch, as_of=as_of)


def upsert_vector(
    collection: str,
    id: str,
    embedding: bytes | Iterable[float],
    *,
    metadata: Mapping[str, Any] | None = None,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Insert or replace vector `id` (numbers, a numpy array, or float32 LE bytes) with its metadata."""
    body = {"embedding": _embedding(embedding), "namespace": namespace}
    body |= _options(metadata=None if metadata is None else dict(metadata), command_id=command_id, run_id=run_id)
    return _write("PUT", f"/v1/collections/{segment(collection)}/vectors/{segment(id)}", body, branch=branch)


def get_vector(
    collection: str,
    id: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[StoredVector | None]:
    """Vector `id` of the collection (its embedding and metadata), or None if absent."""
    path = f"/v1/collections/{segment(collection)}/vectors/{segment(id)}"
    return _read(
        path,
        partial(from_json, StoredVector),
        token,
        consistent,
        missing=_none,
        namespace=namespace,
        branch=branch,
        as_of=as_of,
    )


def delete_vector(
    collection: str,
    id: str,
    *,
    namespace: str = DEFAULT_NAMESPACE,
    command_id: str | None = None,
    run_id: str | None = None,
    branch: str | None = None,
) -> Call[WriteResult]:
    """Delete vector `id`; result `deleted` says whether it existed (NotFoundError if the collection does not)."""
    path = f"/v1/collections/{segment(collection)}/vectors/{segment(id)}"
    return _write("DELETE", path, namespace=namespace, command_id=command_id, run_id=run_id, branch=branch)


def search(
    collection: str,
    vector: Iterable[float],
    *,
    k: int = 10,
    filter: Mapping[str, Any] | None = None,
    min_score: float | None = None,
    include_vectors: bool = False,
    namespace: str = DEFAULT_NAMESPACE,
    token: str | None = None,
    consistent: bool = True,
    branch: str | None = None,
    as_of: str | None = None,
) -> Call[list[SearchHit]]:
    """Exact top-`k` vectors by score (ties by id) among those whose metadata match `filter`."""
    body: dict[str, Any] = {"vector": [float(value) for value in vector], "k": k, "namespace": namespace}
    body |= _options(
        filter=None if filter is None else dict(filter),
        min_score=min_score,
        include_vectors=include_vectors or None,
    )
    path = f"/v1/collections/{segment(collection)}/search"
    return _read(path, _hits, token, consistent, method="POST", body=body, branch=branch, as_of=as_of)


# -- Branches -------------------------------------------------------------------------------------


def _branches(data: Any) -> list[Branch]:
    return [from_json(Branch, item) for item in data["items"]]


def _fork(data: Any) -> Fork:
    return from_json(Fork, data)


def create_branch(
    name: str,
    parent: str | None = None,
    *,
    cut: str | None = None,
    time_ms: int | None = None,
    run_id: str | None = None,
    seq: int | None = None,
    token: str | None = None,
    consistent: bool = True,
) -> Call[Branch]:
    """Make branch `name` of `parent` (default main) at a `cut`, a log `time_ms`, or just after event `seq` of `run_id`.

    With none of them, the branch forks at what the parent has applied. Zero-copy: the branch reads
    its parent below the fork cut; writes on either never reach the other.
    """
    by_run = run_id is not None or seq is not None
    if (cut is not None) + (time_ms is not None) + by_run > 1:
        raise InvalidRequestError(0, "invalid", "give one of cut, time_ms, or run_id with seq")
    at: dict[str, Any] | None = None
    if cut is not None:
        at = {"cut": cut}
    elif time_ms is not None:
        at = {"time_ms": time_ms}
    elif by_run:
        at = {"run_id": run_id, "seq": seq}
    body = {"name": name, **_options(at=at)} | ({} if parent is None else {"from": parent})
    return _read("/v1/branches", partial(from_json, Branch), token, consistent, method="POST", body=body, branch=parent)


def list_branches() -> Call[list[Branch]]:
    """Main and every branch of it, by name."""
    return Call("GET", "/v1/branches", _branches)


def get_branch(name: str) -> Call[Branch | None]:
    """Branch `name` (topic, parent, fork cut), or None if absent."""
    return Call("GET", f"/v1/branches/{segment(name)}", partial(from_json, Branch), missing=_none)


def delete_branch(name: str) -> Call[dict[str, Any]]:
    """Delete branch `name` and its own records; ConflictError while branches of it exist."""
    return Call("DELETE", f"/v1/branches/{segment(name)}", _json_object)


def fork_run(
    run_id: str,
    at_seq: int,
    *,
    new_run_id: str | None = None,
    new_branch: str | None = None,
    branch: str | None = None,
    token: str | None = None,
    consistent: bool = True,
) -> Call[Fork]:
    """Fork the run (of `branch`, default main) onto a new branch just after event `at_seq`; answers the branch.

    The run goes on there under the same run id (pass `branch=fork.branch` to its later calls); with
    `new_run_id`, that run is also begun on the new branch with the forked run as its parent.
    """
    body = {"at_seq": at_seq, **_options(new_run_id=new_run_id, branch=new_branch)}
    return _read(f"/v1/runs/{segment(run_id)}/fork", _fork, token, consistent, method="POST", body=body, branch=branch)


# -- System ---------------------------------------------------------------------------------------


def status(*, branch: str | None = None) -> Call[dict[str, Any]]:
    """The node's status (of `branch`): per partition end and applied offsets and lag, digests, newest snapshot."""
    return Call("GET", "/v1/status", _json_object, params={"branch": branch})


def health() -> Call[dict[str, Any]]:
    """Liveness: `{"status": "ok"}` while the node's apply loop runs."""
    return Call("GET", "/health", _json_object)
