"""The Kafka backend's open batches under a paced, racing load: whole appends, dense offsets, no sequence errors."""

from __future__ import annotations

import asyncio
import random

import pytest

from eventlog.kafka import KafkaLog
from eventlog.records import Message
from tests.kafka.support import unique
from tests.kafka_broker import KafkaHandle

pytestmark = [pytest.mark.kafka, pytest.mark.anyio]


async def test_appends_joining_open_batches_stay_whole_dense_and_in_sequence(kafka_cluster: KafkaHandle) -> None:
    # Appends arrive at random moments, so some join a batch just as the idempotent producer drains it
    # (takes its record count for the sequence numbers): each must land whole in exactly one batch.
    log = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    name = unique("open-batches")
    partitions = 4
    try:
        await log.create_topic(name, partitions)
        rng = random.Random(11)
        plans = [
            [(rng.randrange(partitions), rng.randint(1, 4), rng.random() / 500) for _ in range(40)] for _ in range(60)
        ]

        async def appender(writer: int) -> list[tuple[int, int, int, int]]:
            placed = []
            for seq, (partition, size, pause) in enumerate(plans[writer]):
                await asyncio.sleep(pause)
                messages = [Message(f"{writer}:{seq}:{i}".encode()) for i in range(size)]
                result = await log.append(name, partition, messages)
                placed.append((partition, result.base_offset, size, writer * 1000 + seq))
            return placed

        placed = [item for group in await asyncio.gather(*(appender(w) for w in range(60))) for item in group]
        ends = await log.end_offsets(name)
        for partition in range(partitions):
            spans = sorted((offset, size, tag) for p, offset, size, tag in placed if p == partition)
            assert sum(size for _, size, _ in spans) == ends[partition]
            values: list[bytes] = []
            while batch := await log.read(name, partition, len(values), max_records=1000):
                values.extend(record.value for record in batch)
            expected = 0
            for offset, size, tag in spans:
                assert offset == expected, (partition, offset, expected)
                writer, seq = divmod(tag, 1000)
                assert values[offset : offset + size] == [f"{writer}:{seq}:{i}".encode() for i in range(size)]
                expected += size
    finally:
        await log.close()
