"""The timeline: a run's recorded commands (the replay cassette), run and cut diffs, raw log and run exports.

- `GET /v1/runs/{run_id}/replay`: every command of the caller's tenant that names the run, up to the
  node's applied cut, each with its position, log time, outcome and (for events) seq. Order: log
  order within a partition, then log time across partitions. A retried command id is marked `retry`.
- `GET /v1/runs/{run_id}/export`: the run as NDJSON: its events with payloads (or, with
  `commands=true`, the cassette items).
- `GET /v1/diff?run_a=&run_b=`: events aligned by seq, first divergence, differing writes.
  `GET /v1/diff?cut_a=&cut_b=`: kv records, state records and vectors added/changed/removed between
  the states at two cuts (tokens `p:o,...`, a partition a token omits cut at 0, or log times
  `t:<ms>`/ISO-8601 as for `as_of`; without `cut_b`, the live state). The states come from the
  node's as-of cache (`query_api.node.branches`), rebuilt from the newest usable snapshot.
- `GET /v1/log`: raw records as NDJSON (the `projections.export` line format), streamed: one
  partition and offsets (`partition`, `from`, `to`) or all partitions between two cut tokens. Only
  the caller's tenant's commands are included (undecodable records belong to no tenant). Past
  `limit` records a last line `{"truncated": true, "next_from": "p:o,..."}` says where to go on.

Every endpoint takes `branch` (default `main`); replay, run export and log reads also take `as_of`
(the cassette and the log then stop at that cut). A diff may compare across branches: `branch_b`
names the branch of `run_b`/`cut_b` (default: `branch`), so a run diffs against its fork.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from commands import DEFAULT_RUN_ID, Envelope, command_fingerprint
from commands.fields import Id
from eventlog.records import Record
from projections.cut import parse_token
from projections.diff import EventDiff, diff_cuts, diff_runs
from projections.engine import EngineState
from projections.export import dumps_line, export_lines, run_commands, run_event_lines
from projections.runs import RunsModel, RunView
from query_api.http.deps import (
    QUERY_CUT_CHARS_MAX,
    AdminDep,
    BranchQuery,
    CallerDep,
    NodeDep,
    ReaderDep,
    TokenQuery,
    View,
    ViewDep,
    WaitQuery,
)
from query_api.http.problems import ApiProblem
from query_api.http.responses import json_response
from query_api.http.schemas.timeline import CassettePublic, CutDiffPublic, RunDiffPublic
from query_api.node.branches import BRANCH_NAME_PATTERN, MAIN, MAX_BRANCH_NAME_CHARS, Branch, cut_token
from query_api.node.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["timeline"])

RunPath = Annotated[Id, Path(description="Run id")]
#: NDJSON media type of the streaming endpoints.
NDJSON: Final = "application/x-ndjson"
#: Most cassette items one replay answer holds.
REPLAY_LIMIT_MAX: Final = 100_000
#: Most changes (events, writes or state changes) one diff answer lists.
DIFF_LIMIT_MAX: Final = 10_000
#: Most records one `GET /v1/log` streams.
LOG_LIMIT_MAX: Final = 10_000_000
CutQuery = Annotated[
    str | None,
    Query(max_length=QUERY_CUT_CHARS_MAX, description="First cut: a token `p:o,...` or a log time `t:<ms>`"),
]
OtherBranchQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_BRANCH_NAME_CHARS,
        pattern=BRANCH_NAME_PATTERN,
        description="Branch of run_b / cut_b (default: `branch`)",
    ),
]


def _runs(state: EngineState) -> RunsModel:
    """The runs model of `state`."""
    model = state.model("runs")
    assert isinstance(model, RunsModel)
    return model


def _run(state: EngineState, tenant: str, run_id: str) -> RunView:
    """The run, or a 404 problem."""
    view = _runs(state).get_run(tenant, run_id)
    if view is None:
        raise ApiProblem(404, "not_found", f"no run {run_id!r}")
    return view


def _cut(view: View) -> list[int]:
    """The cut a view reads at: its as-of cut, else what its branch has applied."""
    return list(view.as_of.cut) if view.as_of is not None else view.branch.engine.applied


def _item(state: EngineState, tenant: str, record: Record, envelope: Envelope, retry: bool) -> dict[str, Any]:
    """One cassette item: where and when the command sits, the command, its outcome, its event seq."""
    outcome = state.outcome(record.partition, envelope)
    event_seq = None
    if envelope.type == "event.append":
        event_seq = _runs(state).event_seq(tenant, envelope.run_id, envelope.command_id)
    return {
        "partition": record.partition,
        "offset": record.offset,
        "timestamp_ms": record.timestamp_ms,
        "command_id": envelope.command_id,
        "type": envelope.type,
        "agent_id": envelope.agent_id,
        "tool_id": envelope.tool_id,
        "namespace": envelope.namespace,
        "command": envelope.command.model_dump(mode="json"),
        "event_seq": event_seq,
        "outcome": None if outcome is None else outcome.public(),
        "retry": retry,
    }


async def _cassette(
    node: Node, branch: Branch, state: EngineState, until: list[int], tenant: str, run_id: str, limit: int
) -> tuple[list[tuple[Envelope, dict[str, Any]]], bool]:
    """The run's commands below `until` with their cassette items, and whether `limit` cut them short."""
    run = _run(state, tenant, run_id)
    found, truncated = await run_commands(
        node.log, branch.topic, tenant, run_id, since_ms=run.begun_at_ms, until=until, limit=limit
    )
    seen: set[tuple[int, str, str]] = set()
    items = []
    for record, envelope in found:
        key = (record.partition, envelope.command_id, command_fingerprint(envelope))
        items.append((envelope, _item(state, tenant, record, envelope, key in seen)))
        seen.add(key)
    return items, truncated


