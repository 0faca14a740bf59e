"""Response models of the probes and the status route."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

__all__ = ["HealthPublic", "PartitionStatus", "ReadyPublic", "SnapshotStatus", "StatusPublic"]


class HealthPublic(BaseModel):
    """Liveness: the node works."""

    status: Literal["ok"]


class ReadyPublic(BaseModel):
    """Readiness: everything the log held has been applied, up to `token`."""

    status: Literal["ready"]
    token: str


class PartitionStatus(BaseModel):
    """One partition: log end, applied offset, lag and hash chain head."""

    partition: int
    end_offset: int
    applied_offset: int
    lag: int
    chain_head: str


class SnapshotStatus(BaseModel):
    """The newest snapshot: its file and cut."""

    path: str
    cut: list[int]


class StatusPublic(BaseModel):
    """The caller's branch: token and health; the other fields only for the admin role."""

    branch: str
    token: str
    status: Literal["ok", "failed"]
    topic: str | None = None
    log: str | None = None
    partitions: list[PartitionStatus] | None = None
    digests: dict[str, str] | None = None
    undecodable_records: int | None = None
    snapshot: SnapshotStatus | None = None
    apply_error: str | None = None
