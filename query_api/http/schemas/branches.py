"""Response models of the branch and fork routes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from query_api.http.schemas.writes import WriteAccepted

__all__ = ["BranchDeleted", "BranchList", "BranchPublic", "ForkPublic"]


class BranchPublic(BaseModel):
    """A branch: name, topic, parent branch, fork cut and token, partitions, and its applied token if running."""

    name: str
    topic: str
    parent: str | None
    fork_cut: list[int] | None
    fork_token: str | None
    partitions: int
    started: bool
    applied: str | None


class BranchList(BaseModel):
    """Main and every branch of the caller's tenant, by name."""

    items: list[BranchPublic]


class BranchDeleted(BaseModel):
    """A deleted branch."""

    name: str
    deleted: bool


class ForkPublic(BaseModel):
    """A run forked onto a new branch just after `at_seq`; `begin` is the new run's write, if one was begun."""

    model_config = ConfigDict(populate_by_name=True)
    branch: str
    from_: str = Field(alias="from")
    run_id: str
    at_seq: int
    fork_cut: list[int]
    fork_token: str
    new_run_id: str | None
    begin: WriteAccepted | None
