"""Replicated nodes on one Kafka topic: equal digests at equal cuts, tokens across nodes, kill -9 and restart."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import httpx
import pytest

from eventlog.kafka import KafkaLog
from query_api.node.node import open_topic
from tests.kafka.support import (
    PARTITIONS,
    NodeProcess,
    clients,
    final_token,
    kafka_settings,
    mixed_workload,
    read_back,
    unique,
    wait_equal_cuts,
    warm_up,
)
from tests.kafka_broker import KafkaHandle
from tests.query_api.http_node import serve

pytestmark = pytest.mark.kafka


def run_workloads(base_urls: list[str], tenant: str, rounds: int, threads_per_node: int = 2) -> list[str]:
    """Mixed workloads through every node at once (threads); returns all write tokens."""
    tokens: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(base_url: str, prefix: str) -> None:
        try:
            with httpx.Client(base_url=base_url, timeout=60, headers={"X-Tenant": tenant}) as client:
                found = mixed_workload(client, prefix, rounds)
            with lock:
                tokens.extend(found)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(url, f"n{n}t{t}"))
        for n, url in enumerate(base_urls)
        for t in range(threads_per_node)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [], errors
    return tokens


def test_nodes_racing_to_create_the_topic_both_open_it(kafka_cluster: KafkaHandle) -> None:
    topic = unique("race")

    async def race() -> None:
        first, second = await asyncio.gather(
            KafkaLog.open(kafka_cluster.bootstrap_servers), KafkaLog.open(kafka_cluster.bootstrap_servers)
        )
        try:
            infos = await asyncio.gather(open_topic(first, topic, 3), open_topic(second, topic, 3))
            assert [(info.name, info.partitions) for info in infos] == [(topic, 3), (topic, 3)]
            again = await open_topic(second, topic, 5)  # present: opened as it is, never re-created
            assert again.partitions == 3
        finally:
            await asyncio.gather(first.close(), second.close())

    asyncio.run(race())


def test_two_nodes_fed_through_both_hold_equal_state(kafka_cluster: KafkaHandle) -> None:
    topic = unique("replicas")
    settings = kafka_settings(kafka_cluster.bootstrap_servers, topic)
    with ExitStack() as stack:
        # Both nodes start at once on a topic that does not exist yet: one creates it, the other opens it.
        managers = [serve(settings), serve(settings)]
        urls: list[str] = []
        lock = threading.Lock()

        def start(manager: AbstractContextManager[str]) -> None:
            url = manager.__enter__()
            with lock:
                urls.append(url)
                stack.push(manager.__exit__)

        starters = [threading.Thread(target=start, args=(manager,)) for manager in managers]
        for starter in starters:
            starter.start()
        for starter in starters:
            starter.join()
        assert len(urls) == 2, "a node failed to start"
        warm_up(urls)
        tokens = run_workloads(urls, "acme", rounds=30)
        first, second = wait_equal_cuts(urls)
        assert first["digests"] == second["digests"]
        assert sum(p["end_offset"] for p in first["partitions"]) > 500
        assert first["undecodable_records"] == second["undecodable_records"] == 0

        # Read-your-writes across nodes: write on A, read on B with A's token (Kafka offsets, equal everywhere).
        with clients(urls, "acme") as (a, b):
            for i in range(20):
                written = a.put(f"/v1/kv/ryw/key{i}", json={"value": {"i": i}})
                assert written.status_code == 200, written.text
                seen = read_back(b, "ryw", f"key{i}", written.json()["token"])
                assert seen.status_code == 200, seen.text
                assert (seen.json()["value"], seen.json()["version"]) == ({"i": i}, 1)
            state = b.get("/v1/kv/ryw/key0", params={"token": final_token(tokens)})
            assert state.status_code == 200


@pytest.mark.slow
def test_killed_node_restarts_from_its_snapshot_and_catches_up(kafka_cluster: KafkaHandle, tmp_path: Path) -> None:
    topic = unique("restart")
    env = {"AGENTLOG_SNAPSHOT_EVERY": "100"}
    a = NodeProcess(kafka_cluster.bootstrap_servers, topic, tmp_path / "snap-a", env)
    b = NodeProcess(kafka_cluster.bootstrap_servers, topic, tmp_path / "snap-b", env)
    a.start()
    try:
        b.start()
        urls = [a.base_url, b.base_url]
        run_workloads(urls, "acme", rounds=15, threads_per_node=1)
        deadline = time.monotonic() + 30
        snapshot = None
        while snapshot is None and time.monotonic() < deadline:  # the snapshot task looks every second
            snapshot = httpx.get(f"{b.base_url}/v1/status", timeout=10).json()["snapshot"]
            time.sleep(0.2)
        assert snapshot is not None, "node B wrote no snapshot"
        assert sum(snapshot["cut"]) >= 100
        assert Path(snapshot["path"]).is_relative_to(tmp_path / "snap-b")

        b.kill()
        tokens = run_workloads([a.base_url], "acme", rounds=10, threads_per_node=1)  # B misses these
        b.start()
        first, second = wait_equal_cuts(urls)
        assert first["digests"] == second["digests"]
        assert sum(p["end_offset"] for p in first["partitions"]) > sum(snapshot["cut"])
        with clients([b.base_url], "acme") as (client,):
            found = read_back(client, "n0t0", "n0t0-k0", final_token(tokens))
            assert found.status_code == 200, found.text
        assert len(first["partitions"]) == PARTITIONS
    finally:
        b.stop()
        a.stop()
