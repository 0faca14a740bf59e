"""Invariant 9 across two Kafka nodes: concurrent CAS writes and `consistency=strong` reads through
both nodes form a linearizable history (each read learns the log's end offsets, then waits for them).

Default reads answer from the node's applied state, so a read on one node may miss a write another
node acknowledged a moment before; only `strong` (or a token from that write) promises to see it.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.consistency.history import record_history
from tests.consistency.linearizability import VersionedRegister, check_by_key
from tests.kafka.support import kafka_settings, unique, warm_up
from tests.kafka_broker import KafkaHandle
from tests.query_api.http_node import serve

pytestmark = pytest.mark.kafka


def test_strong_reads_through_two_kafka_nodes_are_linearizable(kafka_cluster: KafkaHandle) -> None:
    settings = kafka_settings(kafka_cluster.bootstrap_servers, unique("linearizable"))
    with ExitStack() as stack:
        first = stack.enter_context(serve(settings))
        second = stack.enter_context(serve(settings))
        warm_up([first, second])
        history = record_history([first, second], clients=6, operations_per_client=30, seed=3, consistency="strong")
    assert len(history) == 180
    assert sum(1 for op in history if op.output[0] == "ok") >= 10, "too few writes succeeded to mean anything"
    verdict = check_by_key(history, VersionedRegister.initial, VersionedRegister.step)
    assert verdict == dict.fromkeys(sorted({op.key for op in history}), True)
