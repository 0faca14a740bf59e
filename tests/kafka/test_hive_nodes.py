"""The hive across two Kafka nodes: a share made on node A reaches a WebSocket subscriber on node B
(every node pushes what it applied), and claimers spread over both nodes claim each task once."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from contextlib import ExitStack

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from tests.kafka.support import kafka_settings, unique, warm_up
from tests.kafka_broker import KafkaHandle
from tests.query_api.http_node import serve

pytestmark = pytest.mark.kafka

#: A hang guard for frames, not a timing assertion.
FRAME_WAIT_S = 60.0


def test_a_share_on_node_a_reaches_a_subscriber_on_node_b(kafka_cluster: KafkaHandle) -> None:
    settings = kafka_settings(kafka_cluster.bootstrap_servers, unique("push"))
    with ExitStack() as stack:
        node_a = stack.enter_context(serve(settings, websockets=True))
        node_b = stack.enter_context(serve(settings, websockets=True))
        warm_up([node_a, node_b])
        headers = {"X-Agent-Id": "alice"}
        with httpx.Client(base_url=node_a, timeout=60, headers=headers) as a:
            assert a.post("/v1/channels", json={"channel": "global"}).status_code == 200

            async def scenario() -> list[dict[str, object]]:
                async with connect("ws" + node_b[4:] + "/v1/ws?channel=global&after=") as ws:
                    await asyncio.wait_for(ws.recv(), FRAME_WAIT_S)
                    for i in range(5):
                        shared = await asyncio.to_thread(
                            a.post, "/v1/channels/global/share", json={"kind": "memory", "ref": f"m{i}"}
                        )
                        assert shared.status_code == 200, shared.text
                    return [orjson.loads(await asyncio.wait_for(ws.recv(), FRAME_WAIT_S)) for _ in range(6)]

            frames = asyncio.run(scenario())
    assert [f["command_type"] for f in frames] == ["channel.create"] + ["channel.share"] * 5
    assert [f["command"].get("ref") for f in frames[1:]] == [f"m{i}" for i in range(5)]  # type: ignore[union-attr]


def test_claimers_on_two_nodes_claim_each_task_once(kafka_cluster: KafkaHandle) -> None:
    settings = kafka_settings(kafka_cluster.bootstrap_servers, unique("tasks"))
    with ExitStack() as stack:
        urls = [stack.enter_context(serve(settings)), stack.enter_context(serve(settings))]
        warm_up(urls)
        with httpx.Client(base_url=urls[0], timeout=60) as client:
            for i in range(200):
                response = client.post("/v1/queues/jobs/tasks", json={"task_id": f"t{i:03d}", "priority": i % 4})
                assert response.status_code == 200, response.text
        claimed: list[list[str]] = [[] for _ in range(8)]

        def claimer(index: int) -> None:
            with httpx.Client(base_url=urls[index % 2], timeout=60) as http:
                while True:
                    body = {"worker": f"w{index}", "lease_s": 600}
                    task = http.post("/v1/queues/jobs/claim", json=body).json()["result"]["task"]
                    if task is None:
                        return
                    claimed[index].append(task["task_id"])
                    done = http.post(f"/v1/queues/jobs/tasks/{task['task_id']}/complete", json={"claim": task["claim"]})
                    assert done.status_code == 200, done.text

        threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    every = [task for mine in claimed for task in mine]
    assert Counter(every) == Counter(f"t{i:03d}" for i in range(200))
    assert all(claimed[i] for i in (0, 1)), "both nodes served claims"
