"""RunsModel: run lifecycle, per-run event sequence and hash chain, verification, digest determinism."""

from __future__ import annotations

import hashlib
import pickle
from collections import defaultdict
from typing import Any

import pytest

from commands import (
    DEFAULT_RUN_ID,
    Caller,
    Command,
    EventAppend,
    RunBegin,
    RunEnd,
    canonical_json,
    partition_of,
    stamp,
)
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.runs import GENESIS_HASH, RunsModel, RunView, VerifyResult, event_hash

_ids = iter(range(10**9))


def ctx(
    command: Command,
    run_id: str | None = "r1",
    *,
    at: int = 1_000,
    tenant: str = "t1",
    agent: str = "a1",
    tool: str | None = None,
    command_id: str | None = None,
) -> ApplyContext:
    """An apply context for `command` in run `run_id` sent by `agent` of `tenant` at log time `at`."""
    offset = next(_ids)
    envelope = stamp(
        command,
        Caller(tenant=tenant, agent_id=agent, tool_id=tool),
        run_id=run_id,
        command_id=command_id or f"cmd-{offset}",
    )
    return ApplyContext(envelope, partition=0, offset=offset, log_time_ms=at)


def event(event_type: str = "note", payload: Any = None, **fields: Any) -> EventAppend:
    return EventAppend(event_type=event_type, payload=payload, **fields)


def rejected(model: RunsModel, context: ApplyContext) -> Rejected:
    """Apply `context` expecting a rejection; check the digest did not move; return the rejection."""
    before = model.digest()
    with pytest.raises(Rejected) as info:
        model.apply(context)
    assert model.digest() == before
    return info.value


def begun(*run_ids: str, at: int = 1_000) -> RunsModel:
    model = RunsModel()
    for run_id in run_ids:
        model.apply(ctx(RunBegin(), run_id, at=at))
    return model


# -- lifecycle ---------------------------------------------------------------------------------------


def test_begin_records_the_run() -> None:
    model = RunsModel()
    begin = RunBegin(name="plan", metadata={"goal": "x"}, parent_run_id="r0")
    assert model.apply(ctx(begin, "r1", at=42)) == {"run_id": "r1", "status": "running", "begun_at_ms": 42}
    assert model.get_run("t1", "r1") == RunView(
        run_id="r1",
        name="plan",
        metadata={"goal": "x"},
        parent_run_id="r0",
        status="running",
        begun_at_ms=42,
        ended_at_ms=None,
        agent_id="a1",
        result=None,
        events=0,
        last_hash=GENESIS_HASH,
    )
    assert model.get_run("t1", "r2") is None


def test_begin_twice_is_already_exists() -> None:
    model = begun("r1")
    assert rejected(model, ctx(RunBegin(name="again"), "r1")).reason == "already_exists"


def test_end_closes_the_run_once() -> None:
    model = begun("r1")
    model.apply(ctx(event(), "r1"))
    result = model.apply(ctx(RunEnd(status="succeeded", result={"answer": 42}), "r1", at=2_000))
    assert result == {"run_id": "r1", "status": "succeeded", "ended_at_ms": 2_000, "events": 1}
    run = model.get_run("t1", "r1")
    assert run is not None
    assert (run.status, run.ended_at_ms, run.result) == ("succeeded", 2_000, {"answer": 42})
    assert rejected(model, ctx(RunEnd(status="failed"), "r1")).reason == "run_closed"
    assert rejected(model, ctx(event(), "r1")).reason == "run_closed"


def test_end_or_append_to_an_unknown_run_is_not_found() -> None:
    model = begun("r1")
    assert rejected(model, ctx(RunEnd(status="cancelled"), "r2")).reason == "not_found"
    assert rejected(model, ctx(event(), "r2")).reason == "not_found"


def test_the_default_run_takes_events_without_begin_and_cannot_begin_or_end() -> None:
    model = RunsModel()
    assert model.get_run("t1", DEFAULT_RUN_ID) is None
    assert model.verify("t1", DEFAULT_RUN_ID) == VerifyResult(True, 0, None, None)
    assert rejected(model, ctx(event(expected_seq=3), None)).extra == {"current_seq": 0}
    assert model.apply(ctx(event(), None, at=7))["seq"] == 1
    run = model.get_run("t1", DEFAULT_RUN_ID)
    assert run is not None
    assert (run.status, run.begun_at_ms, run.events) == ("running", 7, 1)
    assert rejected(model, ctx(RunBegin(), DEFAULT_RUN_ID)).reason == "already_exists"
    assert rejected(model, ctx(RunEnd(status="succeeded"), DEFAULT_RUN_ID)).reason == "forbidden"


