"""Embedded mode: a node running in this process, served to the ordinary clients without a socket.

The node is the real thing — `create_app(settings)` with its lifespan (open the log, restore the
snapshot, replay, start the sweeper) — and requests go through `httpx.ASGITransport`, so embedded
and HTTP clients share every line of request building, parsing and error mapping.

- `AsyncEmbeddedAgentlog` runs the node on the caller's event loop; it starts on first use (or
  `await start()` / `async with`) and stops on `aclose()`.
- `EmbeddedAgentlog` (sync) runs the node on a private event loop in a background thread; each
  request is handed to that loop and waited for. It starts in the constructor; `close()` stops it.
- `connect(url)` / `aconnect(url)` pick HTTP or embedded from a URL: `http://host:port`,
  `embedded://./data` (a file-backed log in ./data), `embedded://:memory:` (an in-memory log).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import TYPE_CHECKING, Any, Final, TypeVar

import httpx

from agentlog._calls import Call
from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient

if TYPE_CHECKING:
    from fastapi import FastAPI

    from query_api.node.node import Node
    from query_api.settings import Settings

__all__ = ["AsyncEmbeddedAgentlog", "EmbeddedAgentlog", "aconnect", "connect", "embedded_settings"]

T = TypeVar("T")

#: The base URL embedded clients report (no socket is opened).
EMBEDDED_BASE_URL: Final = "http://agentlog.embedded"
#: The URL scheme of embedded mode in `connect`.
EMBEDDED_SCHEME: Final = "embedded://"
#: How long the sync embedded node may take to start or stop (open the log, replay the tail).
LIFECYCLE_TIMEOUT_S: Final = 120.0


def embedded_settings(url: str) -> Settings:
    """Settings for `embedded://DIR` (a file-backed log in DIR) or `embedded://:memory:` (in memory)."""
    from query_api.settings import Settings

    location = url.removeprefix(EMBEDDED_SCHEME)
    if location in ("", ":memory:"):
        return Settings.model_validate({"log": "memory://"})
    return Settings.model_validate({"log": f"file://{location}"})


def _default_settings() -> Settings:
    """The node's settings from `AGENTLOG_*` variables alone."""
    from query_api.settings import Settings

    return Settings.model_validate({})


def _create_app(settings: Settings) -> FastAPI:
    """The node's app (imported here so that HTTP-only users of the SDK never load the server stack)."""
    from query_api.http.app import create_app

    return create_app(settings)


class _NodeLifespan:
    """Runs an app's lifespan in one task (start-up and shutdown in the same task) until stopped."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Run the lifespan's start-up; raises what start-up raised."""
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._serve(ready, self._stop), name="agentlog-embedded-node")
        await ready

    async def _serve(self, ready: asyncio.Future[None], stop: asyncio.Event) -> None:
        try:
            async with self.app.router.lifespan_context(self.app):
                ready.set_result(None)
                await stop.wait()
        except BaseException as error:
            if ready.done():
                raise
            ready.set_exception(error)

    async def stop(self) -> None:
        """Run the lifespan's shutdown (stop the node, close the log); idempotent."""
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        task, self._task = self._task, None
        await task


