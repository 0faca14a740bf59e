"""Task queues (seed 000): enqueue, atomic claim, complete, fail, list; a queue is a namespace."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import Field

from commands import Caller, Command, new_id
from commands.fields import Id, JsonData, Namespace, Positive, TtlSeconds
from commands.tasks import PRIORITY_MAX, PRIORITY_MIN, TaskClaim, TaskComplete, TaskEnqueue, TaskFail
from projections.tasks import TasksModel
from query_api.http.bodies import WriteOptions
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem

__all__ = ["router"]

router = APIRouter(prefix="/v1/queues", tags=["tasks"])

QueuePath = Annotated[Namespace, Path(description="The queue (a namespace)")]
TaskPath = Annotated[Id, Path(description="The task id")]
#: Most tasks one list call returns.
LIST_LIMIT_MAX = 1_000


class TaskSubmission(WriteOptions):
    """Body of `POST /v1/queues/{queue}/tasks`."""

    task_id: Id | None = Field(None, description="The task's id (default: minted by the node)")
    payload: JsonData = Field(None, description="Any JSON value: what the worker needs")
    priority: int = Field(0, ge=PRIORITY_MIN, le=PRIORITY_MAX, description="Higher is claimed first")


class ClaimRequest(WriteOptions):
    """Body of `POST /v1/queues/{queue}/claim`."""

    worker: Id = Field(..., description="Who claims")
    lease_s: TtlSeconds = Field(..., description="Lease in seconds of log time; past it the task is claimable again")


class CompletionReport(WriteOptions):
    """Body of `POST /v1/queues/{queue}/tasks/{task_id}/complete`."""

    claim: Positive = Field(..., description="The claim number the claim answered with")
    result: JsonData = Field(None, description="Any JSON value")


class FailureReport(WriteOptions):
    """Body of `POST /v1/queues/{queue}/tasks/{task_id}/fail`."""

    claim: Positive = Field(..., description="The claim number the claim answered with")
    error: str = Field("", max_length=4_096, description="Why it failed")
    requeue: bool = Field(False, description="Put the task back in the queue instead of failing it for good")


def tasks_model(view: View) -> TasksModel:
    """The task read model of the view's state."""
    model = view.state.model("tasks")
    assert isinstance(model, TasksModel)
    return model


async def write(view: View, caller: Caller, queue: str, command: Command, body: WriteOptions) -> dict[str, Any]:
    """Execute a task command in `queue` with the body's run and idempotency key."""
    return await execute(view, caller, command, namespace=queue, run_id=body.run_id, command_id=body.command_id)


@router.post("/{queue}/tasks")
async def enqueue_task(queue: QueuePath, body: TaskSubmission, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Add a task; 409 `already_exists` if the id is taken in this queue."""
    command = TaskEnqueue(task_id=body.task_id or new_id(), payload=body.payload, priority=body.priority)
    return await write(view, caller, queue, command, body)


@router.post("/{queue}/claim")
async def claim_task(queue: QueuePath, body: ClaimRequest, view: WriterDep, caller: CallerDep) -> dict[str, Any]:
    """Claim the next task (priority, then age, ties by id); `result.task` is null when none is claimable."""
    return await write(view, caller, queue, TaskClaim(worker=body.worker, lease_s=body.lease_s), body)


@router.post("/{queue}/tasks/{task_id}/complete")
async def complete_task(
    queue: QueuePath, task_id: TaskPath, body: CompletionReport, view: WriterDep, caller: CallerDep
) -> dict[str, Any]:
    """Finish a claimed task; 409 if the claim is not current or its lease ended."""
    command = TaskComplete(task_id=task_id, claim=body.claim, result=body.result)
    return await write(view, caller, queue, command, body)


@router.post("/{queue}/tasks/{task_id}/fail")
async def fail_task(
    queue: QueuePath, task_id: TaskPath, body: FailureReport, view: WriterDep, caller: CallerDep
) -> dict[str, Any]:
    """Give up on a claimed task: back to the queue (`requeue`) or failed for good."""
    command = TaskFail(task_id=task_id, claim=body.claim, error=body.error, requeue=body.requeue)
    return await write(view, caller, queue, command, body)


@router.get("/{queue}")
async def queue_counts(
    queue: QueuePath, view: ViewDep, caller: CallerDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> dict[str, Any]:
    """How many tasks of the queue are in each status."""
    await view.wait_token(token, wait_ms)
    return {"queue": queue, "counts": tasks_model(view).counts(caller.tenant, queue)}


@router.get("/{queue}/tasks")
async def list_tasks(
    queue: QueuePath,
    view: ViewDep,
    caller: CallerDep,
    status: Literal["pending", "claimed", "completed", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """Tasks of the queue: pending ones in claim order, others by id."""
    await view.wait_token(token, wait_ms)
    return {"items": tasks_model(view).list(caller.tenant, queue, status, limit)}


@router.get("/{queue}/tasks/{task_id}")
async def get_task(
    queue: QueuePath,
    task_id: TaskPath,
    view: ViewDep,
    caller: CallerDep,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> dict[str, Any]:
    """One task; 404 if the queue has no such task."""
    await view.wait_token(token, wait_ms)
    task = tasks_model(view).get(caller.tenant, queue, task_id)
    if task is None:
        raise ApiProblem(404, "not_found", f"no task {task_id!r} in queue {queue!r}")
    return task
