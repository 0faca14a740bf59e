"""Health, readiness, status (applied cut, lag, digests, snapshots, hash chains) and Prometheus metrics.

`/health` and `/ready` take no credentials (probes): `/health` is 503 once the apply loop or the log
has failed; `/ready` is 200 only once the node has applied what the log held when it was asked
(lag 0), else 503 `not_ready` with the lag. `/v1/status` shows node-wide detail (offsets, lag,
digests, snapshot, each partition's hash-chain head, see `projections.chain`) to the `admin` role
only; any other key gets its tenant's view: the branch, its token and whether the node is healthy.
`/metrics` needs `admin`.
"""

from __future__ import annotations

from typing import Final

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from eventlog.errors import LogError
from projections.snapshot import list_snapshots
from query_api.http.auth import allows
from query_api.http.deps import AdminDep, BranchQuery, NodeDep, ReaderDep
from query_api.http.problems import problem_response
from query_api.http.responses import json_response
from query_api.http.schemas.system import HealthPublic, ReadyPublic, StatusPublic
from query_api.node.branches import MAIN
from query_api.node.node import Node

__all__ = ["router"]

router = APIRouter(tags=["system"])

#: Seconds a client told "not healthy / not ready" should wait before asking again.
PROBE_RETRY_AFTER_S: Final = 1


def _failure(node: Node) -> str | None:
    """Why the node cannot serve (the apply loop or the log failed), or None."""
    if node.engine.error is not None:
        return f"the apply loop failed: {node.engine.error!r}"
    reason = node.log.failure()
    return None if reason is None else f"the log failed: {reason}"


@router.get("/health", response_model=HealthPublic)
async def health(node: NodeDep) -> Response:
    """Liveness: 200 `ok` while the apply loop and the log work; 503 `unhealthy` once either failed."""
    failure = _failure(node)
    if failure is not None:
        return problem_response(503, "unhealthy", failure, PROBE_RETRY_AFTER_S, status_detail="failed")
    return json_response({"status": "ok"})


@router.get("/ready", response_model=ReadyPublic)
async def ready(node: NodeDep) -> Response:
    """Readiness: 200 once the node has applied everything the log held just now; 503 `not_ready` before."""
    failure = _failure(node)
    if failure is not None:
        return problem_response(503, "unhealthy", failure, PROBE_RETRY_AFTER_S)
    try:
        lag = await node.engine.lag()
    except LogError as error:
        return problem_response(503, "log_unavailable", str(error), PROBE_RETRY_AFTER_S)
    behind = sum(lag)
    if behind:
        return problem_response(
            503, "not_ready", f"{behind} records appended but not yet applied", PROBE_RETRY_AFTER_S, lag=behind
        )
    return json_response({"status": "ready", "token": node.token()})


@router.get("/v1/status", response_model=StatusPublic)
async def status(node: NodeDep, reader: ReaderDep, branch: BranchQuery = MAIN) -> Response:
    """The caller's branch: token and health; with the admin role, per partition offsets, digests, snapshot, chains."""
    handle = await node.branches.get(reader.caller.tenant, branch)
    tenant_view = {
        "branch": handle.name,
        "token": handle.token(),
        "status": "ok" if _failure(node) is None and handle.engine.error is None else "failed",
    }
    if not allows(reader.role, "admin"):
        return json_response(tenant_view)
    ends = await node.log.end_offsets(handle.topic)
    applied = handle.engine.applied
    snapshots = list_snapshots(node.snapshot_dir, handle.topic) if node.snapshot_dir else []
    return json_response(
        {
            **tenant_view,
            "topic": handle.topic,
            "log": node.settings.log.split("://")[0],
            "partitions": [
                {
                    "partition": p,
                    "end_offset": end,
                    "applied_offset": applied[p],
                    "lag": end - applied[p],
                    "chain_head": handle.state.chain[p].hex(),
                }
                for p, end in enumerate(ends)
            ],
            "digests": handle.state.digests(),
            "undecodable_records": sum(handle.state.undecodable),
            "snapshot": {"path": str(snapshots[0].path), "cut": list(snapshots[0].cut)} if snapshots else None,
            "apply_error": None if handle.engine.error is None else repr(handle.engine.error),
        }
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(node: NodeDep, admin: AdminDep) -> str:
    """Prometheus text format (admin role): applied offset, end offset and lag per partition."""
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
