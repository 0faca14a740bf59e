"""Coordination: versioned state records with compare-and-swap, fenced locks, and transactions."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field, model_validator

from commands import (
    Caller,
    Command,
    LockAcquire,
    LockRelease,
    LockRenew,
    StateCas,
    Txn,
    TxnPrecondition,
    TxnRead,
    TxnWrite,
)
from commands.fields import Id, JsonData, Key, Namespace, NonNegative, Positive, TtlSeconds
from commands.limits import DEFAULT_NAMESPACE, MAX_BATCH_COMMANDS
from projections.state import StateModel
from query_api.http.bodies import NamespacedWriteOptions
from query_api.http.deps import CallerDep, TokenQuery, View, ViewDep, WaitQuery, WriterDep, execute
from query_api.http.problems import ApiProblem
from query_api.http.responses import json_response
from query_api.http.schemas.coordination import LockPublic, StateList, StatePublic
from query_api.http.schemas.writes import WriteAccepted

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["coordination"])

NamePath = Annotated[Key, Path(description="State or lock name (may contain `/`)")]
NamespaceQuery = Annotated[Namespace, Query(description="Namespace of the record")]
#: Most state records one list call returns.
LIST_LIMIT_MAX = 1_000


class CasAttempt(NamespacedWriteOptions):
    """Body of `POST /v1/state/{name}/cas`: write `value` iff the record is at `expected_version`."""

    expected_version: NonNegative = Field(..., description="Version the record must be at (0: must not exist)")
    value: JsonData = Field(..., description="Any JSON value")


class LockAcquisition(NamespacedWriteOptions):
    """Body of `POST /v1/locks/{name}/acquire`."""

    holder: Id = Field(..., description="Who takes the lock")
    ttl_s: TtlSeconds = Field(..., description="Lease length in seconds (log time)")


class LockRenewal(NamespacedWriteOptions):
    """Body of `POST /v1/locks/{name}/renew`: extend the lease, keeping the fencing token."""

    holder: Id
    fencing_token: Positive = Field(..., description="The token `acquire` answered with")
    ttl_s: TtlSeconds = Field(..., description="New lease length from now, in seconds (log time)")


class LockSurrender(NamespacedWriteOptions):
    """Body of `POST /v1/locks/{name}/release`."""

    holder: Id
    fencing_token: Positive = Field(..., description="The token `acquire` answered with")


class TxnSubmission(NamespacedWriteOptions):
    """Body of `POST /v1/txn`: all writes apply iff every read and precondition still holds, else none."""

    reads: list[TxnRead] = Field(default_factory=list, max_length=MAX_BATCH_COMMANDS)
    writes: list[TxnWrite] = Field(default_factory=list, max_length=MAX_BATCH_COMMANDS)
    preconditions: list[TxnPrecondition] = Field(default_factory=list, max_length=MAX_BATCH_COMMANDS)

    @model_validator(mode="after")
    def _not_empty(self) -> TxnSubmission:
        if not (self.reads or self.writes or self.preconditions):
            raise ValueError("a txn needs at least one read, write or precondition")
        return self


def state_model(node: View) -> StateModel:
    """The node's state read model."""
    model = node.state.model("state")
    assert isinstance(model, StateModel)
    return model


async def write(node: View, caller: Caller, command: Command, body: NamespacedWriteOptions) -> dict[str, Any]:
    """Execute a coordination command with the body's namespace, run and idempotency key."""
    return await execute(
        node, caller, command, namespace=body.namespace, run_id=body.run_id, command_id=body.command_id
    )


@router.get("/state", response_model=StateList)
async def list_state(
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    prefix: str = "",
    cursor: Annotated[str | None, Query(description="The last name of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=LIST_LIMIT_MAX)] = 100,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """State records of a namespace in name order, from after `cursor`."""
    await node.wait_token(token, wait_ms)
    views = state_model(node).list(caller.tenant, namespace, prefix, cursor, limit)
    next_cursor = views[-1].name if len(views) == limit else None
    return json_response({"items": [dataclasses.asdict(v) for v in views], "next_cursor": next_cursor})


@router.get("/state/{name:path}", response_model=StatePublic)
async def get_state(
    name: NamePath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Read a state record with its version; 404 if absent."""
    await node.wait_token(token, wait_ms)
    view = state_model(node).get(caller.tenant, namespace, name)
    if view is None:
        raise ApiProblem(404, "not_found", f"no state {name!r} in namespace {namespace!r}", current_version=0)
    return json_response(dataclasses.asdict(view))


@router.post("/state/{name:path}/cas", response_model=WriteAccepted)
async def cas_state(name: NamePath, body: CasAttempt, node: WriterDep, caller: CallerDep) -> Response:
    """Compare-and-swap: set the value iff the record is at `expected_version`; 409 with `current_version` if not."""
    command = StateCas(name=name, expected_version=body.expected_version, value=body.value)
    return json_response(await write(node, caller, command, body))


@router.get("/locks/{name:path}", response_model=LockPublic)
async def get_lock(
    name: NamePath,
    node: ViewDep,
    caller: CallerDep,
    namespace: NamespaceQuery = DEFAULT_NAMESPACE,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Read a lock (holder, fencing token, lease end, held now?); 404 if absent or not a lock."""
    await node.wait_token(token, wait_ms)
    view = state_model(node).lock(caller.tenant, namespace, name, node.now_ms())
    if view is None:
        raise ApiProblem(404, "not_found", f"no lock {name!r} in namespace {namespace!r}")
    return json_response(dataclasses.asdict(view))


@router.post("/locks/{name:path}/acquire", response_model=WriteAccepted)
async def acquire_lock(name: NamePath, body: LockAcquisition, node: WriterDep, caller: CallerDep) -> Response:
    """Take a lock if free or expired; answers a new fencing token, 409 `lock_held` if someone else holds it."""
    command = LockAcquire(name=name, holder=body.holder, ttl_s=body.ttl_s)
    return json_response(await write(node, caller, command, body))


@router.post("/locks/{name:path}/renew", response_model=WriteAccepted)
async def renew_lock(name: NamePath, body: LockRenewal, node: WriterDep, caller: CallerDep) -> Response:
    """Extend the holder's lease; the fencing token stays the same."""
    command = LockRenew(name=name, holder=body.holder, fencing_token=body.fencing_token, ttl_s=body.ttl_s)
    return json_response(await write(node, caller, command, body))


@router.post("/locks/{name:path}/release", response_model=WriteAccepted)
async def release_lock(name: NamePath, body: LockSurrender, node: WriterDep, caller: CallerDep) -> Response:
    """Free the holder's lock, if its fencing token is still current."""
    command = LockRelease(name=name, holder=body.holder, fencing_token=body.fencing_token)
    return json_response(await write(node, caller, command, body))


@router.post("/txn", response_model=WriteAccepted)
async def transact(body: TxnSubmission, node: WriterDep, caller: CallerDep) -> Response:
    """Optimistic transaction over kv and state records of one partition: all writes apply, or none."""
    command = Txn(reads=body.reads, writes=body.writes, preconditions=body.preconditions)
    return json_response(await write(node, caller, command, body))
