"""TracesModel: typed trace entities, parent links forming trees, run and event links, digest determinism."""

from __future__ import annotations

import pickle
from collections import defaultdict
from typing import Any

import pytest

from commands import DEFAULT_RUN_ID, Caller, Command, EventAppend, RunBegin, RunEnd, TraceRecord, partition_of, stamp
from projections.model import ApplyContext, ReadModel
from projections.outcome import Rejected
from projections.runs import RunsModel
from projections.traces import TraceNode, TracesModel, TraceView

_ids = iter(range(10**9))


def ctx(
    command: Command,
    run_id: str | None = "r1",
    *,
    at: int = 1_000,
    tenant: str = "t1",
    agent: str = "a1",
    command_id: str | None = None,
) -> ApplyContext:
    """An apply context for `command` in run `run_id` sent by `agent` of `tenant` at log time `at`."""
    offset = next(_ids)
    envelope = stamp(
        command,
        Caller(tenant=tenant, agent_id=agent, tool_id="tool"),
        run_id=run_id,
        command_id=command_id or f"c{offset}",
    )
    return ApplyContext(envelope, partition=0, offset=offset, log_time_ms=at)


def trace(trace_id: str, kind: Any = "decision", parent: str | None = None, **fields: Any) -> TraceRecord:
    return TraceRecord(trace_id=trace_id, kind=kind, parent_id=parent, **fields)


def rejected(model: TracesModel, context: ApplyContext) -> Rejected:
    """Apply `context` expecting a rejection; check the digest did not move; return the rejection."""
    before = model.digest()
    with pytest.raises(Rejected) as info:
        model.apply(context)
    assert model.digest() == before
    return info.value


def shape(nodes: list[TraceNode] | tuple[TraceNode, ...]) -> list[Any]:
    """A forest as nested `[trace_id, [children...]]` lists."""
    return [[node.trace.trace_id, shape(node.children)] for node in nodes]


def linked() -> tuple[RunsModel, TracesModel]:
    """A runs model with run r1 holding two events (ids ev1, ev2) and a traces model bound to it."""
    runs = RunsModel()
    runs.apply(ctx(RunBegin(), "r1"))
    runs.apply(ctx(EventAppend(event_type="tool"), "r1", command_id="ev1"))
    runs.apply(ctx(EventAppend(event_type="tool"), "r1", command_id="ev2"))
    return runs, TracesModel(runs)


# -- unlinked traces ---------------------------------------------------------------------------------


def test_record_and_get_a_trace() -> None:
    model = TracesModel()
    result = model.apply(ctx(trace("t-1", "tool_call", data={"tool": "grep"}, seq=4, event_id="e4"), at=77))
    assert result == {"run_id": "r1", "trace_id": "t-1", "position": 1}
    assert model.get("t1", "r1", "t-1") == TraceView(
        run_id="r1",
        trace_id="t-1",
        kind="tool_call",
        data={"tool": "grep"},
        seq=4,
        event_id="e4",
        parent_id=None,
        agent_id="a1",
        tool_id="tool",
        log_time_ms=77,
        position=1,
    )
    assert model.get("t1", "r1", "nope") is None
    assert model.get("t1", "r2", "t-1") is None


def test_trace_ids_are_unique_per_run() -> None:
    model = TracesModel()
    model.apply(ctx(trace("x")))
    assert rejected(model, ctx(trace("x", "assumption"))).reason == "already_exists"
    model.apply(ctx(trace("x"), "r2"))
    model.apply(ctx(trace("x"), tenant="t2"))
    assert len(model.list("t1", "r2")) == len(model.list("t2", "r1")) == 1


def test_a_parent_must_exist_in_the_same_run() -> None:
    model = TracesModel()
    model.apply(ctx(trace("root"), "r1"))
    assert rejected(model, ctx(trace("child", parent="missing"), "r1")).reason == "not_found"
    assert rejected(model, ctx(trace("child", parent="root"), "r2")).reason == "not_found"
    assert rejected(model, ctx(trace("child", parent="root"), "r1", tenant="t2")).reason == "not_found"
    assert rejected(model, ctx(trace("self", parent="self"), "r1")).reason == "not_found"


def test_tree_nests_children_in_log_order() -> None:
    model = TracesModel()
    for trace_id, parent in [
        ("q", None),
        ("plan", "q"),
        ("other-root", None),
        ("call-2", "plan"),
        ("call-1", "plan"),
        ("cite", "q"),
        ("deep", "call-1"),
    ]:
        model.apply(ctx(trace(trace_id, parent=parent)))
    assert shape(model.tree("t1", "r1")) == [
        ["q", [["plan", [["call-2", []], ["call-1", [["deep", []]]]]], ["cite", []]]],
        ["other-root", []],
    ]
    assert model.tree("t1", "r9") == []


def test_a_deep_chain_builds_without_recursion() -> None:
    model = TracesModel()
    model.apply(ctx(trace("n0")))
    for n in range(1, 3_000):
        model.apply(ctx(trace(f"n{n}", parent=f"n{n - 1}")))
    node = model.tree("t1", "r1")[0]
    depth = 1
    while node.children:
        (node,) = node.children
        depth += 1
    assert depth == 3_000


