"""Task queues over real HTTP: concurrent claimers claim each task exactly once, stale claims return,
complete and fail are fenced by the claim number, bad input leaves no trace, the CLI drives it."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import pytest
from click.testing import CliRunner

from agentlog.client import AgentlogClient
from agentlog.errors import ConflictError
from agentlog.tasks import Task, TaskQueue
from query_api.cli.main import main
from tests.query_api.http_node import HttpNode, assert_problem

pytest_plugins = ("tests.query_api.http_node",)

#: How long a test waits for log time to pass a lease (a hang guard, not a timing assertion).
LEASE_WAIT_S = 30.0


def test_eight_concurrent_claimers_claim_each_of_200_tasks_exactly_once(http_node: HttpNode) -> None:
    with AgentlogClient(http_node.base_url) as client:
        queue = TaskQueue(client, "jobs")
        for i in range(200):
            queue.enqueue({"n": i}, priority=i % 3, task_id=f"task-{i:03d}")
    claimed: list[list[Task]] = [[] for _ in range(8)]

    def claimer(index: int) -> None:
        with AgentlogClient(http_node.base_url) as client:
            queue = TaskQueue(client, "jobs")
            while (task := queue.claim(f"worker-{index}", lease_s=600)) is not None:
                claimed[index].append(task)
                queue.complete(task, result={"by": index})

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [task.task_id for mine in claimed for task in mine]
    assert Counter(every) == Counter(f"task-{i:03d}" for i in range(200)), "a task was claimed twice or never"
    assert sum(1 for mine in claimed if mine) >= 2, "the claimers did not run concurrently"
    for mine in claimed:  # each claimer saw priorities in non-increasing order
        priorities = [task.priority for task in mine]
        assert priorities == sorted(priorities, reverse=True), priorities
    counts = http_node.client.get("/v1/queues/jobs").json()["counts"]
    assert counts == {"pending": 0, "claimed": 0, "completed": 200, "failed": 0}


def test_a_stale_claim_returns_and_its_old_claim_is_fenced(http_node: HttpNode) -> None:
    with AgentlogClient(http_node.base_url) as client:
        queue = TaskQueue(client, "stale")
        queue.enqueue("work", task_id="only")
        first = queue.claim("slow-worker", lease_s=1)
        assert first is not None
        assert first.claim == 1
        assert queue.claim("other", lease_s=1) is None  # leased
        deadline = time.monotonic() + LEASE_WAIT_S
        second = None
        while second is None:  # wait for log time to pass the lease; the next claim releases it
            assert time.monotonic() < deadline, "the stale claim never came back"
            time.sleep(0.2)
            second = queue.claim("other", lease_s=60)
        assert (second.task_id, second.claim, second.worker) == ("only", 2, "other")
        with pytest.raises(ConflictError, match="claim 1"):
            queue.complete(first, result="late")
        done = queue.complete(second, result="ok")
        assert (done.status, done.result) == ("completed", "ok")
        assert queue.get("only") == done


def test_fail_requeues_and_bad_input_leaves_no_trace(http_node: HttpNode) -> None:
    client = http_node.client
    assert client.post("/v1/queues/q/tasks", json={"task_id": "a", "priority": 2}).status_code == 200
    claim = client.post("/v1/queues/q/claim", json={"worker": "w", "lease_s": 30}).json()["result"]["task"]
    failed = client.post("/v1/queues/q/tasks/a/fail", json={"claim": claim["claim"], "error": "x", "requeue": True})
    assert failed.json()["result"]["task"]["status"] == "pending"
    before = client.get("/v1/status").json()
    assert_problem(client.post("/v1/queues/q/tasks", json={"priority": 10**9}), 422, "invalid")
    assert_problem(client.post("/v1/queues/q/claim", json={"worker": "w"}), 422, "invalid")
    assert_problem(client.post("/v1/queues/bad%20name/claim", json={"worker": "w", "lease_s": 1}), 422, "invalid")
    assert_problem(client.post("/v1/queues/q/tasks", json={"task_id": "a", "tenant": "x"}), 422, "invalid")
    after = client.get("/v1/status").json()
    assert after["digests"] == before["digests"]
    assert [p["end_offset"] for p in after["partitions"]] == [p["end_offset"] for p in before["partitions"]]
    assert_problem(client.post("/v1/queues/q/tasks", json={"task_id": "a"}), 409, "already_exists")
    assert_problem(client.get("/v1/queues/q/tasks/none"), 404, "not_found")
    other = client.get("/v1/queues/q/tasks", headers={"X-Tenant": "someone-else"}).json()
    assert other == {"items": []}


def test_cli_tasks(http_node: HttpNode) -> None:
    runner = CliRunner()
    url = ["--url", http_node.base_url]
    added = runner.invoke(main, ["tasks", "enqueue", "cli-q", '{"job": 1}', "--priority", "3", "--id", "t1", *url])
    assert added.exit_code == 0, added.output
    claimed = runner.invoke(main, ["tasks", "claim", "cli-q", "--worker", "w1", "--lease", "60", *url])
    assert claimed.exit_code == 0, claimed.output
    task = json.loads(claimed.output)
    assert (task["task_id"], task["claim"], task["payload"]) == ("t1", 1, {"job": 1})
    done = runner.invoke(main, ["tasks", "complete", "cli-q", "t1", "--claim", "1", "--result", '"ok"', *url])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(main, ["tasks", "list", "cli-q", "--status", "completed", *url])
    assert [t["task_id"] for t in json.loads(listed.output)] == ["t1"]
    empty = runner.invoke(main, ["tasks", "claim", "cli-q", "--worker", "w1", *url])
    assert empty.exit_code == 0
    assert json.loads(empty.output) is None
    refused = runner.invoke(main, ["tasks", "complete", "cli-q", "t1", "--claim", "1", *url])
    assert refused.exit_code == 1
