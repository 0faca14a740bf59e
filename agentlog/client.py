"""`AgentlogClient`: the synchronous client over `httpx.Client` (HTTP, or any httpx transport)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import TracebackType
from typing import Concatenate, Literal, ParamSpec, TypeVar

import httpx

from agentlog import _calls as calls
from agentlog._calls import Call, Session
from agentlog.errors import TransportError

__all__ = ["AgentlogClient"]

P = ParamSpec("P")
T = TypeVar("T")


def _method(builder: Callable[P, Call[T]]) -> Callable[Concatenate[AgentlogClient, P], T]:
    """A client method that builds the call with `builder` and runs it."""

    @functools.wraps(builder)
    def method(self: AgentlogClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(builder(*args, **kwargs))

    return method


class AgentlogClient:
    """Synchronous agentlog client; reads see this client's own writes (consistency tokens) by default."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        tenant: str | None = None,
        agent_id: str | None = None,
        tool_id: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 10,
        consistency: Literal["default", "strong"] = "default",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = Session(tenant=tenant, agent_id=agent_id, tool_id=tool_id, api_key=api_key)
        #: `strong`: every read of this client is linearizable (the node waits for the log's end first).
        self.consistency = consistency
        params = {"consistency": consistency} if consistency != "default" else None
        self._http = httpx.Client(
            base_url=self.base_url, headers=self.session.headers, params=params, timeout=timeout_s, transport=transport
        )

    @property
    def token(self) -> str | None:
        """The consistency token covering every write this client has seen answered."""
        return self.session.token

    def run(self, call: Call[T]) -> T:
        """Send one call and parse its answer (typed errors on failure)."""
        try:
            response = self._http.request(call.method, call.path, **self.session.request(call))
        except httpx.HTTPError as error:
            raise TransportError(f"{call.method} {self.base_url}{call.path}: {error!r}") from error
        return self.session.finish(call, response.status_code, response.content)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> AgentlogClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"

    # Every operation, built in `_calls` (one signature and docstring for both clients).
    kv_put = _method(calls.kv_put)
    kv_get = _method(calls.kv_get)
    kv_delete = _method(calls.kv_delete)
    kv_list = _method(calls.kv_list)
    kv_batch_get = _method(calls.kv_batch_get)
    kv_batch_put = _method(calls.kv_batch_put)
    kv_query = _method(calls.kv_query)
    kv_clear = _method(calls.kv_clear)
    namespaces = _method(calls.namespaces)
    configure_namespace = _method(calls.configure_namespace)
    state_get = _method(calls.state_get)
    state_list = _method(calls.state_list)
    cas = _method(calls.cas)
    lock_get = _method(calls.lock_get)
    lock_acquire = _method(calls.lock_acquire)
    lock_renew = _method(calls.lock_renew)
    lock_release = _method(calls.lock_release)
    txn = _method(calls.txn)
    begin_run = _method(calls.begin_run)
    end_run = _method(calls.end_run)
    get_run = _method(calls.get_run)
    list_runs = _method(calls.list_runs)
    append_event = _method(calls.append_event)
    events = _method(calls.events)
    verify_run = _method(calls.verify_run)
    record_trace = _method(calls.record_trace)
    traces = _method(calls.traces)
    trace_tree = _method(calls.trace_tree)
    create_collection = _method(calls.create_collection)
    get_collection = _method(calls.get_collection)
    list_collections = _method(calls.list_collections)
    upsert_vector = _method(calls.upsert_vector)
    get_vector = _method(calls.get_vector)
    delete_vector = _method(calls.delete_vector)
    search = _method(calls.search)
    hybrid_search = _method(calls.hybrid_search)
    create_branch = _method(calls.create_branch)
    list_branches = _method(calls.list_branches)
    get_branch = _method(calls.get_branch)
    delete_branch = _method(calls.delete_branch)
    fork_run = _method(calls.fork_run)
    status = _method(calls.status)
    health = _method(calls.health)
