"""Subscriptions: WebSocket `/v1/ws` and SSE `/v1/events/stream` push what the node applies.

Both take the same query: `run`, `namespace`, `prefix` (`namespace/key-prefix`), `channel` (its
`channel.*` records), each repeatable
(none: everything of the caller's tenant), `after` (a cut to resume from: every matching record at
or past it is sent, once) and `include_rejected`. The first message is `{"type": "subscribed",
"cursor": ...}`; every record frame carries its position. A subscriber too slow for its bounded queue
is closed with 1013 (SSE: a `dropped` event) and resumes with `after` = its last cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, WebSocket
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from commands import Caller
from commands.errors import CommandError
from commands.limits import check_key, check_namespace
from projections.cut import CutError, parse_token
from query_api.http.auth import ApiKeys, AuthError, resolve_caller
from query_api.http.deps import QUERY_CUT_CHARS_MAX, CallerDep, NodeDep
from query_api.http.problems import ApiProblem, problem_response
from query_api.node.hub import FILTER_TERMS_MAX, Filter, Hub, Subscriber, TooManySubscribers
from query_api.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["subscriptions"])

#: WebSocket close code for a subscriber dropped because it read too slowly (RFC 6455 "try again later").
CLOSE_TRY_AGAIN = 1013
#: Close code for a subscription refused for bad input, when the server cannot answer with HTTP.
CLOSE_POLICY = 1008


def _cursor(cut: Mapping[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(cut.items()))


def parse_subscription(
    caller: Caller,
    node: Node,
    runs: list[str],
    namespaces: list[str],
    prefixes: list[str],
    after: str | None,
    include_rejected: bool,
    channels: list[str] = [],  # noqa: B006 - read only
) -> tuple[Filter, dict[int, int] | None]:
    """The filter and resume cut of a subscription query; ApiProblem 400 when malformed."""
    if len(runs) + len(namespaces) + len(prefixes) + len(channels) > FILTER_TERMS_MAX:
        detail = f"a subscription names at most {FILTER_TERMS_MAX} runs, namespaces and prefixes"
        raise ApiProblem(400, "invalid", detail)
    pairs: list[tuple[str, str]] = []
    try:
        for namespace in [*namespaces, *channels]:
            check_namespace(namespace)
        for run in runs:
            check_key(run, "run")
        for prefix in prefixes:
            namespace, slash, key_prefix = prefix.partition("/")
            if not slash:
                raise ApiProblem(400, "invalid", f"prefix {prefix[:80]!r} must be namespace/key-prefix")
            check_namespace(namespace)
            pairs.append((namespace, key_prefix))
    except CommandError as error:
        raise ApiProblem(400, "invalid", error.detail) from error
    cut: dict[int, int] | None = None
    if after is not None:
        try:
            cut = parse_token(after, len(node.engine.applied))
        except CutError as error:
            raise ApiProblem(400, "invalid_token", str(error)) from error
    subscription = Filter(
        caller.tenant, frozenset(runs), frozenset(namespaces), tuple(pairs), frozenset(channels), include_rejected
    )
    return subscription, cut


async def _check_reachable(node: Node, cut: dict[int, int] | None) -> None:
    """409 `token_ahead` when `after` names positions past the log's end."""
    if cut is None:
        return
    ends = await node.log.end_offsets(node.settings.topic)
    beyond = {p: o for p, o in cut.items() if o > ends[p]}
    if beyond:
        raise ApiProblem(409, "token_ahead", f"the log has no position {_cursor(beyond)} yet")


def _subscribe(hub: Hub, filter: Filter, cut: dict[int, int] | None) -> Subscriber:
    try:
        return hub.subscribe(filter, cut)
    except TooManySubscribers as error:
        raise ApiProblem(503, "too_many_subscribers", str(error)) from error


