"""`watch(...)`: subscribe to what a node applies, as an async iterator that resumes by position.

    async for frame in watch("http://127.0.0.1:8000", prefixes=["default/user:"]):
        print(frame.position, frame.command_type, frame.command)

The iterator keeps the subscription's cursor (`Watch.cursor`, one next offset per partition): when
the node drops a slow subscriber (close code 1013) or the connection breaks, it reconnects with
`after=cursor`, so every matching record arrives exactly once, in log order per partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson

from agentlog.errors import TransportError

__all__ = ["Watch", "WatchFrame", "watch"]

#: Reconnects in a row that may fail before the iterator gives up.
RECONNECTS_MAX = 20
#: First wait before a reconnect; doubled per failure up to `RECONNECT_WAIT_S_MAX`.
RECONNECT_WAIT_S = 0.05
RECONNECT_WAIT_S_MAX = 2.0
#: Close codes after which the subscription resumes: going away, server error, restart, try again later.
RESUMABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})


@dataclass(frozen=True, slots=True)
class WatchFrame:
    """One applied record pushed by the node."""

    partition: int
    offset: int
    timestamp_ms: int
    command_id: str
    command_type: str
    run_id: str
    namespace: str | None
    agent_id: str | None
    command: dict[str, Any]
    outcome: str | None
    result: Any
    cursor: str

    @property
    def position(self) -> tuple[int, int]:
        """`(partition, offset)` of the record."""
        return (self.partition, self.offset)


def _cursor_text(cursor: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(cursor.items()))


def _parse_cursor(text: str) -> dict[int, int]:
    cut: dict[int, int] = {}
    for part in filter(None, text.split(",")):
        partition, _, offset = part.partition(":")
        cut[int(partition)] = int(offset)
    return cut


class Watch:
    """A resumable subscription; iterate it (once) for `WatchFrame`s."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        runs: Iterable[str] = (),
        namespaces: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        channels: Iterable[str] = (),
        after: str | None = None,
        include_rejected: bool = False,
        tenant: str | None = None,
        agent_id: str | None = None,
        api_key: str | None = None,
        resume: bool = True,
    ) -> None:
        base = base_url.rstrip("/")
        self._ws_base = "ws" + base[4:] if base.startswith("http") else base
        self._query: list[tuple[str, str]] = [("run", run) for run in runs]
        self._query += [("namespace", namespace) for namespace in namespaces]
        self._query += [("prefix", prefix) for prefix in prefixes]
        self._query += [("channel", channel) for channel in channels]
        if include_rejected:
            self._query.append(("include_rejected", "true"))
        self._headers = {
            name: value
            for name, value in (("X-Tenant", tenant), ("X-Agent-Id", agent_id), ("X-API-Key", api_key))
            if value is not None
        }
        self._cursor: dict[int, int] | None = None if after is None else _parse_cursor(after)
        self.resume = resume
        #: How many times the subscription reconnected (a dropped slow subscriber, a broken connection).
        self.reconnects = 0

    @property
    def cursor(self) -> str | None:
        """The resume cut: every matching record before it has been yielded (None before the first connect)."""
        return None if self._cursor is None else _cursor_text(self._cursor)

    def url(self) -> str:
        """The WebSocket URL of the subscription from the current cursor."""
        query = list(self._query)
        if self._cursor is not None:
            query.append(("after", _cursor_text(self._cursor)))
        return f"{self._ws_base}/v1/ws" + (f"?{urlencode(query)}" if query else "")

    async def __aiter__(self) -> AsyncIterator[WatchFrame]:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        failures = 0
        while True:
            try:
                async with connect(self.url(), additional_headers=self._headers, max_size=None) as socket:
                    failures = 0
                    async for message in socket:
                        body = orjson.loads(message)
                        if body.get("type") == "subscribed":
                            if self._cursor is None:
                                self._cursor = _parse_cursor(body["cursor"])
                            continue
                        yield self._frame(body)
                    return  # the node closed normally: the subscription is over
            except InvalidStatus as error:
                response = error.response
                detail = response.body.decode(errors="replace") if response.body else ""
                raise TransportError(f"subscription refused ({response.status_code}): {detail}") from error
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else 1006
                if not self.resume or code not in RESUMABLE_CLOSE_CODES:
                    raise TransportError(f"subscription closed ({code})") from closed
            except OSError as error:
                if not self.resume:
                    raise TransportError(f"subscription failed: {error}") from error
                failures += 1
                if failures > RECONNECTS_MAX:
                    raise TransportError(f"subscription failed {failures} times: {error}") from error
                await asyncio.sleep(min(RECONNECT_WAIT_S * 2 ** (failures - 1), RECONNECT_WAIT_S_MAX))
            self.reconnects += 1

    def _frame(self, body: dict[str, Any]) -> WatchFrame:
        position = body["position"]
        partition, offset = int(position["partition"]), int(position["offset"])
        assert self._cursor is not None
        self._cursor[partition] = max(self._cursor.get(partition, 0), offset + 1)
        return WatchFrame(
            partition,
            offset,
            body["timestamp_ms"],
            body["command_id"],
            body["command_type"],
            body["run_id"],
            body.get("namespace"),
            body.get("agent_id"),
            body.get("command") or {},
            body.get("outcome"),
            body.get("result"),
            _cursor_text(self._cursor),
        )


def watch(base_url: str = "http://127.0.0.1:8000", **options: Any) -> Watch:
    """A resumable subscription to a node (see `Watch` for the options); iterate it with `async for`."""
    return Watch(base_url, **options)