class AsyncEmbeddedAgentlog(AsyncAgentlogClient):
    """An `AsyncAgentlogClient` whose node runs in-process on the caller's event loop."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: str | None = None,
        agent_id: str | None = None,
        tool_id: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        self.settings = settings or _default_settings()
        self.app = _create_app(self.settings)
        self._lifespan = _NodeLifespan(self.app)
        self._started = False
        self._start_lock = asyncio.Lock()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        super().__init__(
            EMBEDDED_BASE_URL,
            tenant=tenant,
            agent_id=agent_id,
            tool_id=tool_id,
            api_key=api_key,
            timeout_s=timeout_s,
            transport=transport,
        )

    @property
    def node(self) -> Node:
        """The running node (its log, engine and read models)."""
        if not self._started:
            raise RuntimeError("the embedded node is not running")
        node: Node = self.app.state.node
        return node

    async def start(self) -> None:
        """Start the node (open the log, restore, replay); calls start it on first use anyway."""
        async with self._start_lock:
            if not self._started:
                await self._lifespan.start()
                self._started = True

    async def run(self, call: Call[T]) -> T:
        """Start the node if needed, then send the call through the in-process transport."""
        if not self._started:
            await self.start()
        return await super().run(call)

    async def aclose(self) -> None:
        """Close the client and stop the node."""
        await super().aclose()
        if self._started:
            self._started = False
            await self._lifespan.stop()

    async def __aenter__(self) -> AsyncEmbeddedAgentlog:
        await self.start()
        return self


class _LoopTransport(httpx.BaseTransport):
    """A sync transport that hands each request to an async transport running on another thread's loop."""

    def __init__(self, inner: httpx.AsyncBaseTransport, loop: asyncio.AbstractEventLoop, timeout_s: float) -> None:
        self._inner = inner
        self._loop = loop
        self._timeout_s = timeout_s

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on the loop and wait for the whole answer."""
        content = request.read()

        async def send() -> tuple[int, list[tuple[str, str]], bytes]:
            copy = httpx.Request(request.method, request.url, headers=request.headers, content=content)
            response = await self._inner.handle_async_request(copy)
            try:
                raw = b"".join([chunk async for chunk in response.aiter_raw()])
            finally:
                await response.aclose()
            return response.status_code, response.headers.multi_items(), raw

        future = asyncio.run_coroutine_threadsafe(send(), self._loop)
        try:
            status, headers, raw = future.result(self._timeout_s)
        except FutureTimeoutError as error:
            future.cancel()
            raise httpx.ReadTimeout(f"no answer within {self._timeout_s} s", request=request) from error
        return httpx.Response(status, headers=headers, content=raw, request=request)


class EmbeddedAgentlog(AgentlogClient):
    """An `AgentlogClient` whose node runs in-process, on an event loop in a background thread."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        tenant: str | None = None,
        agent_id: str | None = None,
        tool_id: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10,
    ) -> None:
        self.settings = settings or _default_settings()
        self.app = _create_app(self.settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agentlog-embedded", daemon=True)
        self._thread.start()
        self._lifespan = _NodeLifespan(self.app)
        try:
            self._on_loop(self._lifespan.start())
        except BaseException:
            self._stop_loop()
            raise
        transport = _LoopTransport(httpx.ASGITransport(app=self.app, raise_app_exceptions=False), self._loop, timeout_s)
        super().__init__(
            EMBEDDED_BASE_URL,
            tenant=tenant,
            agent_id=agent_id,
            tool_id=tool_id,
            api_key=api_key,
            timeout_s=timeout_s,
            transport=transport,
        )
        self._closed = False

    @property
    def node(self) -> Node:
        """The running node; touch it only through `call_on_node` (it lives on another thread's loop)."""
        node: Node = self.app.state.node
        return node

    def call_on_node(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the node's loop (e.g. `node.sweep_once()`) and wait for its result."""
        return self._on_loop(coroutine)

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(LIFECYCLE_TIMEOUT_S)

    def close(self) -> None:
        """Close the client, stop the node and its loop thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        super().close()
        try:
            self._on_loop(self._lifespan.stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        """Stop the loop thread, then finish what is left on the loop and close it."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(LIFECYCLE_TIMEOUT_S)
        if self._thread.is_alive():  # pragma: no cover - a wedged node; leave the daemon thread behind
            return
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        if pending:  # gather() of nothing would make (and leak) a default loop in this thread
            with contextlib.suppress(BaseException):
                self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    def __enter__(self) -> EmbeddedAgentlog:
        return self


def connect(
    url: str = "http://127.0.0.1:8000",
    *,
    tenant: str | None = None,
    agent_id: str | None = None,
    tool_id: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 10,
) -> AgentlogClient:
    """A sync client: over HTTP for `http(s)://...`, or an in-process node for `embedded://DIR|:memory:`."""
    identity: dict[str, Any] = {"tenant": tenant, "agent_id": agent_id, "tool_id": tool_id, "api_key": api_key}
    if url.startswith(EMBEDDED_SCHEME):
        return EmbeddedAgentlog(embedded_settings(url), timeout_s=timeout_s, **identity)
    if url.startswith(("http://", "https://")):
        return AgentlogClient(url, timeout_s=timeout_s, **identity)
    raise ValueError(f"cannot connect to {url!r}: use http(s)://host:port or embedded://DIR")


def aconnect(
    url: str = "http://127.0.0.1:8000",
    *,
    tenant: str | None = None,
    agent_id: str | None = None,
    tool_id: str | None = None,
    api_key: str | None = None,
    timeout_s: float = 10,
) -> AsyncAgentlogClient:
    """An async client like `connect`'s (an embedded node starts on first use; `aclose()` stops it)."""
    identity: dict[str, Any] = {"tenant": tenant, "agent_id": agent_id, "tool_id": tool_id, "api_key": api_key}
    if url.startswith(EMBEDDED_SCHEME):
        return AsyncEmbeddedAgentlog(embedded_settings(url), timeout_s=timeout_s, **identity)
    if url.startswith(("http://", "https://")):
        return AsyncAgentlogClient(url, timeout_s=timeout_s, **identity)
    raise ValueError(f"cannot connect to {url!r}: use http(s)://host:port or embedded://DIR")
