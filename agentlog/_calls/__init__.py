"""The SDK's one place for request building and response parsing, shared by the sync and async clients.

Each public operation is a *builder*: a function taking the operation's arguments and answering a
`Call` (method, path, query, body, how to parse the answer, whether it is a write or a read). The
clients turn builders into methods with `_method` (client.py, aclient.py), so an
operation's signature and docstring are written once, here, and the transports stay a few lines.

The builders live by resource, as the node's routers do: `kv`, `coordination` (state, locks,
transactions), `runs` (events, traces), `vectors`, `branches`, `system`. `call` holds `Call` and the
helpers they share; `session` holds `Session`, what both transports share (identity headers and the
newest consistency token per branch, sent by reads for read-your-writes).

Every operation takes `branch` (None: main), and reads take `as_of` (a cut `0:12,3:40`, `t:<ms>` or
an ISO-8601 time: the answer as of then).
"""

from __future__ import annotations

from agentlog._calls.branches import create_branch, delete_branch, fork_run, get_branch, list_branches
from agentlog._calls.call import DEFAULT_NAMESPACE, Call, segment
from agentlog._calls.coordination import (
    cas,
    lock_acquire,
    lock_get,
    lock_release,
    lock_renew,
    state_get,
    state_list,
    txn,
)
from agentlog._calls.kv import (
    configure_namespace,
    kv_batch_get,
    kv_batch_put,
    kv_clear,
    kv_delete,
    kv_get,
    kv_list,
    kv_put,
    kv_query,
    namespaces,
)
from agentlog._calls.runs import (
    append_event,
    begin_run,
    end_run,
    events,
    get_run,
    list_runs,
    record_trace,
    trace_tree,
    traces,
    verify_run,
)
from agentlog._calls.session import MAIN_BRANCH, USER_AGENT, Session
from agentlog._calls.system import health, status
from agentlog._calls.vectors import (
    create_collection,
    delete_vector,
    get_collection,
    get_vector,
    hybrid_search,
    list_collections,
    search,
    upsert_vector,
)

__all__ = [
    "Call",
    "DEFAULT_NAMESPACE",
    "MAIN_BRANCH",
    "Session",
    "USER_AGENT",
    "append_event",
    "begin_run",
    "cas",
    "configure_namespace",
    "create_branch",
    "create_collection",
    "delete_branch",
    "delete_vector",
    "end_run",
    "events",
    "fork_run",
    "get_branch",
    "get_collection",
    "get_run",
    "get_vector",
    "health",
    "hybrid_search",
    "kv_batch_get",
    "kv_batch_put",
    "kv_clear",
    "kv_delete",
    "kv_get",
    "kv_list",
    "kv_put",
    "kv_query",
    "list_branches",
    "list_collections",
    "list_runs",
    "lock_acquire",
    "lock_get",
    "lock_release",
    "lock_renew",
    "namespaces",
    "record_trace",
    "search",
    "segment",
    "state_get",
    "state_list",
    "status",
    "trace_tree",
    "traces",
    "txn",
    "upsert_vector",
    "verify_run",
]
