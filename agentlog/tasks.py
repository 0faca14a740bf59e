"""Task queues (seed 000) in the SDK: call builders, and `TaskQueue` / `AsyncTaskQueue` facades.

queue = TaskQueue(client, "jobs")
queue.enqueue({"url": "..."}, priority=5)
task = queue.claim("worker-1", lease_s=30)      # None when nothing is claimable
if task is not None:
    queue.complete(task, result={"ok": True})
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentlog._calls import Call, segment

if TYPE_CHECKING:
    from agentlog.aclient import AsyncAgentlogClient
    from agentlog.client import AgentlogClient

__all__ = [
    "AsyncTaskQueue",
    "Task",
    "TaskQueue",
    "task_claim",
    "task_complete",
    "task_enqueue",
    "task_fail",
    "task_get",
    "tasks_list",
]


@dataclass(frozen=True, slots=True)
class Task:
    """A task as the node holds it: status, claim number (fences complete and fail), worker, lease."""

    task_id: str
    payload: Any
    priority: int
    status: str
    claim: int
    worker: str | None
    enqueued_at_ms: int
    lease_until_ms: int | None
    result: Any
    error: str | None

    @classmethod
    def from_json(cls, data: Any) -> Task:
        """Parse a task object."""
        return cls(
            data["task_id"],
            data.get("payload"),
            int(data["priority"]),
            data["status"],
            int(data["claim"]),
            data.get("worker"),
            int(data["enqueued_at_ms"]),
            data.get("lease_until_ms"),
            data.get("result"),
            data.get("error"),
        )


def _task_of_write(data: Any) -> Task:
    return Task.from_json(data["result"]["task"])


def _maybe_task_of_write(data: Any) -> Task | None:
    task = (data.get("result") or {}).get("task")
    return None if task is None else Task.from_json(task)


def _base(queue: str) -> str:
    return f"/v1/queues/{segment(queue)}"


def task_enqueue(queue: str, payload: Any = None, *, priority: int = 0, task_id: str | None = None) -> Call[Task]:
    """Add a task to `queue`; ConflictError if `task_id` is taken."""
    body: dict[str, Any] = {"payload": payload, "priority": priority}
    if task_id is not None:
        body["task_id"] = task_id
    return Call("POST", f"{_base(queue)}/tasks", _task_of_write, body=body, write=True)


def task_claim(queue: str, worker: str, *, lease_s: int = 60) -> Call[Task | None]:
    """Claim the next task of `queue` for `worker` (None when nothing is claimable)."""
    body = {"worker": worker, "lease_s": lease_s}
    return Call("POST", f"{_base(queue)}/claim", _maybe_task_of_write, body=body, write=True)


def task_complete(queue: str, task_id: str, claim: int, result: Any = None) -> Call[Task]:
    """Finish a claimed task; ConflictError if the claim is not current or its lease ended."""
    body = {"claim": claim, "result": result}
    return Call("POST", f"{_base(queue)}/tasks/{segment(task_id)}/complete", _task_of_write, body=body, write=True)


def task_fail(queue: str, task_id: str, claim: int, error: str = "", *, requeue: bool = False) -> Call[Task]:
    """Give up on a claimed task: back to the queue with `requeue`, else failed for good."""
    body = {"claim": claim, "error": error, "requeue": requeue}
    return Call("POST", f"{_base(queue)}/tasks/{segment(task_id)}/fail", _task_of_write, body=body, write=True)


def task_get(queue: str, task_id: str) -> Call[Task | None]:
    """One task (None if absent)."""
    return Call("GET", f"{_base(queue)}/tasks/{segment(task_id)}", Task.from_json, read=True, missing=lambda: None)


def tasks_list(queue: str, status: str | None = None, *, limit: int = 100) -> Call[list[Task]]:
    """Tasks of `queue` (pending ones in claim order), optionally of one status."""
    params: dict[str, Any] = {"limit": limit}
    if status is not None:
        params["status"] = status
    return Call(
        "GET",
        f"{_base(queue)}/tasks",
        lambda data: [Task.from_json(t) for t in data["items"]],
        params=params,
        read=True,
    )


class TaskQueue:
    """One queue through a synchronous client."""

    def __init__(self, client: AgentlogClient, queue: str) -> None:
        self.client = client
        self.queue = queue

    def enqueue(self, payload: Any = None, *, priority: int = 0, task_id: str | None = None) -> Task:
        """Add a task."""
        return self.client.run(task_enqueue(self.queue, payload, priority=priority, task_id=task_id))

    def claim(self, worker: str, *, lease_s: int = 60) -> Task | None:
        """Claim the next task, or None."""
        return self.client.run(task_claim(self.queue, worker, lease_s=lease_s))

    def complete(self, task: Task, result: Any = None) -> Task:
        """Finish a task this worker claimed."""
        return self.client.run(task_complete(self.queue, task.task_id, task.claim, result))

    def fail(self, task: Task, error: str = "", *, requeue: bool = False) -> Task:
        """Give up on a task this worker claimed."""
        return self.client.run(task_fail(self.queue, task.task_id, task.claim, error, requeue=requeue))

    def get(self, task_id: str) -> Task | None:
        """One task, or None."""
        return self.client.run(task_get(self.queue, task_id))

    def list(self, status: str | None = None, *, limit: int = 100) -> list[Task]:
        """Tasks of the queue."""
        return self.client.run(tasks_list(self.queue, status, limit=limit))


class AsyncTaskQueue:
    """One queue through an asynchronous client."""

    def __init__(self, client: AsyncAgentlogClient, queue: str) -> None:
        self.client = client
        self.queue = queue

    async def enqueue(self, payload: Any = None, *, priority: int = 0, task_id: str | None = None) -> Task:
        """Add a task."""
        return await self.client.run(task_enqueue(self.queue, payload, priority=priority, task_id=task_id))

    async def claim(self, worker: str, *, lease_s: int = 60) -> Task | None:
        """Claim the next task, or None."""
        return await self.client.run(task_claim(self.queue, worker, lease_s=lease_s))

    async def complete(self, task: Task, result: Any = None) -> Task:
        """Finish a task this worker claimed."""
        return await self.client.run(task_complete(self.queue, task.task_id, task.claim, result))

    async def fail(self, task: Task, error: str = "", *, requeue: bool = False) -> Task:
        """Give up on a task this worker claimed."""
        return await self.client.run(task_fail(self.queue, task.task_id, task.claim, error, requeue=requeue))

    async def get(self, task_id: str) -> Task | None:
        """One task, or None."""
        return await self.client.run(task_get(self.queue, task_id))

    async def list(self, status: str | None = None, *, limit: int = 100) -> list[Task]:
        """Tasks of the queue."""
        return await self.client.run(tasks_list(self.queue, status, limit=limit))
