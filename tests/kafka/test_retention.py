"""The Kafka reader when retention moved a partition's start: a named error, never a silent spin.

Also the engine on such a partition: its apply loop stops with that error, so `/health` says why.
"""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.structs import TopicPartition

from eventlog.errors import RecordsDeletedError
from eventlog.kafka import KafkaLog
from eventlog.records import Message
from projections.catalog import new_state
from projections.engine import Engine
from tests.kafka_broker import KafkaHandle

pytestmark = [pytest.mark.anyio, pytest.mark.kafka]


async def test_reading_below_a_moved_start_names_the_new_start(kafka_cluster: KafkaHandle) -> None:
    log = await KafkaLog.open(kafka_cluster.bootstrap_servers)
    topic = f"retention-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_cluster.bootstrap_servers)
    await admin.start()
    try:
        await log.create_topic(topic, 1)
        for index in range(5):
            await log.append(topic, 0, [Message(f"v{index}".encode(), b"k", (("v", b"1"),))])
        tp = TopicPartition(log.kafka_topic(topic), 0)
        await admin.delete_records({tp: RecordsToDelete(before_offset=3)}, timeout_ms=10_000)
        with pytest.raises(RecordsDeletedError) as caught:
            await log.read(topic, 0, 0, max_records=10, wait_ms=1_000)
        assert (caught.value.offset, caught.value.start) == (0, 3)
        assert "retention" in str(caught.value)
        kept = await log.read(topic, 0, 3, max_records=10, wait_ms=1_000)
        assert [record.offset for record in kept] == [3, 4]

        engine = Engine(log, topic, new_state(1))
        engine.start()
        assert not await engine.wait_for({0: 5}, 10.0)  # the apply loop stops instead of waiting forever
        assert isinstance(engine.error, RecordsDeletedError)
        await engine.stop()
    finally:
        await admin.close()
        await log.close()
