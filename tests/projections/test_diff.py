"""Run diffs (events aligned by seq, differing writes) and cut diffs (records, state, vectors) on known cases."""

from __future__ import annotations

from typing import Any

import pytest

from commands import (
    Caller,
    CollectionCreate,
    CommandProducer,
    Envelope,
    KvDelete,
    KvPut,
    StateCas,
    Txn,
    TxnKvPut,
    TxnStateSet,
    VectorDelete,
    VectorUpsert,
    embedding_bytes,
    stamp,
)
from eventlog.memory import MemoryLog
from projections.diff import diff_cuts, diff_runs, run_writes, states_at
from projections.timetravel import TimeTravelError

pytestmark = pytest.mark.anyio

ACME = Caller("acme", agent_id="planner")
GLOBEX = Caller("globex", agent_id="rival")


def event(seq: int, type: str, payload: Any = None, **extra: Any) -> dict[str, Any]:
    """An event as the runs model reads it (ids, hashes and log time differ between runs and are not compared)."""
    base = {
        "run_id": "r",
        "seq": seq,
        "event_id": f"e{seq}-{id(payload)}",
        "type": type,
        "payload": payload,
        "thread_id": None,
        "agent_id": "planner",
        "tool_id": None,
        "log_time_ms": 1000 + seq,
        "prev_hash": "0" * 64,
        "hash": f"{seq:064d}",
    }
    return base | extra


# -- runs -----------------------------------------------------------------------------------------


def test_identical_runs_differ_in_nothing_but_ids_hashes_and_times() -> None:
    a = [event(1, "plan", {"step": 1}), event(2, "act", {"tool": "search"})]
    b = [event(1, "plan", {"step": 1}, log_time_ms=9, event_id="x"), event(2, "act", {"tool": "search"}, hash="h")]
    diff = diff_runs(a, b)
    assert diff.identical
    assert diff.first_divergence is None
    assert (diff.events_a, diff.events_b, diff.common_prefix) == (2, 2, 2)


def test_first_divergence_and_every_differing_event() -> None:
    a = [event(1, "plan"), event(2, "act", {"q": "a"}), event(3, "act", {"q": "b"}), event(4, "done")]
    b = [
        event(1, "plan"),
        event(2, "act", {"q": "a"}),
        event(3, "act", {"q": "B"}, thread_id="t2"),
        event(4, "done"),
        event(5, "extra"),
    ]
    diff = diff_runs(a, b)
    assert not diff.identical
    first = diff.first_divergence
    assert first is not None
    assert (first.seq, first.status, first.fields) == (3, "changed", ("payload", "thread_id"))
    assert first.a is not None
    assert first.a["payload"] == {"q": "b"}
    assert first.b is not None
    assert first.b["payload"] == {"q": "B"}
    assert diff.common_prefix == 2
    assert [(change.seq, change.status) for change in diff.events] == [(3, "changed"), (5, "only_b")]


def test_a_shorter_run_diverges_where_it_stops() -> None:
    diff = diff_runs([event(1, "plan"), event(2, "act")], [event(1, "plan")])
    assert diff.first_divergence is not None
    assert (diff.first_divergence.seq, diff.first_divergence.status) == (2, "only_a")
    assert diff.common_prefix == 1


def envelopes(*commands: tuple[Any, str | None]) -> list[Envelope]:
    """Envelopes of acme's run `r` for (command, namespace) pairs."""
    return [stamp(command, ACME, namespace=namespace, run_id="r") for command, namespace in commands]


def test_differing_writes_are_the_last_effect_per_target() -> None:
    a = envelopes(
        (KvPut(key="plan", value={"v": 1}), "notes"),
        (KvPut(key="plan", value={"v": 2}), "notes"),
        (KvPut(key="same", value=1), "notes"),
        (StateCas(name="budget", expected_version=0, value=100), "default"),
        (KvPut(key="gone", value=1), "notes"),
    )
    b = envelopes(
        (KvPut(key="plan", value={"v": 3}), "notes"),
        (KvPut(key="same", value=1), "notes"),
        (Txn(writes=[TxnKvPut(key="gone", value=1), TxnStateSet(key="budget", value=100)]), "notes"),
        (KvDelete(key="gone"), "notes"),
        (VectorUpsert(collection="docs", id="d1", embedding=embedding_bytes([1.0, 0.0])), "default"),
    )
    writes = {(w.kind, w.namespace, w.key): w for w in diff_runs([], [], commands_a=a, commands_b=b).writes}
    assert set(writes) == {
        ("kv", "notes", "plan"),
        ("kv", "notes", "gone"),
        ("state", "default", "budget"),
        ("state", "notes", "budget"),
        ("vector", "default", "docs/d1"),
    }
    plan = writes[("kv", "notes", "plan")]
    assert (plan.status, plan.a, plan.b) == (
        "changed",
        {"op": "put", "value": {"v": 2}, "metadata": None},
        {
            "op": "put",
            "value": {"v": 3},
            "metadata": None,
        },
    )
    assert writes[("kv", "notes", "gone")].b == {"op": "delete"}
    assert writes[("state", "default", "budget")].status == "only_a"
    assert writes[("state", "notes", "budget")].status == "only_b"
    assert writes[("vector", "default", "docs/d1")].b == {"op": "upsert", "embedding": "AACAPwAAAAA=", "metadata": None}
    assert run_writes([]) == {}