def test_runs_are_isolated_by_tenant() -> None:
    model = begun("r1")
    assert model.get_run("t2", "r1") is None
    assert rejected(model, ctx(event(), "r1", tenant="t2")).reason == "not_found"
    model.apply(ctx(RunBegin(), "r1", tenant="t2"))
    model.apply(ctx(event(payload="t2"), "r1", tenant="t2"))
    assert model.events("t1", "r1") == []
    assert [e.payload for e in model.events("t2", "r1")] == ["t2"]
    assert model.list_runs("t3") == []


def test_list_runs_orders_by_begin_time_then_id_with_status_and_cursor() -> None:
    model = RunsModel()
    for run_id, at in [("r-b", 20), ("r-a", 20), ("r-c", 10), ("r-d", 30)]:
        model.apply(ctx(RunBegin(), run_id, at=at))
    model.apply(ctx(RunEnd(status="failed"), "r-a", at=40))
    assert [r.run_id for r in model.list_runs("t1")] == ["r-c", "r-a", "r-b", "r-d"]
    assert [r.run_id for r in model.list_runs("t1", status="running")] == ["r-c", "r-b", "r-d"]
    assert [r.run_id for r in model.list_runs("t1", status="failed")] == ["r-a"]
    assert [r.run_id for r in model.list_runs("t1", after="r-a", limit=1)] == ["r-b"]
    assert [r.run_id for r in model.list_runs("t1", after="r-d")] == []
    with pytest.raises(ValueError, match="unknown cursor"):
        model.list_runs("t1", after="nope")


# -- events and the chain ----------------------------------------------------------------------------


def test_events_are_sequenced_from_one_and_hash_chained() -> None:
    model = begun("r1")
    results = [
        model.apply(ctx(event("step", {"n": n}, thread_id="th1"), "r1", at=100 + n, command_id=f"ev{n}", tool="t"))
        for n in range(1, 4)
    ]
    assert [r["seq"] for r in results] == [1, 2, 3]
    assert [r["event_id"] for r in results] == ["ev1", "ev2", "ev3"]
    events = model.events("t1", "r1")
    assert events[0].prev_hash == GENESIS_HASH
    prev = GENESIS_HASH
    for n, view in enumerate(events, start=1):
        fields = {
            "run_id": "r1",
            "seq": n,
            "event_id": f"ev{n}",
            "type": "step",
            "payload": {"n": n},
            "thread_id": "th1",
            "agent_id": "a1",
            "tool_id": "t",
            "log_time_ms": 100 + n,
            "prev_hash": prev,
        }
        expected = hashlib.sha256(bytes.fromhex(prev) + canonical_json(fields)).hexdigest()
        assert view.hash == expected == results[n - 1]["hash"] == event_hash({**fields, "hash": "x"})
        assert view.prev_hash == prev
        prev = view.hash
    run = model.get_run("t1", "r1")
    assert run is not None
    assert (run.events, run.last_hash) == (3, prev)


def test_expected_seq_makes_the_append_optimistic() -> None:
    model = begun("r1")
    assert model.apply(ctx(event(expected_seq=0), "r1"))["seq"] == 1
    assert model.apply(ctx(event(expected_seq=1), "r1"))["seq"] == 2
    error = rejected(model, ctx(event(expected_seq=1), "r1"))
    assert (error.reason, error.extra) == ("version_conflict", {"current_seq": 2})
    assert model.apply(ctx(event(), "r1"))["seq"] == 3


def test_events_filter_by_thread_agent_type_with_range_and_limit() -> None:
    model = begun("r1")
    for n in range(12):
        thread = f"th{n % 2}"
        model.apply(ctx(event(f"type{n % 3}", n, thread_id=thread), "r1", agent=f"a{n % 4}"))
    assert [e.seq for e in model.events("t1", "r1", from_seq=10)] == [10, 11, 12]
    assert [e.seq for e in model.events("t1", "r1", limit=2)] == [1, 2]
    assert [e.payload for e in model.events("t1", "r1", thread_id="th1")] == [1, 3, 5, 7, 9, 11]
    assert [e.payload for e in model.events("t1", "r1", agent_id="a2")] == [2, 6, 10]
    assert [e.payload for e in model.events("t1", "r1", type="type0", from_seq=2)] == [3, 6, 9]
    assert [e.payload for e in model.events("t1", "r1", thread_id="th0", agent_id="a0", limit=2)] == [0, 4]
    assert model.events("t1", "r1", limit=0) == []
    assert model.events("t1", "nope") == []


