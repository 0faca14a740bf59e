"""The producer: validated, encoded, routed appends; nothing invalid or cross-partition reaches the log."""

from __future__ import annotations

import asyncio

import pytest

from commands import (
    MAX_BATCH_COMMANDS,
    Caller,
    CommandError,
    CommandProducer,
    Envelope,
    EventAppend,
    KvBatchPut,
    KvItem,
    KvPut,
    RunBegin,
    Txn,
    TxnKvPut,
    VectorUpsert,
    decode_record,
    embedding_bytes,
    partition_of,
    stamp,
)
from eventlog.memory import MemoryLog
from eventlog.partitioner import partition_for

CALLER = Caller("acme", agent_id="agent-1")
TOPIC = "commands"
PARTITIONS = 8


async def _log() -> MemoryLog:
    log = MemoryLog()
    await log.create_topic(TOPIC, PARTITIONS)
    return log


def test_submit_appends_a_record_that_decodes_back_equal() -> None:
    async def main() -> None:
        log = await _log()
        producer = CommandProducer(log, TOPIC)
        upsert = VectorUpsert(collection="docs", id="d/1", embedding=embedding_bytes([0.25, -1.0, 3.0]))
        envelope = stamp(upsert, CALLER, namespace="ns")
        submitted = await producer.submit(envelope)
        assert submitted.command_id == envelope.command_id
        assert submitted.partition == partition_of(envelope, PARTITIONS)
        assert submitted.position == (submitted.partition, 0)
        [record] = await log.read(TOPIC, submitted.partition, submitted.offset)
        assert record.key == b"acme/ns"
        assert record.timestamp_ms == submitted.timestamp_ms
        assert decode_record(record) == envelope
        assert (await producer.submit(envelope)).offset == 1  # the producer does not dedupe: projections do

    asyncio.run(main())


def test_submit_many_groups_by_partition_and_keeps_order() -> None:
    async def main() -> None:
        log = await _log()
        producer = CommandProducer(log, TOPIC)
        envelopes = [
            stamp(KvPut(key=f"k{i}", value=i), CALLER, namespace=f"ns-{i % 5}", command_id=f"c{i}") for i in range(40)
        ]
        envelopes.append(stamp(EventAppend(event_type="step", payload={"n": 1}), CALLER, run_id="run-1"))
        results = await producer.submit_many(envelopes)
        assert [r.command_id for r in results] == [e.command_id for e in envelopes]
        by_partition: dict[int, list[Envelope]] = {}
        for envelope, result in zip(envelopes, results, strict=True):
            assert result.partition == partition_of(envelope, PARTITIONS)
            by_partition.setdefault(result.partition, []).append(envelope)
        ends = await log.end_offsets(TOPIC)
        for partition in range(PARTITIONS):
            records = await log.read(TOPIC, partition, 0) if ends[partition] else []
            assert [decode_record(r) for r in records] == by_partition.get(partition, [])
            if records:  # one atomic append per partition: one timestamp
                assert len({r.timestamp_ms for r in records}) == 1
        assert await producer.submit_many([]) == []

    asyncio.run(main())


def test_batch_put_is_one_record() -> None:
    async def main() -> None:
        log = await _log()
        items = [KvItem(key=f"k{i}", value=i) for i in range(MAX_BATCH_COMMANDS)]
        submitted = await CommandProducer(log, TOPIC).submit(stamp(KvBatchPut(items=items), CALLER))
        assert sum(await log.end_offsets(TOPIC)) == 1
        [record] = await log.read(TOPIC, submitted.partition, 0)
        command = decode_record(record).command
        assert isinstance(command, KvBatchPut)
        assert command.items == items

    asyncio.run(main())


def _away_namespace() -> str:
    home = partition_for(b"acme/home", PARTITIONS)
    return next(f"ns-{i}" for i in range(100) if partition_for(f"acme/ns-{i}".encode(), PARTITIONS) != home)


def test_cross_partition_txn_is_refused_before_anything_is_appended() -> None:
    async def main() -> None:
        log = await _log()
        producer = CommandProducer(log, TOPIC)
        txn = Txn(writes=[TxnKvPut(key="a", value=1), TxnKvPut(namespace=_away_namespace(), key="b", value=2)])
        bad = stamp(txn, CALLER, namespace="home")
        before = await log.end_offsets(TOPIC)
        with pytest.raises(CommandError) as info:
            await producer.submit(bad)
        assert info.value.code == "cross_partition"
        good = stamp(KvPut(key="k", value=1), CALLER, namespace="home")
        with pytest.raises(CommandError):
            await producer.submit_many([good, bad])  # all checked before the first append
        assert await log.end_offsets(TOPIC) == before

    asyncio.run(main())


def test_invalid_commands_never_reach_the_log() -> None:
    async def main() -> None:
        log = await _log()
        producer = CommandProducer(log, TOPIC)
        huge = stamp(KvPut(key="k", value="x" * (1024 * 1024)), CALLER)
        for bad in (huge, {"type": "kv.put"}):
            with pytest.raises(CommandError) as info:
                await producer.submit(bad)  # type: ignore[arg-type]
            assert info.value.code in ("too_large", "invalid")
        ok = stamp(RunBegin(), CALLER)
        with pytest.raises(CommandError) as info:
            await producer.submit_many([ok] * (MAX_BATCH_COMMANDS + 1))
        assert info.value.code == "too_large"
        assert await log.end_offsets(TOPIC) == [0] * PARTITIONS

    asyncio.run(main())


def test_submit_many_caps_bytes_per_partition() -> None:
    async def main() -> None:
        log = await _log()
        big = stamp(KvPut(key="k", value="x" * 1_000_000), CALLER, namespace="one")
        with pytest.raises(CommandError) as info:
            await CommandProducer(log, TOPIC).submit_many([big] * 17)
        assert info.value.code == "too_large"
        assert await log.end_offsets(TOPIC) == [0] * PARTITIONS

    asyncio.run(main())
