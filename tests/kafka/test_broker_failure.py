"""Three brokers, replication 3, min.insync.replicas 2, acks=all: kill -9 a broker during writes, lose nothing."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.kafka.launcher import KafkaCluster, start_cluster
from tests.kafka.support import clients, final_token, kafka_settings, read_back, unique, wait_equal_cuts, warm_up
from tests.kafka_broker import choose_backend, unavailable
from tests.query_api.http_node import serve

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

#: Faster failure detection than Kafka's defaults (9 s session, 30 s replica lag), so failover fits a test.
FAST_FAILOVER = {
    "broker.session.timeout.ms": "3000",
    "broker.heartbeat.interval.ms": "500",
    "replica.lag.time.max.ms": "5000",
}


@pytest.fixture(scope="module")
def three_brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """A 3-broker KRaft cluster for this module (launcher backend only: the test kills brokers)."""
    if choose_backend(3) != "launcher":
        unavailable("the broker failure test needs the launcher backend")
    cluster = start_cluster(
        nodes=3,
        base_dir=tmp_path_factory.mktemp("kafka3") / "cluster",
        heap_mb=384,
        ready_timeout_s=180.0,
        extra_properties=FAST_FAILOVER,
    )
    try:
        yield cluster
    finally:
        cluster.stop(timeout_s=5.0)  # a broker short of its quorum may linger in controlled shutdown: then SIGKILL


def busiest_leader(servers: str, topic: str) -> int:
    """The broker id leading most partitions of `topic`."""

    async def describe() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            [described] = await admin.describe_topics([topic])
            leaders = collections.Counter(int(p["leader"]) for p in described["partitions"])
            return leaders.most_common(1)[0][0]
        finally:
            await admin.close()

    return asyncio.run(describe())


def test_acknowledged_writes_survive_kill_9_of_a_broker(three_brokers: KafkaCluster, tmp_path: Path) -> None:
    servers = three_brokers.bootstrap_servers
    topic = unique("brokers")
    settings = kafka_settings(servers, topic)
    acked: list[tuple[str, int, str]] = []  # (key, version, token)
    failures: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(base_url: str, name: str) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=90, headers={"X-Tenant": "dur"}) as client:
                seq = 0
                while not stop.is_set():
                    key = f"{name}-{seq}"
                    seq += 1
                    try:
                        response = client.put(f"/v1/kv/ns{seq % 5}/{key}", json={"value": {"seq": seq}})
                    except httpx.HTTPError as error:
                        failures.append(repr(error))
                        continue
                    if response.status_code == 200:
                        body = response.json()
                        with lock:
                            acked.append((f"ns{seq % 5}/{key}", body["result"]["version"], body["token"]))
                    else:
                        failures.append(f"{response.status_code} {response.text[:200]}")
        except BaseException as error:
            errors.append(error)

    with serve(settings) as url_a, serve(settings) as url_b:
        warm_up([url_a, url_b])
        threads = [
            threading.Thread(target=writer, args=(url, f"{side}{n}"))
            for side, url in (("a", url_a), ("b", url_b))
            for n in range(3)
        ]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 60
            while len(acked) < 200 and time.monotonic() < deadline and not errors:
                time.sleep(0.05)
            victim = busiest_leader(servers, topic)
            before = len(acked)
            three_brokers.kill_node(victim)
            time.sleep(8)  # writes go on through failover (session timeout 3 s)
            after_kill = len(acked) - before
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert errors == [], errors
        assert before >= 200, f"only {before} writes acknowledged before the kill"
        assert after_kill > 0, f"no write acknowledged after broker {victim} died: {failures[-3:]}"

        token = final_token([t for _, _, t in acked])
        started = time.monotonic()
        wait_equal_cuts([url_a, url_b], timeout_s=60)
        with clients([url_a, url_b], "dur") as (a, b):
            for client in (a, b):
                missing = []
                for path, version, _ in acked:
                    namespace, key = path.split("/", 1)
                    response = read_back(client, namespace, key, token)
                    if response.status_code != 200 or response.json()["version"] != version:
                        missing.append((path, response.status_code))
                assert missing == [], f"{len(missing)} of {len(acked)} acknowledged writes lost: {missing[:5]}"
        print(f"verified {len(acked)} keys on 2 nodes in {time.monotonic() - started:.1f} s")
        print(f"broker {victim} killed: {before} acked before, {after_kill} after, {len(failures)} refused/timed out")