# -- cuts -----------------------------------------------------------------------------------------


async def topic_with(commands: list[Envelope], partitions: int = 4) -> tuple[MemoryLog, CommandProducer]:
    """A memory log whose topic `main` holds `commands`."""
    log = MemoryLog()
    await log.create_topic("main", partitions)
    producer = CommandProducer(log, "main")
    if commands:
        await producer.submit_many(commands)
    return log, producer


async def test_cut_diff_lists_added_changed_and_removed_records_state_and_vectors() -> None:
    first = [
        stamp(KvPut(key="keep", value=1), ACME, namespace="notes"),
        stamp(KvPut(key="change", value={"n": 1}, metadata={"tag": "a"}), ACME, namespace="notes"),
        stamp(KvPut(key="drop", value=True), ACME, namespace="notes"),
        stamp(StateCas(name="budget", expected_version=0, value=100), ACME, namespace="notes"),
        stamp(CollectionCreate(name="docs", dimension=2, metric="dot"), ACME, namespace="notes"),
        stamp(VectorUpsert(collection="docs", id="v1", embedding=embedding_bytes([1.0, 2.0])), ACME, namespace="notes"),
        stamp(VectorUpsert(collection="docs", id="v2", embedding=embedding_bytes([3.0, 4.0])), ACME, namespace="notes"),
        stamp(KvPut(key="theirs", value=1), GLOBEX, namespace="notes"),
    ]
    log, producer = await topic_with(first)
    cut_a = await log.end_offsets("main")
    second = [
        stamp(KvPut(key="change", value={"n": 2}), ACME, namespace="notes"),
        stamp(KvDelete(key="drop"), ACME, namespace="notes"),
        stamp(KvPut(key="new", value="hello"), ACME, namespace="notes"),
        stamp(StateCas(name="budget", expected_version=1, value=80), ACME, namespace="notes"),
        stamp(VectorUpsert(collection="docs", id="v1", embedding=embedding_bytes([1.0, 2.5])), ACME, namespace="notes"),
        stamp(VectorDelete(collection="docs", id="v2"), ACME, namespace="notes"),
        stamp(KvPut(key="theirs", value=2), GLOBEX, namespace="notes"),
    ]
    await producer.submit_many(second)
    cut_b = await log.end_offsets("main")
    state_a, state_b = await states_at(log, "main", cut_a, cut_b)
    assert state_a.applied == cut_a
    assert state_b.applied == cut_b

    diff = diff_cuts(state_a, state_b, tenant="acme")
    found = {(c.kind, c.key): c for c in diff.changes}
    assert set(found) == {
        ("record", "change"),
        ("record", "drop"),
        ("record", "new"),
        ("state", "budget"),
        ("vector", "docs/v1"),
        ("vector", "docs/v2"),
    }
    change = found[("record", "change")]
    assert change.status == "changed"
    assert {"value", "version"} <= set(change.fields) <= {"value", "version", "updated_at_ms"}  # same ms or not
    assert change.a is not None
    assert change.b is not None
    assert (change.a["value"], change.b["value"], change.b["metadata"]) == ({"n": 1}, {"n": 2}, {"tag": "a"})
    assert found[("record", "drop")].status == "removed"
    assert found[("record", "new")].status == "added"
    assert found[("record", "new")].b is not None
    assert set(found[("state", "budget")].fields) >= {"value", "version"}
    assert found[("vector", "docs/v1")].fields == ("embedding",)
    assert found[("vector", "docs/v2")].status == "removed"
    assert diff.counts() == {"added": 1, "changed": 3, "removed": 2}
    assert [c.tenant for c in diff.changes] == ["acme"] * 6

    everyone = diff_cuts(state_a, state_b)
    assert ("globex", "theirs") in {(c.tenant, c.key) for c in everyone.changes}
    assert diff_cuts(state_b, state_b).changes == ()
    backwards = diff_cuts(state_b, state_a, tenant="acme")
    assert {(c.key, c.status) for c in backwards.changes if c.kind == "record"} == {
        ("change", "changed"),
        ("drop", "added"),
        ("new", "removed"),
    }


async def test_states_at_cuts_that_cross_and_cuts_past_the_end() -> None:
    commands = [stamp(KvPut(key=f"k{i}", value=i), ACME, namespace=f"ns{i}") for i in range(12)]
    log, _ = await topic_with(commands)
    ends = await log.end_offsets("main")
    busy = [p for p, end in enumerate(ends) if end >= 1]
    assert len(busy) >= 2
    cut_a = [end if p == busy[0] else 0 for p, end in enumerate(ends)]
    cut_b = [end if p == busy[1] else 0 for p, end in enumerate(ends)]
    state_a, state_b = await states_at(log, "main", cut_a, cut_b)
    assert (state_a.applied, state_b.applied) == (cut_a, cut_b)
    diff = diff_cuts(state_a, state_b)
    assert {c.status for c in diff.changes} == {"added", "removed"}
    with pytest.raises(TimeTravelError):
        await states_at(log, "main", [0] * 4, [end + 1 for end in ends])