@router.get("/runs/{run_id}/replay", response_model=CassettePublic)
async def run_cassette(
    run_id: RunPath,
    view: ViewDep,
    caller: CallerDep,
    limit: Annotated[int, Query(ge=1, le=REPLAY_LIMIT_MAX)] = 10_000,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """The run's recorded commands in order (the replay cassette), with positions, outcomes and event seqs."""
    await view.wait_token(token, wait_ms)
    until = _cut(view)
    items, truncated = await _cassette(view.node, view.branch, view.state, until, caller.tenant, run_id, limit)
    return json_response(
        {"run_id": run_id, "items": [item for _, item in items], "truncated": truncated, "cut": cut_token(until)}
    )


@router.get("/runs/{run_id}/export", response_class=StreamingResponse)
async def export_run(
    run_id: RunPath,
    view: ViewDep,
    caller: CallerDep,
    commands: Annotated[bool, Query(description="Stream the cassette items instead of the events")] = False,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> StreamingResponse:
    """The run as an NDJSON dataset: one event (with payload, seq, hashes) per line, or one command per line."""
    await view.wait_token(token, wait_ms)
    state = view.state
    if run_id != DEFAULT_RUN_ID:
        _run(state, caller.tenant, run_id)
    if commands:
        found = await _cassette(view.node, view.branch, state, _cut(view), caller.tenant, run_id, REPLAY_LIMIT_MAX)
        lines = [item for _, item in found[0]]
    else:
        lines = list(run_event_lines(_runs(state), caller.tenant, run_id))
    body = b"".join(dumps_line(line) for line in lines)
    return StreamingResponse(iter((body,)), media_type=NDJSON)


def _full_cut(token: str, partitions: int) -> list[int]:
    """A cut token as one offset per partition (omitted partitions at 0)."""
    required = parse_token(token, partitions)
    return [required.get(p, 0) for p in range(partitions)]


def _event_diff(change: EventDiff | None) -> dict[str, Any] | None:
    """The JSON form of an event difference."""
    return None if change is None else dataclasses.asdict(change)


async def _diff_runs(
    node: Node, branches: tuple[Branch, Branch], tenant: str, runs: tuple[str, str], limit: int
) -> dict[str, Any]:
    """The run diff of `runs[0]` on `branches[0]` and `runs[1]` on `branches[1]`."""
    events = []
    commands = []
    for branch, run_id in zip(branches, runs, strict=True):
        state = branch.state
        items, _ = await _cassette(node, branch, state, branch.engine.applied, tenant, run_id, REPLAY_LIMIT_MAX)
        events.append(list(run_event_lines(_runs(state), tenant, run_id)))
        commands.append(
            [
                envelope
                for envelope, item in items
                if not item["retry"] and (item["outcome"] is None or item["outcome"]["status"] == "applied")
            ]
        )
    diff = diff_runs(events[0], events[1], commands_a=commands[0], commands_b=commands[1])
    return {
        "run_a": runs[0],
        "run_b": runs[1],
        "branch_a": branches[0].name,
        "branch_b": branches[1].name,
        "identical": diff.identical,
        "events_a": diff.events_a,
        "events_b": diff.events_b,
        "common_prefix": diff.common_prefix,
        "first_divergence": _event_diff(diff.first_divergence),
        "events": [dataclasses.asdict(change) for change in diff.events[:limit]],
        "writes": [dataclasses.asdict(change) for change in diff.writes[:limit]],
        "truncated": len(diff.events) > limit or len(diff.writes) > limit,
    }


async def _state_at(node: Node, branch: Branch, as_of: str | None, tenant: str) -> tuple[list[int], EngineState]:
    """The cut and state of `branch` as of a cut token or log time (None: its live state)."""
    if as_of is None:
        return branch.engine.applied, branch.state
    wait_s = node.settings.read_wait_ms_max / 1000
    resolved = await node.branches.resolve_as_of(branch, as_of, wait_s)
    return list(resolved.cut), await node.branches.state_at(branch, resolved.cut, tenant)


async def _diff_cuts(
    node: Node, branches: tuple[Branch, Branch], tenant: str, cut_a: str, cut_b: str | None, limit: int
) -> dict[str, Any]:
    """The cut diff of `cut_a` on `branches[0]` and `cut_b` on `branches[1]` (None: live)."""
    first, state_a = await _state_at(node, branches[0], cut_a, tenant)
    second, state_b = await _state_at(node, branches[1], cut_b, tenant)  # no await after this: live states hold still
    diff = diff_cuts(state_a, state_b, tenant=tenant)
    return {
        "cut_a": cut_token(first),
        "cut_b": cut_token(second),
        "branch_a": branches[0].name,
        "branch_b": branches[1].name,
        "counts": diff.counts(),
        "changes": [dataclasses.asdict(change) for change in diff.changes[:limit]],
        "truncated": len(diff.changes) > limit,
    }


@router.get("/diff", response_model=RunDiffPublic | CutDiffPublic)
async def diff(
    node: NodeDep,
    reader: ReaderDep,
    run_a: Annotated[Id | None, Query(description="First run of a run diff")] = None,
    run_b: Annotated[Id | None, Query(description="Second run of a run diff")] = None,
    cut_a: CutQuery = None,
    cut_b: Annotated[
        str | None, Query(max_length=QUERY_CUT_CHARS_MAX, description="Second cut (default: the live state)")
    ] = None,
    branch: BranchQuery = MAIN,
    branch_b: OtherBranchQuery = None,
    limit: Annotated[int, Query(ge=1, le=DIFF_LIMIT_MAX)] = 1_000,
    token: TokenQuery = None,
    wait_ms: WaitQuery = None,
) -> Response:
    """Diff two runs (`run_a`, `run_b`) or the state at two cuts (`cut_a`, `cut_b`); exactly one of the two pairs."""
    runs = run_a is not None or run_b is not None
    cuts = cut_a is not None or cut_b is not None
    if runs == cuts:
        raise ApiProblem(400, "invalid", "give either run_a and run_b, or cut_a (and optionally cut_b)")
    caller = reader.caller
    first = await node.branches.get(caller.tenant, branch)
    second = first if branch_b is None else await node.branches.get(caller.tenant, branch_b)
    await node.wait_token(token, wait_ms, None if first.name == MAIN else first)
    if runs:
        if run_a is None or run_b is None:
            raise ApiProblem(400, "invalid", "a run diff needs both run_a and run_b")
        return json_response(await _diff_runs(node, (first, second), caller.tenant, (run_a, run_b), limit))
    if cut_a is None:
        raise ApiProblem(400, "invalid", "a cut diff needs cut_a")
    return json_response(await _diff_cuts(node, (first, second), caller.tenant, cut_a, cut_b, limit))


def _offset(text: str | None, name: str) -> int | None:
    """An offset query parameter (None: not given); 400 unless digits."""
    if text is None:
        return None
    if not text.isdigit():
        raise ApiProblem(400, "invalid", f"`{name}` must be an offset when `partition` is given, not {text!r}")
    return int(text)


@router.get("/log", response_class=StreamingResponse)
async def read_log(
    view: ViewDep,
    caller: CallerDep,
    admin: AdminDep,
    partition: Annotated[int | None, Query(ge=0, description="One partition (then from/to are offsets)")] = None,
    start: Annotated[str | None, Query(alias="from", description="First offset, or a cut token")] = None,
    end: Annotated[str | None, Query(alias="to", description="Offset or cut token to stop before")] = None,
    limit: Annotated[
        int, Query(ge=1, le=LOG_LIMIT_MAX, description="Most records; if more remain, a last line gives `next_from`")
    ] = LOG_LIMIT_MAX,
    header: Annotated[bool, Query(description="Start with the export header line")] = False,
) -> StreamingResponse:
    """Raw records of the caller's tenant as NDJSON, streamed (admin role): position, time, key, headers, envelope."""
    topic, log = view.branch.topic, view.node.log
    ends = list(view.as_of.cut) if view.as_of is not None else await log.end_offsets(topic)
    partitions = len(ends)
    if partition is not None:
        if partition >= partitions:
            raise ApiProblem(400, "invalid", f"partition {partition} outside 0..{partitions - 1}")
        first, stop = [*ends], [*ends]
        lowest, highest = _offset(start, "from"), _offset(end, "to")
        first[partition] = 0 if lowest is None else lowest
        stop[partition] = ends[partition] if highest is None else min(ends[partition], highest)
    else:
        first = _full_cut(start, partitions) if start is not None else [0] * partitions
        stop = [min(o, e) for o, e in zip(_full_cut(end, partitions), ends, strict=True)] if end is not None else ends
    lines: AsyncIterator[bytes] = export_lines(
        log, topic, first, stop, tenant=caller.tenant, header=header, limit=limit
    )
    return StreamingResponse(lines, media_type=NDJSON)
