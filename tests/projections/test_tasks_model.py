"""TasksModel: claim order (priority, age, id), leases in log time, complete/fail fencing, digests."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from commands import Caller, Command, stamp
from commands.tasks import TaskClaim, TaskComplete, TaskEnqueue, TaskFail
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.tasks import TasksModel


class Queue:
    """Applies task commands to a model with increasing offsets at chosen log times."""

    def __init__(self) -> None:
        self.model = TasksModel()
        self.offset = 0

    def apply(self, command: Command, at: int = 1_000, tenant: str = "t1") -> dict[str, Any]:
        envelope = stamp(command, Caller(tenant=tenant, agent_id="a"), namespace="q", command_id=f"c{self.offset}")
        context = ApplyContext(envelope, partition=0, offset=self.offset, log_time_ms=at)
        self.offset += 1
        return self.model.apply(context)

    def claim(self, worker: str = "w", at: int = 1_000, lease_s: int = 10) -> dict[str, Any] | None:
        task: dict[str, Any] | None = self.apply(TaskClaim(worker=worker, lease_s=lease_s), at)["task"]
        return task


def test_claims_take_priority_then_age_then_id() -> None:
    queue = Queue()
    queue.apply(TaskEnqueue(task_id="low", priority=0), at=100)
    queue.apply(TaskEnqueue(task_id="b-high", priority=5), at=200)
    queue.apply(TaskEnqueue(task_id="a-high", priority=5), at=200)
    queue.apply(TaskEnqueue(task_id="old-high", priority=5), at=150)
    order = [queue.claim(at=300) for _ in range(4)]
    # Same priority: the oldest enqueue first; same log time: the earlier offset ("b-high" came first).
    assert [task["task_id"] for task in order if task] == ["old-high", "b-high", "a-high", "low"]
    assert queue.claim(at=300) is None
    assert [task["claim"] for task in order if task] == [1, 1, 1, 1]


def test_a_stale_claim_returns_after_its_lease_in_log_time() -> None:
    queue = Queue()
    queue.apply(TaskEnqueue(task_id="t", payload={"x": 1}), at=0)
    first = queue.claim("w1", at=1_000, lease_s=5)
    assert first is not None
    assert first["lease_until_ms"] == 6_000
    assert queue.claim("w2", at=5_999) is None  # still leased
    second = queue.claim("w2", at=6_000)
    assert second is not None
    assert (second["task_id"], second["worker"], second["claim"]) == ("t", "w2", 2)
    with pytest.raises(Rejected) as stale:
        queue.apply(TaskComplete(task_id="t", claim=1, result="late"), at=6_001)
    assert stale.value.reason == "version_conflict"
    done = queue.apply(TaskComplete(task_id="t", claim=2, result="ok"), at=6_002)["task"]
    assert (done["status"], done["result"]) == ("completed", "ok")
    assert queue.claim(at=100_000) is None  # a completed task is never claimed again


def test_complete_after_the_lease_ended_is_refused_and_changes_nothing() -> None:
    queue = Queue()
    queue.apply(TaskEnqueue(task_id="t"), at=0)
    queue.claim(at=0, lease_s=1)
    before = queue.model.digest()
    with pytest.raises(Rejected) as expired:
        queue.apply(TaskComplete(task_id="t", claim=1), at=1_000)
    assert expired.value.reason == "lease_expired"
    with pytest.raises(Rejected) as missing:
        queue.apply(TaskComplete(task_id="nope", claim=1), at=10)
    assert missing.value.reason == "not_found"
    with pytest.raises(Rejected) as duplicate:
        queue.apply(TaskEnqueue(task_id="t"), at=10)
    assert duplicate.value.reason == "already_exists"
    assert queue.model.digest() == before


def test_fail_requeues_or_ends_the_task() -> None:
    queue = Queue()
    queue.apply(TaskEnqueue(task_id="a", priority=1), at=0)
    queue.apply(TaskEnqueue(task_id="b"), at=0)
    claimed = queue.claim(at=10)
    assert claimed is not None
    assert claimed["task_id"] == "a"
    queue.apply(TaskFail(task_id="a", claim=1, error="flaky", requeue=True), at=20)
    again = queue.claim(at=30)
    assert again is not None
    assert (again["task_id"], again["claim"], again["error"]) == ("a", 2, "flaky")
    ended = queue.apply(TaskFail(task_id="a", claim=2, error="broken"), at=40)["task"]
    assert ended["status"] == "failed"
    with pytest.raises(Rejected) as not_claimed:
        queue.apply(TaskComplete(task_id="a", claim=2), at=50)
    assert not_claimed.value.reason == "invalid"
    assert queue.model.counts("t1", "q") == {"pending": 1, "claimed": 0, "completed": 0, "failed": 1}


def test_queues_are_per_tenant_and_the_state_survives_pickle_with_its_digest() -> None:
    queue = Queue()
    queue.apply(TaskEnqueue(task_id="x"), at=0, tenant="acme")
    assert queue.apply(TaskClaim(worker="w", lease_s=10), at=1, tenant="globex")["task"] is None
    assert queue.claim(at=2) is None  # tenant t1 has no task either
    copy = pickle.loads(pickle.dumps(queue.model))
    assert copy.digest() == queue.model.digest()
    assert copy.list("acme", "q", "pending")[0]["task_id"] == "x"
