"""Branches (DESIGN §5): make one from main or another branch at a cut, a log time or a run's event; fork a run.

A branch is a zero-copy topic that reads its parent below the fork cut and then its own records;
every other endpoint takes `?branch=NAME` to read or write it (see `query_api.node.branches`). A branch
belongs to the caller's tenant: others never see it. Listing and showing need the `reader` role,
making branches and forks `writer`, deleting `admin`.
`POST /v1/runs/{run_id}/fork` is the run-shaped shortcut: it makes a branch at the cut just after
event `at_seq` of the run, where the run goes on under the same run id (its later events, and its
end, stay on the source branch only). With `new_run_id`, the fork also begins that run on the new
branch, its `parent_run_id` the forked run and its metadata `{"forked_from": {...}}`.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from commands import RunBegin, new_id
from commands.fields import Id, JsonInt, Positive
from projections.cut import parse_token
from projections.timetravel import cut_at_time
from query_api.http.deps import (
    AdminDep,
    BranchQuery,
    NodeDep,
    ReaderDep,
    TokenQuery,
    View,
    WaitQuery,
    WriterRoleDep,
    execute,
)
from query_api.http.responses import json_response
from query_api.http.schemas.branches import BranchDeleted, BranchList, BranchPublic, ForkPublic
from query_api.node.branches import BRANCH_NAME_PATTERN, MAIN, MAX_BRANCH_NAME_CHARS, Branch, cut_token
from query_api.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["branches"])

#: What a branch name must match.
BranchName = Annotated[str, Field(max_length=MAX_BRANCH_NAME_CHARS, pattern=BRANCH_NAME_PATTERN)]
BranchPath = Annotated[str, Path(max_length=MAX_BRANCH_NAME_CHARS, pattern=BRANCH_NAME_PATTERN)]
#: A branch that may be deleted: any but main (the code answers 400 `bad_branch` for main; the schema says so).
DeletableBranchPath = Annotated[
    str,
    Path(max_length=MAX_BRANCH_NAME_CHARS, pattern=BRANCH_NAME_PATTERN, json_schema_extra={"not": {"const": MAIN}}),
]
RunPath = Annotated[Id, Path(description="Run id")]
_UNSAFE: Final = re.compile(r"[^A-Za-z0-9._-]")


class AtCut(BaseModel):
    """Fork at a cut: `0:12,3:40` (partitions not named: 0)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    cut: str = Field(..., max_length=16_384)


class AtTime(BaseModel):
    """Fork at a log time: every record the parent had stamped by `time_ms`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    time_ms: JsonInt = Field(..., ge=0, le=2**62)


class AtRunEvent(BaseModel):
    """Fork just after event `seq` of run `run_id` (of the caller's tenant) on the parent."""

    model_config = ConfigDict(extra="forbid", strict=True)
    run_id: Id
    seq: Positive


class BranchCreate(BaseModel):
    """Body of `POST /v1/branches`; without `at`, the branch forks at what the parent has applied."""

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    name: BranchName
    parent: BranchName = Field(MAIN, alias="from", description="`main` or another branch")
    at: AtCut | AtTime | AtRunEvent | None = None


class RunFork(BaseModel):
    """Body of `POST /v1/runs/{run_id}/fork`."""

    model_config = ConfigDict(extra="forbid", strict=True)
    at_seq: Positive = Field(..., description="The fork keeps the run's events up to and including this seq")
    new_run_id: Id | None = Field(None, description="Also begin this run on the branch, its parent the forked run")
    branch: BranchName | None = Field(None, description="Name of the new branch (default: made from the run id)")


async def _source(node: Node, tenant: str, name: str, token: str | None, wait_ms: int | None) -> Branch:
    """`tenant`'s branch `name`, started, once it has applied `token`."""
    source = await node.branches.get(tenant, name)
    await View(node, source, tenant=tenant).wait_token(token, wait_ms)
    return source


@router.post("/branches", response_model=BranchPublic, status_code=201)
async def create_branch(
    body: BranchCreate, node: NodeDep, writer: WriterRoleDep, token: TokenQuery = None, wait_ms: WaitQuery = None
) -> Response:
    """Make a branch of `from` at a cut, a log time, or just after a run's event; 409 if it exists."""
    caller = writer.caller
    parent = await _source(node, caller.tenant, body.parent, token, wait_ms)
    at = body.at
    if at is None:
        cut = parent.engine.applied
    elif isinstance(at, AtCut):
        named = parse_token(at.cut, len(parent.engine.applied))
        cut = [named.get(p, 0) for p in range(len(parent.engine.applied))]
    elif isinstance(at, AtTime):
        cut = await cut_at_time(node.log, parent.topic, at.time_ms)
    else:
        cut = await node.branches.cut_after_event(parent, caller.tenant, at.run_id, at.seq)
    return json_response(await node.branches.create(caller.tenant, body.name, parent.name, cut), status_code=201)


@router.get("/branches", response_model=BranchList)
async def list_branches(node: NodeDep, reader: ReaderDep) -> Response:
    """Main and every branch of the caller's tenant, by name, with parent and fork cut."""
    tenant = reader.caller.tenant
    return json_response({"items": [node.branches.describe(tenant, name) for name in node.branches.names(tenant)]})


@router.get("/branches/{name}", response_model=BranchPublic)
async def get_branch(name: BranchPath, node: NodeDep, reader: ReaderDep) -> Response:
    """One branch of the caller's tenant: topic, parent, fork cut, its applied cut if running; 404 if absent."""
    return json_response(node.branches.describe(reader.caller.tenant, name))


@router.delete("/branches/{name}", response_model=BranchDeleted)
async def delete_branch(name: DeletableBranchPath, node: NodeDep, admin: AdminDep) -> Response:
    """Delete a branch of the caller's tenant and its own records; 409 `branch_in_use` while branches of it exist."""
    await node.branches.delete(admin.caller.tenant, name)
    return json_response({"name": name, "deleted": True})


def fork_name(run_id: str, seq: int) -> str:
    """A fresh branch name for a fork of `run_id` at `seq`."""
    return f"{_UNSAFE.sub('-', run_id)[:80]}.fork-{seq}-{new_id()[-12:]}"


@router.post("/runs/{run_id}/fork", response_model=ForkPublic, status_code=201)
async def fork_run(
    run_id: RunPath,
    body: RunFork,
    node: NodeDep,
    writer: WriterRoleDep,
    branch: BranchQuery = MAIN,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Fork the run onto a new branch just after event `at_seq`; the run goes on there under the same id."""
    caller = writer.caller
    tenant = caller.tenant
    source = await _source(node, tenant, branch, token, wait_ms)
    cut = await node.branches.cut_after_event(source, tenant, run_id, body.at_seq)
    name = body.branch or fork_name(run_id, body.at_seq)
    await node.branches.create(tenant, name, source.name, cut)
    begun = None
    if body.new_run_id is not None:
        forked_from = {"branch": source.name, "run_id": run_id, "seq": body.at_seq}
        command = RunBegin(metadata={"forked_from": forked_from}, parent_run_id=run_id)
        try:
            forked = View(node, await node.branches.get(tenant, name), tenant=tenant)
            begun = await execute(forked, caller, command, run_id=body.new_run_id)
        except Exception:
            await node.branches.delete(tenant, name)
            raise
    return json_response(
        {
            "branch": name,
            "from": source.name,
            "run_id": run_id,
            "at_seq": body.at_seq,
            "fork_cut": cut,
            "fork_token": cut_token(cut),
            "new_run_id": body.new_run_id,
            "begin": begun,
        },
        status_code=201,
    )