@router.websocket("/ws")
async def websocket_subscribe(
    websocket: WebSocket,
    run: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies list defaults
    namespace: Annotated[list[str], Query()] = [],  # noqa: B006
    prefix: Annotated[list[str], Query()] = [],  # noqa: B006
    channel: Annotated[list[str], Query()] = [],  # noqa: B006
    after: Annotated[str | None, Query(max_length=QUERY_CUT_CHARS_MAX)] = None,
    include_rejected: bool = False,
) -> None:
    """Push every applied record the subscription matches, backlog from `after` first, then live."""
    node: Node = websocket.app.state.node
    keys: ApiKeys | None = websocket.app.state.api_keys
    headers = websocket.headers
    try:
        caller = resolve_caller(
            keys,
            headers.get("authorization"),
            headers.get("x-api-key"),
            headers.get("x-tenant"),
            headers.get("x-agent-id"),
            headers.get("x-tool-id"),
        )
        filter, cut = parse_subscription(caller, node, run, namespace, prefix, after, include_rejected, channel)
        await _check_reachable(node, cut)
        subscriber = _subscribe(node.hub, filter, cut)
    except (AuthError, ApiProblem) as error:
        problem = error if isinstance(error, ApiProblem) else ApiProblem(401, "unauthorized", str(error))
        await _deny(websocket, problem)
        return
    try:
        await websocket.accept()
        await websocket.send_bytes(orjson.dumps({"type": "subscribed", "cursor": _cursor(subscriber.after)}))
        sender = asyncio.create_task(_send(websocket, node.hub, subscriber))
        watcher = asyncio.create_task(_watch_receive(websocket))
        done, pending = await asyncio.wait({sender, watcher}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError, RuntimeError):
                await task
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                task.result()
        if subscriber.dropped and websocket.client_state == WebSocketState.CONNECTED:
            with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
                await websocket.close(CLOSE_TRY_AGAIN, "subscriber too slow: resume with after=<last cursor>")
    finally:
        node.hub.unsubscribe(subscriber)


async def _deny(websocket: WebSocket, problem: ApiProblem) -> None:
    """Refuse the handshake with a problem+json HTTP answer (or, if unsupported, accept and close 1008)."""
    response = problem_response(problem.status, problem.code, problem.detail, **problem.extra)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.accept()
        await websocket.close(CLOSE_POLICY, problem.detail[:120])


async def _send(websocket: WebSocket, hub: Hub, subscriber: Subscriber) -> None:
    async for frame in hub.frames(subscriber):
        await websocket.send_bytes(frame.data)


async def _watch_receive(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, so a close is noticed even while nothing is pushed."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.get("/events/stream", include_in_schema=False)
async def sse_subscribe(
    node: NodeDep,
    caller: CallerDep,
    run: Annotated[list[str], Query()] = [],  # noqa: B006 - FastAPI copies list defaults
    namespace: Annotated[list[str], Query()] = [],  # noqa: B006
    prefix: Annotated[list[str], Query()] = [],  # noqa: B006
    channel: Annotated[list[str], Query()] = [],  # noqa: B006
    after: Annotated[str | None, Query(max_length=QUERY_CUT_CHARS_MAX)] = None,
    include_rejected: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=QUERY_CUT_CHARS_MAX)] = None,
) -> StreamingResponse:
    """Server-sent events of every applied record the subscription matches; `id` is the resume cursor.

    Outside the OpenAPI document (like the WebSocket): an endless stream is no request/response pair.
    """
    filter, cut = parse_subscription(
        caller, node, run, namespace, prefix, after if after is not None else last_event_id, include_rejected, channel
    )
    await _check_reachable(node, cut)
    subscriber = _subscribe(node.hub, filter, cut)
    return StreamingResponse(_sse(node.hub, subscriber), media_type="text/event-stream")


async def _sse(hub: Hub, subscriber: Subscriber) -> AsyncIterator[bytes]:
    cursor = dict(subscriber.after)
    frames = hub.frames(subscriber)
    try:
        yield b"event: subscribed\nid: " + _cursor(cursor).encode() + b"\ndata: {}\n\n"
        async for frame in frames:
            cursor[frame.partition] = frame.offset + 1
            yield b"event: record\nid: " + _cursor(cursor).encode() + b"\ndata: " + frame.data + b"\n\n"
        if subscriber.dropped:
            yield b"event: dropped\nid: " + _cursor(cursor).encode() + b"\ndata: {}\n\n"
    finally:
        hub.unsubscribe(subscriber)
        await frames.aclose()
