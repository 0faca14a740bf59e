"""The memories read model: lifecycle with history, bi-temporal filters, isolation, rejections, plain snapshots."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import Caller, MemoryAdd, MemoryInvalidate, MemoryMerge, MemoryUpdate
from projections.lexical import LexicalIndex
from projections.memories import MemoriesModel, MemoryFilter
from projections.outcome import Rejected
from tests.projections.memory_support import Applier

GLOBEX = Caller(tenant="globex", agent_id="spy")



def restore(pieces: Iterable[Any]) -> MemoriesModel:
    """A fresh model restored from `snapshot_state` pieces."""
    model = MemoriesModel()
    model.restore_state(pieces)
    return model

def unit(*values: float) -> list[float]:
    vector = np.asarray(values, dtype=np.float64)
    return (vector / np.linalg.norm(vector)).tolist()


def test_add_update_forget_with_history() -> None:
    apply = Applier()
    added = apply(MemoryAdd(content="User prefers dark mode", user_id="ludde", tags=["ui"], reason="said so"))
    assert added == {"id": 1, "version": 1, "created": True}
    updated = apply(MemoryUpdate(id=1, content="User prefers light mode", reason="changed mind"))
    assert updated == {"id": 1, "version": 2, "changed": True, "changes": ["content"]}
    assert apply(MemoryUpdate(id=1, content="User prefers light mode")) == {"id": 1, "version": 2, "changed": False}
    forgot = apply(MemoryInvalidate(id=1, reason="outdated"))
    assert forgot == {"id": 1, "version": 3, "invalidated": True, "valid_until": 1030}
    assert apply(MemoryInvalidate(id=1))["invalidated"] is False

    record = apply.model.get("acme", "default", 1)
    assert record is not None
    assert (record.content, record.valid_from, record.valid_until, record.invalidated_at_ms) == (
        "User prefers light mode",
        1000,
        1030,
        1030,
    )
    assert (record.created_at_ms, record.updated_at_ms, record.created_by, record.active) == (
        1000,
        1030,
        "planner",
        False,
    )
    history = apply.model.history("acme", "default", 1)
    assert history is not None
    assert [
        (h["operation"], h["version"], h["old_content"], h["new_content"], h["reason"], h["at_ms"]) for h in history
    ] == [
        ("add", 1, None, "User prefers dark mode", "said so", 1000),
        ("update", 2, "User prefers dark mode", "User prefers light mode", "changed mind", 1010),
        ("invalidate", 3, "User prefers light mode", "User prefers light mode", "outdated", 1030),
    ]
    assert {h["changed_by"] for h in history} == {"planner"}
    assert apply.model.recall("acme", "default", MemoryFilter(), 10) == []
    assert [r.id for r in apply.model.recall("acme", "default", MemoryFilter(include_invalidated=True), 10)] == [1]


def test_valid_at_filters_by_world_time() -> None:
    apply = Applier()
    apply(MemoryAdd(content="lives in Oslo", valid_from=100, valid_until=200))
    apply(MemoryAdd(content="lives in Bergen", valid_from=200))
    apply(MemoryAdd(content="always true"))  # valid from its log time, 1020
    apply(MemoryInvalidate(id=2, valid_until=500))

    def valid(at: int) -> list[int]:
        return [r.id for r in apply.model.recall("acme", "default", MemoryFilter(valid_at=at), 10)]

    assert valid(99) == []
    assert valid(150) == [1]
    assert valid(200) == [2]
    assert valid(499) == [2]
    assert valid(500) == []
    assert valid(1020) == [3]
    assert [r.id for r in apply.model.recall("acme", "default", MemoryFilter(), 10)] == [1, 3]


def test_tenants_and_scopes_are_isolated() -> None:
    apply = Applier()
    apply(MemoryAdd(content="acme secret", user_id="u1", agent_id="a1", session_id="s1"))
    apply(MemoryAdd(content="other user", user_id="u2", memory_type="episodic", tags=["x", "y"]))
    apply(MemoryAdd(content="globex memory", user_id="u1"), caller=GLOBEX)
    apply(MemoryAdd(content="other namespace", user_id="u1"), namespace="notes")
    assert apply.model.get("globex", "default", 2) is None
    assert apply.model.get("globex", "default", 1).content == "globex memory"  # type: ignore[union-attr]

    def ids(**where: object) -> list[int]:
        return [r.id for r in apply.model.recall("acme", "default", MemoryFilter(**where), 10)]  # type: ignore[arg-type]

    assert ids(user_id="u1") == [1]
    assert ids(user_id="u1", agent_id="a2") == []
    assert ids(session_id="s1") == [1]
    assert ids(memory_type="episodic") == [2]
    assert ids(tags=("x", "y")) == [2]
    assert ids(tags=("x", "z")) == []
    assert apply.model.namespaces("acme") == ["default", "notes"]
    assert apply.rejected(MemoryUpdate(id=2, content="x"), caller=GLOBEX).reason == "not_found"


def test_rejections_change_nothing() -> None:
    apply = Applier()
    apply(MemoryAdd(content="with vector", embedding=unit(1, 0, 0), model_id="m"))
    assert apply.rejected(MemoryUpdate(id=9, content="x")).reason == "not_found"
    assert apply.rejected(MemoryAdd(content="d", embedding=[1.0, 0.0], model_id="m")).reason == "invalid"
    assert apply.rejected(MemoryAdd(content="o", embedding=[1.0, 0.0, 0.0], model_id="other")).reason == "invalid"
    assert apply.rejected(MemoryAdd(content="z", embedding=[0.0, 0.0, 0.0], model_id="m")).reason == "invalid"
    assert apply.rejected(MemoryUpdate(id=1, content="new words, old vector")).reason == "invalid"
    assert apply.rejected(MemoryAdd(content="late", valid_until=5)).reason == "invalid"  # before its log time
    assert apply.rejected(MemoryUpdate(id=1, valid_from=5, valid_until=4)).reason == "invalid"
    assert apply.rejected(MemoryMerge(ids=[7], into=1)).reason == "not_found"
    apply(MemoryInvalidate(id=1))
    assert apply.rejected(MemoryUpdate(id=1, confidence=0.5)).reason == "precondition_failed"


def test_merge_folds_sources_into_the_target() -> None:
    apply = Applier()
    apply(MemoryAdd(content="likes tea", tags=["drinks"]))
    apply(MemoryAdd(content="drinks tea daily", tags=["habits"]))
    apply(MemoryAdd(content="enjoys green tea", tags=["drinks", "green"]))
    result = apply(MemoryMerge(ids=[2, 3], into=1, content="drinks green tea daily", reason="duplicates"))
    assert result == {"id": 1, "version": 2, "merged": [2, 3]}
    target = apply.model.get("acme", "default", 1)
    assert target is not None
    assert (target.content, target.tags) == ("drinks green tea daily", ["drinks", "green", "habits"])
    for source_id in (2, 3):
        source = apply.model.get("acme", "default", source_id)
        assert source is not None
        assert (source.active, source.merged_into, source.valid_until) == (False, 1, 1030)
        assert apply.model.history("acme", "default", source_id)[-1]["merged_into"] == 1  # type: ignore[index]
    assert apply.model.history("acme", "default", 1)[-1]["merged"] == [2, 3]  # type: ignore[index]
    assert [r.id for r in apply.model.recall("acme", "default", MemoryFilter(), 10)] == [1]


def plain(value: object) -> bool:
    """True if `value` is made of dicts, lists, str, int, float, bool, None and bytes only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool | bytes)