def test_list_in_log_order_optionally_by_kind() -> None:
    model = TracesModel()
    kinds = ["model_input", "model_output", "decision", "confidence", "model_input", "citation"]
    for n, kind in enumerate(kinds):
        model.apply(ctx(trace(f"t{n}", kind)))
    assert [t.trace_id for t in model.list("t1", "r1")] == [f"t{n}" for n in range(6)]
    assert [t.position for t in model.list("t1", "r1")] == [1, 2, 3, 4, 5, 6]
    assert [t.trace_id for t in model.list("t1", "r1", kind="model_input")] == ["t0", "t4"]
    assert model.list("t1", "r1", kind="assumption") == []
    assert model.list("t1", "r2") == []


# -- linked to the runs model ------------------------------------------------------------------------


def test_linked_traces_need_an_open_run() -> None:
    runs, traces = linked()
    assert rejected(traces, ctx(trace("x"), "unknown")).reason == "not_found"
    assert traces.apply(ctx(trace("x"), None))["run_id"] == DEFAULT_RUN_ID
    runs.apply(ctx(RunEnd(status="failed"), "r1"))
    assert rejected(traces, ctx(trace("y"), "r1")).reason == "run_closed"


def test_linked_traces_resolve_event_links() -> None:
    _, traces = linked()
    traces.apply(ctx(trace("by-id", event_id="ev2")))
    traces.apply(ctx(trace("by-seq", seq=1)))
    traces.apply(ctx(trace("both", seq=2, event_id="ev2")))
    traces.apply(ctx(trace("none")))
    links = [(t.trace_id, t.seq, t.event_id) for t in traces.list("t1", "r1")]
    assert links == [("by-id", 2, "ev2"), ("by-seq", 1, "ev1"), ("both", 2, "ev2"), ("none", None, None)]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event_id": "ev9"}, "not_found"),
        ({"seq": 3}, "not_found"),
        ({"seq": 1, "event_id": "ev2"}, "invalid"),
    ],
)
def test_linked_traces_refuse_bad_event_links(fields: dict[str, Any], reason: str) -> None:
    _, traces = linked()
    assert rejected(traces, ctx(trace("x", **fields))).reason == reason


def test_pickled_with_its_runs_model_the_link_is_shared_again() -> None:
    runs, traces = linked()
    traces.apply(ctx(trace("a", seq=1)))
    runs_copy, restored = pickle.loads(pickle.dumps((runs, traces)))
    assert restored.digest() == traces.digest()
    assert restored.get("t1", "r1", "a") == traces.get("t1", "r1", "a")
    runs_copy.apply(ctx(RunEnd(status="succeeded"), "r1"))
    assert rejected(restored, ctx(trace("b"), "r1")).reason == "run_closed"
    assert traces.apply(ctx(trace("b"), "r1"))["position"] == 2  # the original pair is untouched


def test_bind_switches_run_checks_on_and_off() -> None:
    runs, traces = linked()
    traces.bind(None)
    traces.apply(ctx(trace("unchecked", seq=99), "unknown"))
    traces.bind(runs)
    assert rejected(traces, ctx(trace("checked"), "unknown")).reason == "not_found"


# -- determinism -------------------------------------------------------------------------------------


def _workload() -> list[ApplyContext]:
    """Runs over two tenants with events and traces (some refused: duplicates, missing parents or runs)."""
    contexts: list[ApplyContext] = []
    for r in range(6):
        contexts.append(ctx(RunBegin(), f"run{r}", tenant=f"t{r % 2}", at=r))
    for n in range(40):
        r = n % 6
        tenant, run_id = f"t{r % 2}", f"run{r if n % 9 else 99}"
        contexts.append(ctx(EventAppend(event_type="e"), run_id, tenant=tenant, at=100 + n))
        parent = f"x{n - 6}" if n >= 6 and n % 4 else None
        contexts.append(ctx(trace(f"x{n % 30}", parent=parent, seq=1 + n // 6), run_id, tenant=tenant, at=100 + n))
    return contexts


def _apply_all(models: dict[str, ReadModel], contexts: list[ApplyContext]) -> tuple[int, int]:
    applied = refused = 0
    for context in contexts:
        try:
            models[context.envelope.type].apply(context)
            applied += 1
        except Rejected:
            refused += 1
    return applied, refused


def _models() -> tuple[RunsModel, TracesModel, dict[str, ReadModel]]:
    runs = RunsModel()
    traces = TracesModel(runs)
    by_type: dict[str, ReadModel] = {t: runs for t in runs.command_types}
    by_type.update({t: traces for t in traces.command_types})
    return runs, traces, by_type


def test_digest_is_independent_of_partition_interleaving_and_survives_pickle() -> None:
    split: dict[int, list[ApplyContext]] = defaultdict(list)
    for context in _workload():
        split[partition_of(context.envelope, 4)].append(context)
    parts = [split[p] for p in sorted(split)]
    assert len(parts) > 1
    runs_a, traces_a, models_a = _models()
    runs_b, traces_b, models_b = _models()
    counts = _apply_all(models_a, [c for part in reversed(parts) for c in part])
    longest = max(len(part) for part in parts)
    assert _apply_all(models_b, [part[i] for i in range(longest) for part in parts if i < len(part)]) == counts
    assert counts[0] > 0
    assert counts[1] > 0
    assert traces_a.digest() == traces_b.digest()
    assert runs_a.digest() == runs_b.digest()
    assert pickle.loads(pickle.dumps(traces_b)).digest() == traces_a.digest()
    assert shape(traces_a.tree("t0", "run0")) == shape(traces_b.tree("t0", "run0"))
