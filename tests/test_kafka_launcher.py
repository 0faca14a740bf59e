"""The Kafka launcher against a real broker: produce/consume with aiokafka, LogAppendTime, node faults, CLI."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord, RecordMetadata

from infra.kafka.launcher import (
    KafkaLauncherError,
    KafkaNode,
    ensure_jars,
    kafka_version,
    load_cluster,
    main,
    random_cluster_id,
    server_properties,
    start_cluster,
)

try:
    from tests.kafka_broker import KafkaHandle, kafka_available, start_test_cluster, unavailable
except ImportError:  # tests/ is not a package: pytest put tests/ itself on sys.path
    from kafka_broker import KafkaHandle, kafka_available, start_test_cluster, unavailable  # type: ignore[no-redef,import-not-found,unused-ignore]

LOG_APPEND_TIME = 1  # aiokafka's timestamp_type for TimestampType.LOG_APPEND_TIME
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kafka_1node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    with start_test_cluster(tmp_path_factory.mktemp("kafka1"), nodes=1) as handle:
        yield handle


@pytest.fixture(scope="module")
def kafka_3nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    with start_test_cluster(tmp_path_factory.mktemp("kafka3"), nodes=3) as handle:
        yield handle


def require_launcher_tools() -> None:
    ok, reason = kafka_available()
    if not ok:
        unavailable(reason)


# ------------------------------------------------------------------------------------------ helpers


async def create_topic(bootstrap_servers: str, topic: str, partitions: int, replication: int, min_isr: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        new_topic = NewTopic(
            topic,
            num_partitions=partitions,
            replication_factor=replication,
            topic_configs={"min.insync.replicas": str(min_isr)},
        )
        await admin.create_topics([new_topic])
    finally:
        await admin.close()


async def produce(bootstrap_servers: str, topic: str, values: list[bytes]) -> list[RecordMetadata]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True, request_timeout_ms=30000
    )
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, value, key=value) for value in values]
    finally:
        await producer.stop()


async def consume(bootstrap_servers: str, topic: str, count: int, timeout_s: float = 30.0) -> list[ConsumerRecord]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"{topic}-reader",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < count and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=1000)
            for batch in batches.values():
                records.extend(batch)
    finally:
        await consumer.stop()
    return records


# --------------------------------------------------------------------------------- no broker needed


def test_server_properties_scale_with_node_count(tmp_path: Path) -> None:
    nodes = [KafkaNode(node_id=i, client_port=9000 + i, controller_port=9100 + i, node_dir=tmp_path) for i in range(3)]
    three = server_properties(nodes[1], nodes)
    assert three["controller.quorum.voters"] == "0@127.0.0.1:9100,1@127.0.0.1:9101,2@127.0.0.1:9102"
    assert three["listeners"] == "PLAINTEXT://127.0.0.1:9001,CONTROLLER://127.0.0.1:9101"
    assert three["min.insync.replicas"] == "2"
    assert three["default.replication.factor"] == "3"
    assert three["offsets.topic.replication.factor"] == "3"
    assert three["transaction.state.log.min.isr"] == "2"
    one = server_properties(nodes[0], nodes[:1])
    assert one["min.insync.replicas"] == "1"
    assert one["default.replication.factor"] == "1"
    assert one["transaction.state.log.min.isr"] == "1"
    for props in (one, three):
        assert props["log.message.timestamp.type"] == "LogAppendTime"
        assert props["auto.create.topics.enable"] == "false"
        assert props["unclean.leader.election.enable"] == "false"
        assert props["log.retention.ms"] == "-1"
        assert props["group.initial.rebalance.delay.ms"] == "0"


def test_random_cluster_id_is_a_kafka_uuid() -> None:
    ids = {random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_pom_pins_a_kafka_4_release() -> None:
    assert kafka_version().startswith("4.")


# ------------------------------------------------------------------------------------ real brokers


@pytest.mark.kafka
def test_produce_consume_with_log_append_time(kafka_1node: KafkaHandle) -> None:
    topic = "launcher-smoke"
    values = [f"record-{i}".encode() for i in range(6)]

    async def scenario() -> tuple[list[RecordMetadata], list[ConsumerRecord]]:
        await create_topic(kafka_1node.bootstrap_servers, topic, partitions=2, replication=1, min_isr=1)
        sent = await produce(kafka_1node.bootstrap_servers, topic, values)
        received = await consume(kafka_1node.bootstrap_servers, topic, len(values))
        return sent, received

    before_ms = time.time() * 1000 - 5000
    sent, received = asyncio.run(scenario())
    after_ms = time.time() * 1000 + 5000
    assert {meta.partition for meta in sent} <= {0, 1}
    assert all(meta.timestamp_type == LOG_APPEND_TIME for meta in sent)
    assert sorted(record.value for record in received) == sorted(values)
    assert all(record.timestamp_type == LOG_APPEND_TIME for record in received)
    assert all(before_ms <= record.timestamp <= after_ms for record in received)
    by_offset = {(meta.partition, meta.offset): meta.timestamp for meta in sent}
    assert all(by_offset[(record.partition, record.offset)] == record.timestamp for record in received)


@pytest.mark.kafka
def test_cli_status_reads_the_state_file(kafka_1node: KafkaHandle, capsys: pytest.CaptureFixture[str]) -> None:
    cluster = kafka_1node.require_cluster()
    assert main(["status", "--dir", str(cluster.base_dir)]) == 0
    out = capsys.readouterr().out
    assert f"bootstrap_servers={cluster.bootstrap_servers}" in out
    assert "node 0: alive" in out
    assert load_cluster(cluster.base_dir).pids == cluster.pids


@pytest.mark.kafka
@pytest.mark.slow
def test_acks_all_survives_sigkill_of_one_of_three_nodes(kafka_3nodes: KafkaHandle) -> None:
    cluster = kafka_3nodes.require_cluster()
    servers = cluster.bootstrap_servers
    topic = "launcher-durable"
    asyncio.run(create_topic(servers, topic, partitions=3, replication=3, min_isr=2))
    before = [f"before-{i}".encode() for i in range(10)]
    asyncio.run(produce(servers, topic, before))

    cluster.kill_node(1)
    assert [alive for _, _, alive in cluster.status()] == [True, False, True]
    during = [f"during-{i}".encode() for i in range(10)]
    sent = asyncio.run(produce(servers, topic, during))
    assert len(sent) == len(during)

    cluster.restart_node(1)
    assert all(alive for _, _, alive in cluster.status())
    after = [f"after-{i}".encode() for i in range(5)]
    asyncio.run(produce(servers, topic, after))
    received = asyncio.run(consume(servers, topic, len(before) + len(during) + len(after)))
    assert sorted(record.value for record in received) == sorted(before + during + after)


@pytest.mark.kafka
def test_readiness_timeout_reports_the_log_tail_and_stops_the_node(tmp_path: Path) -> None:
    require_launcher_tools()
    with pytest.raises(KafkaLauncherError, match="not ready in time") as info:
        start_cluster(nodes=1, base_dir=tmp_path / "slow", ready_timeout_s=0.1)
    assert "tail of" in str(info.value)
    cluster = load_cluster(tmp_path / "slow")
    assert not any(alive for _, _, alive in cluster.status())


@pytest.mark.kafka
@pytest.mark.slow
def test_cli_up_daemonizes_and_down_stops(tmp_path: Path) -> None:
    require_launcher_tools()
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONWARNINGS": "error"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "infra.kafka.launcher", *args, "--dir", str(run_dir)]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=REPO_ROOT, env=env)

    try:
        up = cli("up", "--nodes", "1")
        assert up.returncode == 0, up.stderr
        assert "bootstrap_servers=127.0.0.1:" in up.stdout
        status = cli("status")  # the `up` process has exited: the broker must still run
        assert status.returncode == 0, status.stdout + status.stderr
        assert "node 0: alive" in status.stdout
    finally:
        down = cli("down")
    assert down.returncode == 0, down.stderr
    after = cli("status")
    assert after.returncode == 1
    assert "node 0: dead" in after.stdout


@pytest.mark.kafka
def test_maven_failure_names_the_command_and_its_output(tmp_path: Path) -> None:
    require_launcher_tools()
    bad_pom = tmp_path / "pom.xml"
    bad_pom.write_text("<project><broken")
    with pytest.raises(KafkaLauncherError, match="Maven failed") as info:
        ensure_jars(tmp_path / "cache", pom_path=bad_pom)
    message = str(info.value)
    assert "dependency:copy-dependencies -DincludeScope=runtime" in message
    assert "Non-readable POM" in message
    assert not (tmp_path / "cache" / ".complete").exists()
