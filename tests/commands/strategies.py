"""Hypothesis strategies for every command type, shared by the command tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from commands import (
    COMMAND_TYPES,
    BarrierSet,
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
    MemoryAdd,
    MemoryIndex,
    MemoryInvalidate,
    MemoryMerge,
    MemoryUpdate,
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
from commands.memory import MEMORY_TYPES
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

_memory_ids = st.integers(min_value=1, max_value=2**63 - 1)
_tags = st.lists(st.from_regex(r"[A-Za-z0-9._:@/-]{1,12}", fullmatch=True), max_size=4)
_contents = st.text(min_size=1, max_size=80)
_reasons = st.none() | st.text(max_size=40)
_confidences = st.floats(min_value=0.0, max_value=1.0)
_embedded = st.one_of(st.just({}), st.builds(lambda e, m: {"embedding": e, "model_id": m}, embeddings, ids))
_millis = st.integers(min_value=0, max_value=2**62)


@st.composite
def _memory_add(draw: st.DrawFn) -> MemoryAdd:
    valid_from = draw(st.none() | _millis)
    valid_until = draw(st.none() | _millis)
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        valid_until = valid_from + 1
    return MemoryAdd(
        content=draw(_contents),
        memory_type=draw(st.sampled_from(MEMORY_TYPES)),
        user_id=draw(st.none() | ids),
        agent_id=draw(st.none() | ids),
        session_id=draw(st.none() | ids),
        run_id=draw(st.none() | ids),
        tags=draw(_tags),
        metadata=draw(metadata),
        confidence=draw(_confidences),
        source=draw(ids),
        valid_from=valid_from,
        valid_until=valid_until,
        reason=draw(_reasons),
        **draw(_embedded),
    )


@st.composite
def _memory_merge(draw: st.DrawFn) -> MemoryMerge:
    chosen = draw(st.lists(_memory_ids, min_size=2, max_size=5, unique=True))
    return MemoryMerge(
        ids=chosen[1:], into=chosen[0], content=draw(st.none() | _contents), reason=draw(_reasons), **draw(_embedded)
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
    "barrier.set": st.builds(
        BarrierSet,
        agents=st.none() | st.lists(ids, max_size=3),
        tools=st.none() | st.dictionaries(ids, st.lists(keys, max_size=2), max_size=2),
    ),
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
    "memory.add": _memory_add(),
    "memory.update": st.builds(
        lambda fields, embedded: MemoryUpdate(**fields, **embedded),
        st.fixed_dictionaries(
            {"id": _memory_ids},
            optional={
                "content": _contents,
                "memory_type": st.sampled_from(MEMORY_TYPES),
                "tags": _tags,
                "metadata": metadata,
                "confidence": _confidences,
                "valid_from": _millis,
                "valid_until": _millis,
                "reason": _reasons,
            },
        ),
        _embedded,
    ),
    "memory.invalidate": st.builds(MemoryInvalidate, id=_memory_ids, reason=_reasons, valid_until=st.none() | _millis),
    "memory.merge": _memory_merge(),
    "memory.index": st.builds(
        MemoryIndex,
        lists=st.integers(1, 8),
        centroids=st.binary(min_size=2, max_size=64).map(lambda data: data[: len(data) // 2 * 2]),
        model_id=ids,
    ),
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
