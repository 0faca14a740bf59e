"""The two recorders, async `Recorder` and `SyncRecorder`: they drive the core's effects with a client."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from agentlog._calls import Call
from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient
from agentlog.models import WriteResult
from agentlog.replay.cassette import Cassette
from agentlog.replay.core import Core, Invoke, Mode, Op
from agentlog.replay.diff import Divergence

__all__ = ["Recorder", "SyncRecorder"]

T = TypeVar("T")


class _RecorderBase:
    """What both recorders share: the run, the mode and the step counter (in `Core`)."""

    def __init__(
        self, run_id: str, mode: Mode, cassette: Cassette | None, branch: str | None, has_client: bool
    ) -> None:
        if mode == "record" and not has_client:
            raise ValueError("record mode needs a client")
        self._core = Core(run_id, mode, cassette, branch)

    @property
    def run_id(self) -> str:
        """The run this recorder records or replays."""
        return self._core.run_id

    @property
    def mode(self) -> Mode:
        """`record` or `replay`."""
        return self._core.mode

    @property
    def steps(self) -> int:
        """Steps issued so far."""
        return self._core.step


class Recorder(_RecorderBase):
    """Async recorder of one run: record mode logs every step; replay mode serves them from the cassette."""

    def __init__(
        self,
        client: AsyncAgentlogClient | AgentlogClient | None,
        run_id: str,
        mode: Mode = "record",
        cassette: Cassette | None = None,
        *,
        branch: str | None = None,
    ) -> None:
        super().__init__(run_id, mode, cassette, branch, client is not None)
        self.client = client

    async def _send(self, call: Call[WriteResult]) -> WriteResult:
        """Send a write with the async client, or the sync one in a thread."""
        client = self.client
        if isinstance(client, AsyncAgentlogClient):
            return await client.run(call)
        assert client is not None
        return await asyncio.to_thread(client.run, call)

    async def _drive(self, op: Op[T]) -> T:
        """Run an op's effects: await calls of `fn` (sync or async) and writes."""
        value: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = op.throw(failure) if failure is not None else op.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, failure = None, None
            try:
                if isinstance(effect, Invoke):
                    value = effect.fn(effect.argument)
                    if inspect.isawaitable(value):
                        value = await value
                else:
                    value = await self._send(effect.call)
            except Exception as error:
                failure = error

    async def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any | Awaitable[Any]]) -> Any:
        """Call tool `fn(args)` and log it (record), or answer its recorded output without calling it (replay)."""
        return await self._drive(self._core.tool_call(name, args, fn))

    async def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any | Awaitable[Any]]) -> Any:
        """Log the model input, call `fn(prompt)`, log its output (record); or answer the recorded output (replay)."""
        return await self._drive(self._core.model_call(model, prompt, fn))

    async def event(self, event_type: str, payload: Any = None, *, thread_id: str | None = None) -> dict[str, Any]:
        """Append an event to the run's chain (record); answers the write's result (`seq`, `hash`)."""
        return await self._drive(self._core.event(event_type, payload, thread_id))

    async def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl_s: int | None = None,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Write a kv record attached to the run (`if_version`: only at that version); answers its result."""
        return await self._drive(self._core.put(namespace, key, value, metadata, ttl_s, if_version))

    async def trace(self, kind: str, data: Any = None, *, parent: int | None = None) -> str:
        """Record a typed trace (decision, citation, confidence, assumption); `parent` is a step number."""
        return await self._drive(self._core.trace(kind, data, parent))

    def finish(self) -> Divergence | None:
        """The replay's divergence (None in record mode or when the agent matched every recorded step)."""
        return self._core.finish()


class SyncRecorder(_RecorderBase):
    """Synchronous recorder of one run, for synchronous agents and `AgentlogClient` (same steps as `Recorder`)."""

    def __init__(
        self,
        client: AgentlogClient | None,
        run_id: str,
        mode: Mode = "record",
        cassette: Cassette | None = None,
        *,
        branch: str | None = None,
    ) -> None:
        super().__init__(run_id, mode, cassette, branch, client is not None)
        self.client = client

    def _drive(self, op: Op[T]) -> T:
        """Run an op's effects: call `fn` and send writes, synchronously."""
        value: Any = None
        failure: BaseException | None = None
        while True:
            try:
                effect = op.throw(failure) if failure is not None else op.send(value)
            except StopIteration as stop:
                result: T = stop.value
                return result
            value, failure = None, None
            try:
                if isinstance(effect, Invoke):
                    value = effect.fn(effect.argument)
                    if inspect.isawaitable(value):
                        raise TypeError("SyncRecorder calls synchronous functions only; use Recorder")
                else:
                    assert self.client is not None
                    value = self.client.run(effect.call)
            except Exception as error:
                failure = error

    def tool_call(self, name: str, args: Any, fn: Callable[[Any], Any]) -> Any:
        """Call tool `fn(args)` and log it (record), or answer its recorded output without calling it (replay)."""
        return self._drive(self._core.tool_call(name, args, fn))

    def model_call(self, model: str, prompt: Any, fn: Callable[[Any], Any]) -> Any:
        """Log the model input, call `fn(prompt)`, log its output (record); or answer the recorded output (replay)."""
        return self._drive(self._core.model_call(model, prompt, fn))

    def event(self, event_type: str, payload: Any = None, *, thread_id: str | None = None) -> dict[str, Any]:
        """Append an event to the run's chain (record); answers the write's result (`seq`, `hash`)."""
        return self._drive(self._core.event(event_type, payload, thread_id))

    def put(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        metadata: Mapping[str, Any] | None = None,
        ttl_s: int | None = None,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Write a kv record attached to the run (`if_version`: only at that version); answers its result."""
        return self._drive(self._core.put(namespace, key, value, metadata, ttl_s, if_version))

    def trace(self, kind: str, data: Any = None, *, parent: int | None = None) -> str:
        """Record a typed trace (decision, citation, confidence, assumption); `parent` is a step number."""
        return self._drive(self._core.trace(kind, data, parent))

    def finish(self) -> Divergence | None:
        """The replay's divergence (None in record mode or when the agent matched every recorded step)."""
        return self._core.finish()
