"""Health, status (applied cut, lag, digests, snapshots) and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from projections.snapshot import list_snapshots
from query_api.http.deps import BranchQuery, NodeDep
from query_api.node.branches import MAIN

__all__ = ["router"]

router = APIRouter(tags=["system"])


@router.get("/health")
async def health(node: NodeDep) -> dict[str, Any]:
    """Liveness: ok while the apply loop runs."""
    return {"status": "ok" if node.engine.error is None else "failed"}


@router.get("/v1/status")
async def status(node: NodeDep, branch: BranchQuery = MAIN) -> dict[str, Any]:
    """Per partition: end offset, applied offset, lag; per model: digest; the newest snapshot (of `branch`)."""
    handle = await node.branches.get(branch)
    ends = await node.log.end_offsets(handle.topic)
    applied = handle.engine.applied
    snapshots = list_snapshots(node.snapshot_dir, handle.topic) if node.snapshot_dir else []
    return {
        "topic": handle.topic,
        "branch": handle.name,
        "log": node.settings.log.split("://")[0],
        "partitions": [
            {"partition": p, "end_offset": end, "applied_offset": applied[p], "lag": end - applied[p]}
            for p, end in enumerate(ends)
        ],
        "token": handle.token(),
        "digests": handle.state.digests(),
        "undecodable_records": sum(handle.state.undecodable),
        "snapshot": {"path": str(snapshots[0].path), "cut": list(snapshots[0].cut)} if snapshots else None,
        "apply_error": None if handle.engine.error is None else repr(handle.engine.error),
    }


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(node: NodeDep) -> str:
    """Prometheus text format: applied offset, end offset and lag per partition."""
    ends = await node.log.end_offsets(node.settings.topic)
    lines = [
        "# HELP agentlog_applied_offset Next offset the node will apply, per partition.",
        "# TYPE agentlog_applied_offset gauge",
        *(f'agentlog_applied_offset{{partition="{p}"}} {o}' for p, o in enumerate(node.engine.applied)),
        "# HELP agentlog_end_offset Durable end offset of the log, per partition.",
        "# TYPE agentlog_end_offset gauge",
        *(f'agentlog_end_offset{{partition="{p}"}} {o}' for p, o in enumerate(ends)),
        "# HELP agentlog_lag Records appended but not yet applied, per partition.",
        "# TYPE agentlog_lag gauge",
        *(
            f'agentlog_lag{{partition="{p}"}} {e - a}'
            for p, (e, a) in enumerate(zip(ends, node.engine.applied, strict=True))
        ),
    ]
    return "\n".join(lines) + "\n"