def test_snapshot_state_is_plain_data_and_restores_equal() -> None:
    apply = Applier()
    apply(MemoryAdd(content="alpha beta", embedding=unit(1, 2, 3), model_id="m", metadata={"k": [1, {"x": None}]}))
    apply(MemoryAdd(content="gamma", tags=["t"], user_id="u"))
    apply(MemoryUpdate(id=2, tags=["t", "s"], content="gamma delta"))
    apply(MemoryInvalidate(id=1, reason="gone"))
    state = list(apply.model.snapshot_state())
    assert plain(state)
    restored = restore(state)
    assert restored.digest() == apply.model.digest()
    assert list(restored.snapshot_state()) == state
    space, original = restored.space("acme", "default"), apply.model.space("acme", "default")
    assert space is not None
    assert original is not None
    assert space.lexical.statistics() == original.lexical.statistics()
    assert (space.matrix[: space.count + 1] == original.matrix[: original.count + 1]).all()
    assert space.tags == original.tags
    with pytest.raises(ValueError, match="version"):
        restore([{"version": 99}])


VOCABULARY = ("tea", "coffee", "rust", "python", "oslo", "bergen", "deploy", "friday")
texts = st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6).map(" ".join)
steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), texts),
        st.tuples(st.just("update"), st.integers(1, 15), texts),
        st.tuples(st.just("forget"), st.integers(1, 15)),
        st.tuples(st.just("merge"), st.integers(1, 15), st.integers(1, 15)),
    ),
    max_size=40,
)


@settings(max_examples=100, deadline=None)
@given(steps)
def test_lexical_index_equals_a_rebuild_after_random_changes(plan: list[tuple[object, ...]]) -> None:
    apply = Applier()
    for step in plan:
        kind = step[0]
        try:
            if kind == "add":
                apply(MemoryAdd(content=str(step[1])))
            elif kind == "update":
                apply(MemoryUpdate(id=int(step[1]), content=str(step[2])))  # type: ignore[call-overload]
            elif kind == "forget":
                apply(MemoryInvalidate(id=int(step[1])))  # type: ignore[call-overload]
            elif step[1] != step[2]:
                apply(MemoryMerge(ids=[int(step[1])], into=int(step[2]), content="merged tea"))  # type: ignore[call-overload]
        except Rejected:  # a step on a missing or forgotten memory: refused, nothing changed
            pass
    space = apply.model.space("acme", "default")
    if space is None:
        return
    rebuilt = LexicalIndex()
    for record in space.records:
        rebuilt.add(record.id, record.content)
    assert space.lexical.statistics() == rebuilt.statistics()
    restored = restore(apply.model.snapshot_state()).space("acme", "default")
    assert restored is not None
    assert restored.lexical.statistics() == rebuilt.statistics()
    for query in ("tea", "rust python", "oslo friday deploy"):
        assert (space.lexical.scores(query, space.count + 1) == rebuilt.scores(query, space.count + 1)).all()
