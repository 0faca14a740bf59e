"""Invariant 8: an idempotency key is scoped by tenant and bound to its command (type + payload).

Also: the engine checks routing again at apply, so a foreign producer's txn spanning partitions is
rejected `cross_partition` and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from commands import Caller, CommandProducer, KvPut, RunBegin, RunEnd, Txn, TxnKvPut, encode_message, stamp
from eventlog.memory import MemoryLog
from eventlog.partitioner import partition_for
from projections.catalog import new_state
from projections.engine import Engine
from projections.processors import RunSummary, derive
from projections.records import RecordsModel

pytestmark = pytest.mark.anyio

PARTITIONS = 8


def _records(engine: Engine) -> RecordsModel:
    model = engine.state.model("records")
    assert isinstance(model, RecordsModel)
    return model


def _same_partition_namespace(tenant: str, other_tenant: str, namespace: str) -> str:
    """A namespace of `other_tenant` on the partition of `tenant/namespace`."""
    target = partition_for(f"{tenant}/{namespace}".encode(), PARTITIONS)
    for index in range(1000):
        candidate = f"ns{index}"
        if partition_for(f"{other_tenant}/{candidate}".encode(), PARTITIONS) == target:
            return candidate
    raise AssertionError("no colliding namespace found")


async def _engine() -> tuple[MemoryLog, CommandProducer, Engine]:
    log = MemoryLog()
    await log.create_topic("main", PARTITIONS)
    return log, CommandProducer(log, "main"), Engine(log, "main", new_state(PARTITIONS))


async def test_the_same_command_id_of_two_tenants_applies_both() -> None:
    _log, producer, engine = await _engine()
    bob_namespace = _same_partition_namespace("alice", "bob", "notes")
    alice = stamp(KvPut(key="k", value="a"), Caller("alice"), namespace="notes", command_id="cmd-1")
    bob = stamp(KvPut(key="k", value="b"), Caller("bob"), namespace=bob_namespace, command_id="cmd-1")
    placed_alice = await producer.submit(alice)
    placed_bob = await producer.submit(bob)
    assert placed_alice.partition == placed_bob.partition
    await engine.catch_up()
    records = _records(engine)
    alice_view = records.get("alice", "notes", "k", now_ms=0)
    bob_view = records.get("bob", bob_namespace, "k", now_ms=0)
    assert alice_view is not None
    assert alice_view.value == "a"
    assert bob_view is not None
    assert bob_view.value == "b"
    bob_outcome = engine.state.outcome(placed_bob.partition, bob)
    assert bob_outcome is not None
    assert bob_outcome.status == "applied"
    assert bob_outcome.result["key"] == "k"
    assert bob_outcome != engine.state.outcome(placed_alice.partition, alice)


async def test_the_same_key_with_a_different_command_is_rejected_and_changes_nothing() -> None:
    log, producer, engine = await _engine()
    caller = Caller("alice")
    first = stamp(KvPut(key="k", value=1), caller, namespace="notes", command_id="cmd-1")
    other = stamp(KvPut(key="k", value=2), caller, namespace="notes", command_id="cmd-1")
    renamed = stamp(KvPut(key="j", value=1), caller, namespace="notes", command_id="cmd-1")
    placed = await producer.submit(first)
    await engine.catch_up()
    before = engine.state.digests()
    outcomes = []
    for envelope in (other, renamed):
        record_at = await producer.submit(envelope)
        records = await log.read("main", record_at.partition, record_at.offset, max_records=1)
        outcomes.append(engine.state.apply_record(records[0]))
    assert [(o.status, o.reason) for o in outcomes] == [("rejected", "idempotency_key_reused")] * 2
    assert engine.state.digests() == before  # not applied, not remembered
    view = _records(engine).get("alice", "notes", "k", now_ms=0)
    assert view is not None
    assert (view.value, view.version) == (1, 1)
    assert _records(engine).get("alice", "notes", "j", now_ms=0) is None
    looked_up = engine.state.outcome(placed.partition, other)
    assert looked_up is not None
    assert looked_up.reason == "idempotency_key_reused"
    retry = engine.state.outcome(placed.partition, first)
    assert retry is not None
    assert retry.status == "applied"
    assert retry.result["version"] == 1
    # a retry that differs only in who sent it and when is still a retry
    again = stamp(KvPut(key="k", value=1), Caller("alice", agent_id="other"), namespace="notes", command_id="cmd-1")
    assert engine.state.outcome(placed.partition, again) == retry
    assert engine.state.bound_elsewhere(other) is not None
    assert engine.state.bound_elsewhere(again) is None


async def test_a_rebuild_agrees_with_live_state_after_reused_keys() -> None:
    log, producer, engine = await _engine()
    namespaces = {tenant: _same_partition_namespace("alice", tenant, "notes") for tenant in ("bob", "carol")}
    namespaces["alice"] = "notes"
    for tenant, namespace in sorted(namespaces.items()):
        for value in (1, 2, 1):
            envelope = stamp(KvPut(key="k", value=value), Caller(tenant), namespace=namespace, command_id="cmd-1")
            await producer.submit(envelope)
    await engine.catch_up()
    again = Engine(log, "main", new_state(PARTITIONS))
    await again.catch_up()
    assert again.state.digests() == engine.state.digests()
    for tenant, namespace in namespaces.items():
        view = _records(engine).get(tenant, namespace, "k", now_ms=0)
        assert view is not None
        assert (view.value, view.version) == (1, 1)


async def test_a_foreign_txn_spanning_partitions_is_rejected_at_apply() -> None:
    log, producer, engine = await _engine()
    home = partition_for(b"alice/a", PARTITIONS)
    away = next(f"n{i}" for i in range(100) if partition_for(f"alice/n{i}".encode(), PARTITIONS) != home)
    txn = Txn(writes=[TxnKvPut(key="x", value=1), TxnKvPut(namespace=away, key="y", value=2)])
    envelope = stamp(txn, Caller("alice"), namespace="a", command_id="txn-1")
    with pytest.raises(Exception, match="cross_partition"):
        producer.prepare(envelope)
    before = engine.state.digests()
    await log.append("main", home, [encode_message(envelope)])  # a foreign producer ignoring the rule
    await engine.catch_up()
    outcome = engine.state.outcome(home, envelope)
    assert outcome is not None
    assert (outcome.status, outcome.reason) == ("rejected", "cross_partition")
    assert away in (outcome.detail or "")
    assert _records(engine).get("alice", "a", "x", now_ms=0) is None
    assert _records(engine).get("alice", away, "y", now_ms=0) is None
    changed = {name for name, digest in engine.state.digests().items() if before[name] != digest}
    assert changed == {"outcomes"}


async def test_run_summary_derives_for_each_tenant_with_a_shared_command_id() -> None:
    log, producer, engine = await _engine()
    runs = {"alice": "run-1", "bob": _same_partition_namespace("alice", "bob", "run-1")}
    for tenant, run_id in runs.items():
        await producer.submit(stamp(RunBegin(name="r"), Caller(tenant), run_id=run_id, command_id="begin-1"))
    ends = [stamp(RunEnd(status="succeeded"), Caller(t), run_id=r, command_id="end-1") for t, r in runs.items()]
    placed = [await producer.submit(envelope) for envelope in ends]
    assert placed[0].partition == placed[1].partition
    await engine.catch_up()
    for envelope, where in zip(ends, placed, strict=True):
        records = await log.read("main", where.partition, where.offset, max_records=1)
        derived = derive([RunSummary()], engine.state, records[0])
        assert [(d.tenant, d.command.key) for d in derived] == [(envelope.tenant, f"summary/{envelope.run_id}")]


async def test_an_offset_gap_is_skipped_and_going_back_is_an_error() -> None:
    from eventlog.records import Record
    from projections.engine import ApplyOrderError

    state = new_state(1)
    first = stamp(KvPut(key="a", value=1), Caller("t"), namespace="n", command_id="g1")
    second = stamp(KvPut(key="b", value=2), Caller("t"), namespace="n", command_id="g2")
    for offset, envelope in ((0, first), (5, second)):  # offsets 1..4: a producer's transaction markers, say
        message = encode_message(envelope)
        outcome = state.apply_record(Record(0, offset, 1_000, message.key, message.value, message.headers))
        assert outcome.status == "applied"
    assert state.applied == [6]
    message = encode_message(first)
    with pytest.raises(ApplyOrderError, match="offset 3"):
        state.apply_record(Record(0, 3, 1_000, message.key, message.value, message.headers))


async def test_the_worker_fold_skips_an_offset_gap_instead_of_spinning() -> None:
    from eventlog.records import Record
    from projections.processors import FoldProcessors

    class GappedLog(MemoryLog):
        """A log whose partition 0 has no records at offsets 1..3 (say, a producer's transaction markers)."""

        async def read(self, topic: str, partition: int, offset: int, **kwargs: Any) -> list[Record]:
            records = await super().read(topic, partition, offset, **kwargs)
            return [r._replace(offset=r.offset + 3) if r.offset >= 1 else r for r in records]

    log = GappedLog()
    await log.create_topic("main", 1)
    producer = CommandProducer(log, "main")
    for index in range(2):
        await producer.submit(stamp(KvPut(key=f"k{index}", value=index), Caller("t"), namespace="n"))
    fold = FoldProcessors(log, "main", processors=[])
    handed = (await log.read("main", 0, 1, max_records=1))[0]
    assert handed.offset == 4
    assert await asyncio.wait_for(fold.handle(handed), 5.0) == []
    assert fold.state.applied == [5]
