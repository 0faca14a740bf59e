"""A seeded random workload of every command family, for digest and rebuild tests."""

from __future__ import annotations

import random

from commands import (
    Caller,
    CollectionCreate,
    Envelope,
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
    VectorUpsert,
    embedding_bytes,
    stamp,
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
from commands.tasks import TaskClaim, TaskComplete, TaskEnqueue, TaskFail

TENANTS = ("acme", "globex")
NAMESPACES = ("default", "cache:api", "files:repo", "notes")


def random_workload(count: int, seed: int) -> list[Envelope]:
    """`count` envelopes mixing kv, state, runs/events and vectors, some of them bound to be rejected."""
    rng = random.Random(seed)
    envelopes: list[Envelope] = []
    for tenant in TENANTS:
        caller = Caller(tenant=tenant, agent_id="setup")
        for namespace in NAMESPACES:
            envelopes.append(
                stamp(CollectionCreate(name="docs", dimension=8, metric="cosine"), caller, namespace=namespace)
            )
        for run in range(4):
            envelopes.append(stamp(RunBegin(name=f"run {run}"), caller, run_id=f"run-{run}"))
    while len(envelopes) < count:
        envelopes.append(_random_command(rng, len(envelopes)))
    return envelopes


def _random_command(rng: random.Random, index: int) -> Envelope:
    caller = Caller(tenant=rng.choice(TENANTS), agent_id=f"agent-{rng.randrange(4)}")
    namespace = rng.choice(NAMESPACES)
    key = f"k{rng.randrange(200)}"
    roll = rng.random()
    if roll < 0.45:
        version = rng.choice([None, None, 0, 1, 2])
        return stamp(
            KvPut(key=key, value={"n": index, "tag": rng.choice("abc")}, if_version=version),
            caller,
            namespace=namespace,
        )
    if roll < 0.55:
        return stamp(KvDelete(key=key), caller, namespace=namespace)
    if roll < 0.7:
        return stamp(
            StateCas(name=f"s{rng.randrange(20)}", expected_version=rng.randrange(4), value=index),
            caller,
            namespace=namespace,
        )
    if roll < 0.8:
        return stamp(EventAppend(event_type="step", payload={"i": index}), caller, run_id=f"run-{rng.randrange(4)}")
    if roll < 0.85:
        return _random_task_command(rng, index, caller, namespace)
    if roll < 0.9:
        return _random_hive_command(rng, index, caller, namespace)
    vector = [rng.uniform(-1, 1) for _ in range(8)]
    return stamp(
        VectorUpsert(
            collection="docs", id=f"v{rng.randrange(50)}", embedding=embedding_bytes(vector), metadata={"i": index}
        ),
        caller,
        namespace=namespace,
    )


def full_mix_workload(count: int, seed: int) -> list[Envelope]:
    """`random_workload` plus every other command: txn, batch put, clear, namespace config, locks,
    traces, run end and expiry, in a seeded mix with some of each bound to be rejected."""
    rng = random.Random(seed)
    envelopes = random_workload(count // 2, seed)
    while len(envelopes) < count:
        envelopes.append(
            _rare_command(rng, len(envelopes)) if rng.random() < 0.6 else _random_command(rng, len(envelopes))
        )
    return envelopes


def _rare_command(rng: random.Random, index: int) -> Envelope:
    caller = Caller(tenant=rng.choice(TENANTS), agent_id=f"agent-{rng.randrange(4)}")
    namespace = rng.choice(NAMESPACES)
    key = f"k{rng.randrange(200)}"
    run_id = f"run-{rng.randrange(6)}"
    roll = rng.randrange(11)
    if roll == 0:
        items = [
            KvItem(key=f"b{rng.randrange(300)}-{n}", value=[index, n], ttl_s=rng.choice([None, 5]))
            for n in range(rng.randrange(1, 6))
        ]
        return stamp(KvBatchPut(items=items), caller, namespace=namespace)
    if roll == 1:
        return stamp(KvClear(), caller, namespace=rng.choice(("cache:api", "notes")))
    if roll == 2:
        schema = rng.choice([None, {"type": "object"}, {"type": "object", "required": ["n"]}])
        return stamp(
            NamespaceConfig(json_schema=schema, default_ttl_s=rng.choice([None, 3600])), caller, namespace=namespace
        )
    if roll == 3:
        return stamp(
            LockAcquire(name=f"lock{rng.randrange(5)}", holder=f"h{rng.randrange(3)}", ttl_s=30),
            caller,
            namespace=namespace,
        )
    if roll == 4:
        token = rng.randrange(1, 6)
        name, holder = f"lock{rng.randrange(5)}", f"h{rng.randrange(3)}"
        if rng.random() < 0.5:
            return stamp(
                LockRenew(name=name, holder=holder, fencing_token=token, ttl_s=30), caller, namespace=namespace
            )
        return stamp(LockRelease(name=name, holder=holder, fencing_token=token), caller, namespace=namespace)
    if roll == 5:
        writes: list[TxnKvPut | TxnKvDelete | TxnStateSet] = [
            TxnKvPut(key=key, value={"txn": index}),
            TxnStateSet(key=f"s{rng.randrange(20)}", value=index),
        ]
        if rng.random() < 0.3:
            writes.append(TxnKvDelete(key=f"k{rng.randrange(200)}"))
        reads = [TxnRead(key=key, version=rng.randrange(3))] if rng.random() < 0.5 else []
        preconditions = [TxnPrecondition(key=f"k{rng.randrange(200)}", exists=rng.random() < 0.5)]
        return stamp(Txn(reads=reads, writes=writes, preconditions=preconditions), caller, namespace=namespace)
    if roll == 6:
        parent = f"t{rng.randrange(index)}" if index and rng.random() < 0.4 else None
        return stamp(
            TraceRecord(
                trace_id=f"t{index}", kind=rng.choice(("tool_call", "decision")), data={"i": index}, parent_id=parent
            ),
            caller,
            run_id=run_id,
        )
    if roll == 7:
        return stamp(RunEnd(status=rng.choice(("succeeded", "failed")), result={"i": index}), caller, run_id=run_id)
    if roll == 8:
        return stamp(RunBegin(name=f"run {index}"), caller, run_id=run_id)
    if roll == 9:
        return stamp(KvExpire(key=key, expected_version=rng.randrange(1, 4)), caller, namespace=namespace)
    return stamp(KvPut(key=f"ttl{rng.randrange(50)}", value=index, ttl_s=1), caller, namespace=namespace)


def _random_task_command(rng: random.Random, index: int, caller: Caller, namespace: str) -> Envelope:
    """Task queue traffic: enqueues, claims with short leases (so some go stale), completes and fails."""
    roll = rng.random()
    task_id = f"t{rng.randrange(15)}"
    if roll < 0.4:
        return stamp(
            TaskEnqueue(task_id=task_id, payload={"i": index}, priority=rng.randrange(3)), caller, namespace=namespace
        )
    if roll < 0.7:
        return stamp(TaskClaim(worker=caller.agent_id or "w", lease_s=1), caller, namespace=namespace)
    claim = rng.randrange(1, 3)  # claim numbers count per task from 1
    if roll < 0.85:
        return stamp(TaskComplete(task_id=task_id, claim=claim, result=index), caller, namespace=namespace)
    return stamp(
        TaskFail(task_id=task_id, claim=claim, error="boom", requeue=rng.random() < 0.5), caller, namespace=namespace
    )


def _random_hive_command(rng: random.Random, index: int, caller: Caller, namespace: str) -> Envelope:
    """Channels, agents and proposals, some bound to be rejected (unknown channel, double vote)."""
    roll = rng.random()
    if roll < 0.1:
        return stamp(ChannelCreate(visibility=rng.choice(["public", "private"])), caller, namespace=namespace)
    if roll < 0.2:
        return stamp(ChannelSubscribe(), caller, namespace=namespace)
    if roll < 0.4:
        return stamp(ChannelShare(kind="kv", ref=f"k{index}", note="n"), caller, namespace=namespace)
    if roll < 0.5:
        return stamp(AgentRegister(name=caller.agent_id or "a", capabilities=["x"]), caller, namespace="agents")
    if roll < 0.65:
        return stamp(AgentHeartbeat(busy=rng.random() < 0.5), caller, namespace="agents")
    if roll < 0.75:
        proposal = ProposalCreate(proposal_id=f"p{rng.randrange(5)}", title="t", quorum=rng.randrange(1, 3))
        return stamp(proposal, caller, namespace=namespace)
    vote = ProposalVote(proposal_id=f"p{rng.randrange(5)}", vote=rng.choice(["yes", "no"]))
    return stamp(vote, caller, namespace=namespace)
