"""Routing: partition keys, agreement with Kafka's default partitioner, and the txn single-partition rule."""

from __future__ import annotations

import pytest

from commands import (
    Caller,
    CommandError,
    EventAppend,
    KvPut,
    LockAcquire,
    RunBegin,
    StateCas,
    TraceRecord,
    Txn,
    TxnKvPut,
    TxnRead,
    VectorUpsert,
    check_single_partition,
    embedding_bytes,
    partition_key,
    partition_of,
    stamp,
)
from eventlog.partitioner import murmur2, partition_for

CALLER = Caller("acme")

#: Kafka's own murmur2 vectors (clients UtilsTest.testMurmur2).
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def _kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's BuiltInPartitioner.partitionForKey: toPositive(murmur2(key)) % numPartitions."""
    return (KAFKA_MURMUR2.get(key, murmur2(key)) & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize(("key", "expected"), sorted(KAFKA_MURMUR2.items()))
def test_partitioner_matches_kafka_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected
    for partitions in (1, 3, 8, 16, 100):
        assert partition_for(key, partitions) == (expected & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize(
    "command",
    [
        KvPut(key="k", value=1),
        StateCas(name="leader", expected_version=0, value="me"),
        LockAcquire(name="job-42", holder="w1", ttl_s=30),
        VectorUpsert(collection="docs", id="d1", embedding=embedding_bytes([1.0, 2.0])),
        Txn(writes=[TxnKvPut(key="a", value=1)]),
    ],
)
def test_namespaced_commands_route_by_tenant_and_namespace(command: object) -> None:
    envelope = stamp(command, CALLER, namespace="files:repo", run_id="run-1")  # type: ignore[arg-type]
    assert partition_key(envelope) == b"acme/files:repo"
    for partitions in (1, 8, 32):
        assert partition_of(envelope, partitions) == _kafka_partition(b"acme/files:repo", partitions)


@pytest.mark.parametrize(
    "command",
    [RunBegin(), EventAppend(event_type="tool.call"), TraceRecord(trace_id="t1", kind="decision", data={"x": 1})],
)
def test_run_commands_route_by_tenant_and_run(command: object) -> None:
    envelope = stamp(command, CALLER, run_id="run-7")  # type: ignore[arg-type]
    assert partition_key(envelope) == b"acme/run-7"
    assert partition_of(envelope, 8) == _kafka_partition(b"acme/run-7", 8)


def test_same_namespace_different_tenants_route_independently() -> None:
    a = stamp(KvPut(key="k", value=1), Caller("a"), namespace="ns")
    b = stamp(KvPut(key="k", value=1), Caller("b"), namespace="ns")
    assert partition_key(a) != partition_key(b)


def _namespaces_on(partitions: int, *, same: bool) -> tuple[str, str]:
    """Two namespaces of tenant acme that do (or do not) share a partition."""
    first = partition_for(b"acme/ns-0", partitions)
    for i in range(1, 1000):
        if (partition_for(f"acme/ns-{i}".encode(), partitions) == first) == same:
            return "ns-0", f"ns-{i}"
    raise AssertionError("no such namespace")


def test_txn_within_one_namespace_is_always_single_partition() -> None:
    txn = Txn(reads=[TxnRead(key="a", version=1)], writes=[TxnKvPut(namespace="ns", key="b", value=2)])
    envelope = stamp(txn, CALLER, namespace="ns")
    for partitions in (1, 2, 8, 64):
        assert check_single_partition(envelope, partitions) == partition_of(envelope, partitions)


def test_txn_across_partitions_is_refused() -> None:
    home, away = _namespaces_on(8, same=False)
    txn = Txn(writes=[TxnKvPut(key="a", value=1), TxnKvPut(namespace=away, key="b", value=2)])
    envelope = stamp(txn, CALLER, namespace=home)
    with pytest.raises(CommandError) as info:
        check_single_partition(envelope, 8)
    assert info.value.code == "cross_partition"
    assert info.value.status == 422
    assert away in info.value.detail
    assert check_single_partition(envelope, 1) == 0  # one partition: everything shares it


def test_txn_across_namespaces_on_one_partition_is_allowed() -> None:
    home, other = _namespaces_on(8, same=True)
    txn = Txn(reads=[TxnRead(namespace=other, kind="state", key="s", version=3)], writes=[TxnKvPut(key="a", value=1)])
    envelope = stamp(txn, CALLER, namespace=home)
    assert check_single_partition(envelope, 8) == partition_of(envelope, 8)
