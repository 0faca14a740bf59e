"""Hypothesis strategies for every command type, shared by the command tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from commands import (
    COMMAND_TYPES,
    CollectionCreate,
    EventAppend,
    KvBatchPut,
    KvClear,
    KvDelete,
    KvExpire,
    KvItem,
    KvPut,
    LockAcquire,
    LockRelease,
    LockRenew,
    NamespaceConfig,
    RunBegin,
    RunEnd,
    StateCas,
    TraceRecord,
    Txn,
    TxnKvDelete,
    TxnKvPut,
    TxnPrecondition,
    TxnRead,
    TxnStateSet,
    VectorDelete,
    VectorUpsert,
)
from commands.hive import (
    AgentHeartbeat,
    AgentRegister,
    ChannelCreate,
    ChannelShare,
    ChannelSubscribe,
    ProposalCreate,
    ProposalVote,
)
from commands.runs import TRACE_KINDS
from commands.tasks import PRIORITY_MAX, PRIORITY_MIN, TaskClaim, TaskComplete, TaskEnqueue, TaskFail

__all__ = [
    "COMMANDS",
    "embeddings",
    "envelope_namespaces",
    "ids",
    "item_namespaces",
    "json_values",
    "keys",
    "namespaces",
]

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=16,
)
metadata = st.none() | st.dictionaries(st.text(max_size=8), json_values, max_size=3)
keys = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=24)
ids = st.from_regex(r"[A-Za-z0-9._:@-]{1,16}", fullmatch=True).filter(lambda s: s not in (".", ".."))
namespaces = st.from_regex(r"[A-Za-z0-9._:-]{1,16}", fullmatch=True).filter(lambda s: s not in (".", ".."))
#: Namespaces named by txn items, never equal to one from `envelope_namespaces`.
item_namespaces = namespaces.map(lambda s: f"item.{s}")
#: Namespaces for envelopes in round-trip tests.
envelope_namespaces = namespaces.map(lambda s: f"env.{s}")
versions = st.integers(min_value=0, max_value=2**63 - 1)
positive = st.integers(min_value=1, max_value=2**63 - 1)
ttls = st.none() | st.integers(min_value=1, max_value=3600)
embeddings = st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), min_size=1, max_size=64).map(
    lambda values: np.asarray(values, dtype="<f4").tobytes()
)


def _unique_items(items: list[KvItem]) -> list[KvItem]:
    seen: dict[str, KvItem] = {}
    for item in items:
        seen.setdefault(item.key, item)
    return list(seen.values())


_kv_items = st.builds(
    KvItem, key=keys, value=json_values, metadata=metadata, ttl_s=ttls, if_version=st.none() | versions
)
_txn_writes = st.lists(
    st.one_of(
        st.builds(TxnKvPut, namespace=st.none() | item_namespaces, key=keys, value=json_values, ttl_s=ttls),
        st.builds(TxnKvDelete, namespace=st.none() | item_namespaces, key=keys),
        st.builds(TxnStateSet, namespace=st.none() | item_namespaces, key=keys, value=json_values),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda w: (w.op == "state.set", w.namespace, w.key),
)
_preconditions = st.one_of(
    st.builds(TxnPrecondition, key=keys, exists=st.booleans()),
    st.builds(TxnPrecondition, kind=st.sampled_from(["kv", "state"]), key=keys, version=versions),
)

#: One strategy per command type name.
COMMANDS: dict[str, st.SearchStrategy[Any]] = {
    "kv.put": st.builds(
        KvPut, key=keys, value=json_values, metadata=metadata, ttl_s=ttls, if_version=st.none() | versions
    ),
    "kv.delete": st.builds(KvDelete, key=keys, if_version=st.none() | versions),
    "kv.batch_put": st.builds(KvBatchPut, items=st.lists(_kv_items, min_size=1, max_size=4).map(_unique_items)),
    "kv.clear": st.just(KvClear()),
    "ns.config": st.builds(NamespaceConfig, json_schema=st.none() | st.just({"type": "object"}), default_ttl_s=ttls),
    "kv.expire": st.builds(KvExpire, key=keys, expected_version=positive),
    "state.cas": st.builds(StateCas, name=keys, expected_version=versions, value=json_values),
    "lock.acquire": st.builds(LockAcquire, name=keys, holder=ids, ttl_s=st.integers(1, 60)),
    "lock.renew": st.builds(LockRenew, name=keys, holder=ids, fencing_token=positive, ttl_s=st.integers(1, 60)),
    "lock.release": st.builds(LockRelease, name=keys, holder=ids, fencing_token=positive),
    "txn": st.builds(
        Txn,
        reads=st.lists(
            st.builds(TxnRead, kind=st.sampled_from(["kv", "state"]), key=keys, version=versions), max_size=3
        ),
        writes=_txn_writes,
        preconditions=st.lists(_preconditions, max_size=3),
    ),
    "run.begin": st.builds(RunBegin, name=st.none() | keys, metadata=metadata, parent_run_id=st.none() | ids),
    "run.end": st.builds(RunEnd, status=st.sampled_from(["succeeded", "failed", "cancelled"]), result=json_values),
    "event.append": st.builds(
        EventAppend,
        event_type=ids,
        payload=json_values,
        thread_id=st.none() | ids,
        expected_seq=st.none() | versions,
    ),
    "trace.record": st.builds(
        TraceRecord,
        trace_id=ids,
        kind=st.sampled_from(TRACE_KINDS),
        data=json_values,
        event_id=st.none() | ids,
        seq=st.none() | positive,
        parent_id=st.none() | ids,
    ),
    "collection.create": st.builds(
        CollectionCreate,
        name=ids,
        dimension=st.integers(1, 4096),
        metric=st.sampled_from(["cosine", "dot", "euclidean"]),
    ),
    "vector.upsert": st.builds(VectorUpsert, collection=ids, id=keys, embedding=embeddings, metadata=metadata),
    "vector.delete": st.builds(VectorDelete, collection=ids, id=keys),
    "task.enqueue": st.builds(
        TaskEnqueue, task_id=ids, payload=json_values, priority=st.integers(PRIORITY_MIN, PRIORITY_MAX)
    ),
    "task.claim": st.builds(TaskClaim, worker=ids, lease_s=st.integers(1, 3_600)),
    "task.complete": st.builds(TaskComplete, task_id=ids, claim=positive, result=json_values),
    "channel.create": st.builds(
        ChannelCreate, visibility=st.sampled_from(["public", "private"]), description=st.text(max_size=20)
    ),
    "channel.subscribe": st.just(ChannelSubscribe()),
    "channel.share": st.builds(
        ChannelShare, kind=ids, ref=st.text(min_size=1, max_size=20), note=st.text(max_size=20), data=json_values
    ),
    "agent.register": st.builds(
        AgentRegister,
        name=st.text(min_size=1, max_size=20),
        agent_type=ids,
        capabilities=st.lists(ids, max_size=3),
        metadata=metadata,
    ),
    "agent.heartbeat": st.builds(AgentHeartbeat, busy=st.booleans()),
    "proposal.create": st.builds(
        ProposalCreate, proposal_id=ids, title=st.text(min_size=1, max_size=20), quorum=positive
    ),
    "proposal.vote": st.builds(ProposalVote, proposal_id=ids, vote=st.sampled_from(["yes", "no"])),
    "task.fail": st.builds(TaskFail, task_id=ids, claim=positive, error=st.text(max_size=20), requeue=st.booleans()),
}

assert set(COMMANDS) == set(COMMAND_TYPES), "every command type needs a strategy"
