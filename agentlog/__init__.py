"""The agentlog Python SDK: sync and async clients over HTTP, an embedded in-process node, seed 002's `DataStore`.

    from agentlog import connect, DataStore

    with connect("http://127.0.0.1:8000", tenant="acme", agent_id="planner") as client:
        run = client.begin_run(name="plan").result["run_id"]
        client.kv_put("notes", "goal", {"text": "ship it"}, run_id=run)
        client.kv_get("notes", "goal")          # reads see the client's own writes
        DataStore(client).set("greeting", "hello")

    with connect("embedded://./agentlog-data") as client:   # the node runs in this process
        ...

Errors are typed (`ConflictError`, `NotFoundError`, ...; see `agentlog.errors`).
"""

from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient
from agentlog.data_store import DataStore
from agentlog.embedded import AsyncEmbeddedAgentlog, EmbeddedAgentlog, aconnect, connect, embedded_settings
from agentlog.errors import (
    AgentlogError,
    AuthError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    TransportError,
    UnavailableError,
)
from agentlog.memory import Memory
from agentlog.models import (
    Branch,
    ChainCheck,
    Collection,
    Event,
    EventPage,
    Fork,
    HybridSearchHit,
    Lock,
    Page,
    Position,
    Record,
    Run,
    SearchHit,
    StateRecord,
    StoredVector,
    Trace,
    TraceNode,
    WriteResult,
)

__all__ = [
    "AgentlogClient",
    "AgentlogError",
    "AsyncAgentlogClient",
    "AsyncEmbeddedAgentlog",
    "AuthError",
    "Branch",
    "ChainCheck",
    "Collection",
    "ConflictError",
    "DataStore",
    "EmbeddedAgentlog",
    "Event",
    "EventPage",
    "Fork",
    "HybridSearchHit",
    "InvalidRequestError",
    "Lock",
    "Memory",
    "NotFoundError",
    "Page",
    "Position",
    "Record",
    "Run",
    "SearchHit",
    "StateRecord",
    "StoredVector",
    "Trace",
    "TraceNode",
    "TransportError",
    "UnavailableError",
    "WriteResult",
    "aconnect",
    "connect",
    "embedded_settings",
]