def test_verify_accepts_an_untouched_chain() -> None:
    model = begun("r1")
    for n in range(5):
        model.apply(ctx(event(payload=n), "r1"))
    assert model.verify("t1", "r1") == VerifyResult(True, 5, None, None)
    assert model.verify("t1", "unknown").ok is False


@pytest.mark.parametrize(
    ("field", "value"),
    [("payload", "forged"), ("type", "other"), ("agent_id", "mallory"), ("log_time_ms", 0), ("hash", "00" * 32)],
)
def test_verify_finds_a_tampered_event_at_its_seq(field: str, value: Any) -> None:
    model = begun("r1")
    for n in range(6):
        model.apply(ctx(event(payload=n), "r1"))
    model._runs["t1"]["r1"].events[2][field] = value
    result = model.verify("t1", "r1")
    assert (result.ok, result.events, result.first_bad_seq) == (False, 6, 3)
    assert result.reason


def test_verify_finds_a_rehashed_forgery_through_the_next_link() -> None:
    model = begun("r1")
    for n in range(4):
        model.apply(ctx(event(payload=n), "r1"))
    stored = model._runs["t1"]["r1"].events[1]
    stored["payload"] = "forged"
    stored["hash"] = event_hash(stored)
    result = model.verify("t1", "r1")
    assert (result.ok, result.first_bad_seq) == (False, 3)


def test_verify_finds_a_removed_event_and_a_bad_head() -> None:
    model = begun("r1", "r2")
    for n in range(4):
        model.apply(ctx(event(payload=n), "r1"))
        model.apply(ctx(event(payload=n), "r2"))
    del model._runs["t1"]["r1"].events[1]
    assert model.verify("t1", "r1").first_bad_seq == 2
    model._runs["t1"]["r2"].last_hash = "ab" * 32
    assert model.verify("t1", "r2") == VerifyResult(False, 4, 4, "run head hash does not match")


# -- determinism -------------------------------------------------------------------------------------


def _workload() -> list[ApplyContext]:
    """Runs of two tenants begun, appended to (some optimistically, some to unknown runs) and ended."""
    contexts: list[ApplyContext] = []
    at = 0
    for round_ in range(8):
        for r in range(6):
            tenant, run_id = f"t{r % 2}", f"run{r}"
            at += 7
            if round_ == 0:
                contexts.append(ctx(RunBegin(name=f"n{r}"), run_id, tenant=tenant, at=at))
            elif round_ == 7 and r % 3 == 0:
                contexts.append(ctx(RunEnd(status="succeeded"), run_id, tenant=tenant, at=at))
            else:
                seq = round_ - 1 if r % 2 else round_
                contexts.append(ctx(event(payload=[r, round_], expected_seq=seq), run_id, tenant=tenant, at=at))
                contexts.append(ctx(event(thread_id="th"), f"ghost{r}", tenant=tenant, at=at))
                contexts.append(ctx(event(payload=r), None, tenant=tenant, at=at))
    return contexts


def _apply_all(model: RunsModel, contexts: list[ApplyContext]) -> tuple[int, int]:
    applied = refused = 0
    for context in contexts:
        try:
            model.apply(context)
            applied += 1
        except Rejected:
            refused += 1
    return applied, refused


def test_digest_is_independent_of_partition_interleaving_and_survives_pickle() -> None:
    split: dict[int, list[ApplyContext]] = defaultdict(list)
    for context in _workload():
        split[partition_of(context.envelope, 3)].append(context)
    parts = [split[p] for p in sorted(split)]
    assert len(parts) > 1
    sequential, interleaved = RunsModel(), RunsModel()
    counts = _apply_all(sequential, [c for part in reversed(parts) for c in part])
    longest = max(len(part) for part in parts)
    assert _apply_all(interleaved, [part[i] for i in range(longest) for part in parts if i < len(part)]) == counts
    assert counts[0] > 0
    assert counts[1] > 0
    assert sequential.digest() == interleaved.digest()
    restored = pickle.loads(pickle.dumps(interleaved))
    assert restored.digest() == interleaved.digest()
    assert restored.events("t0", "run0") == interleaved.events("t0", "run0")
    assert restored.verify("t1", "run1").ok
    assert restored.verify("t0", DEFAULT_RUN_ID).events > 0


def test_digest_tracks_runs_and_events() -> None:
    model = RunsModel()
    digests = {model.digest()}
    model.apply(ctx(RunBegin(), "r1"))
    digests.add(model.digest())
    model.apply(ctx(event(), "r1"))
    digests.add(model.digest())
    model.apply(ctx(RunEnd(status="cancelled"), "r1"))
    digests.add(model.digest())
    assert len(digests) == 4
