"""The query DSL: sort, projection, cursors and clear errors."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.query_dsl import Query, QueryError, QueryPlan, sort_key
from projections.records import RecordView
from tests.projections.query_documents import DOCS, doc, keys, run

# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"filter": {"value.n": {"$regex": "a"}}}, "unknown operator '$regex'"),
        ({"filter": {"$not": {"value": 1}}}, "unknown operator '$not'"),
        ({"filter": {"value.n": {"$in": 1}}}, "takes a list"),
        ({"filter": {"value.n": {"$exists": 1}}}, "takes true or false"),
        ({"filter": {"value.n": {"$prefix": 1}}}, "takes a string"),
        ({"filter": {"value.n": {"$gt": 1, "plain": 2}}}, "mixes $ operators"),
        ({"filter": {"$and": []}}, "non-empty list"),
        ({"filter": {"$or": {"a": 1}}}, "non-empty list"),
        ({"filter": {"$and": [1]}}, "must be an object"),
        ({"filter": {"nope": 1}}, "unknown field 'nope'"),
        ({"filter": {"version.x": 1}}, "not an object"),
        ({"filter": {"value..x": 1}}, "empty segment"),
        ({"filter": {"value.n": float("inf")}}, "non-finite"),
        ({"projection": ["values"]}, "unknown field"),
        ({"sort": [["value.n", "up"]]}, "sort"),
        ({"sort": [["", "asc"]]}, "non-empty"),
        ({"limit": 0}, "limit"),
        ({"limit": 1_001}, "limit"),
        ({"cursor": "!!!"}, "malformed cursor"),
        ({"cursor": "e30"}, "malformed cursor"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_queries_raise_a_clear_query_error(query: dict[str, Any], message: str) -> None:
    with pytest.raises(QueryError) as info:
        Query.parse(query)
    assert message in str(info.value)


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {"key": "a"}
    for _ in range(20):
        deep = {"$and": [deep]}
    with pytest.raises(QueryError, match="nested deeper"):
        Query.parse({"filter": deep})


def test_a_cursor_from_another_sort_is_refused() -> None:
    _page, cursor = run(DOCS, limit=1, sort=[["value.n", "asc"]])
    assert cursor is not None
    with pytest.raises(QueryError, match="another sort"):
        QueryPlan(Query(cursor=cursor, sort=[("value.n", "desc")]))


# -- sort, projection and cursors -----------------------------------------------------------------


def test_sort_with_ties_broken_by_key() -> None:
    docs = [doc("d", {"p": 1}), doc("a", {"p": 2}), doc("c", {"p": 1}), doc("b", {})]
    assert keys(docs, sort=[["value.p", "asc"]]) == ["b", "c", "d", "a"]
    assert keys(docs, sort=[["value.p", "desc"]]) == ["a", "c", "d", "b"]
    assert keys(docs, sort=[["key", "desc"]]) == ["d", "c", "b", "a"]
    assert keys(docs, sort=[["value.p", "desc"], ["key", "desc"]]) == ["a", "d", "c", "b"]


def test_desc_reverses_strings_with_common_prefixes_arrays_and_objects() -> None:
    values = ["a", "ab", "", [1], [1, 0], [], {"a": 1}, {"a": 1, "b": 0}, {}, {"": 1}, None, True]
    docs = [doc(f"k{n:02d}", value) for n, value in enumerate(values)]
    ascending = keys(docs, sort=[["value", "asc"]])
    assert keys(docs, sort=[["value", "desc"]]) == ascending[::-1]


def _reference_order(docs: list[RecordView], desc: bool) -> list[str]:
    def compare(left: RecordView, right: RecordView) -> int:
        a, b = sort_key(left.value), sort_key(right.value)
        if a != b:
            return (1 if a > b else -1) * (-1 if desc else 1)
        return -1 if left.key < right.key else 1

    return [item.key for item in sorted(docs, key=functools.cmp_to_key(compare))]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5, allow_nan=False) | st.text("ab", max_size=3),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text("ab", max_size=2), children, max_size=2),
    max_leaves=6,
)


@given(st.lists(json_values, min_size=1, max_size=25), st.booleans(), st.integers(1, 7))
def test_sorted_paging_matches_a_reference_order(values: list[Any], desc: bool, limit: int) -> None:
    docs = [doc(f"k{n:02d}", value) for n, value in enumerate(values)]
    direction = "desc" if desc else "asc"
    pages: list[str] = []
    cursor = None
    while True:
        page, cursor = run(docs, sort=[["value", direction]], limit=limit, cursor=cursor)
        pages.extend(item["key"] for item in page)
        if cursor is None:
            break
    assert pages == _reference_order(docs, desc)


def test_key_order_paging_with_a_filter() -> None:
    docs = [doc(f"k{n:03d}", {"n": n}) for n in range(250)]
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = run(docs, filter={"value.n": {"$gte": 100}}, limit=40, cursor=cursor)
        seen.extend(item["key"] for item in page)
        if cursor is None:
            break
    assert seen == [f"k{n:03d}" for n in range(100, 250)]


def test_cursors_are_deterministic_and_resume_after_the_position() -> None:
    docs = [doc(f"k{n}", {"n": n % 3}) for n in range(9)]
    query = {"sort": [["value.n", "desc"]], "limit": 4}
    first, cursor = run(docs, **query)
    assert run(docs, **query)[1] == cursor
    assert cursor is not None
    assert cursor.isascii()
    assert "=" not in cursor
    # A record inserted before the cursor's position is not returned by the next page; one after it is.
    more = [*docs, doc("k0a", {"n": 2}), doc("zz", {"n": 0})]
    rest, _ = run(more, **{**query, "limit": 100}, cursor=cursor)
    assert [item["key"] for item in first] == ["k2", "k5", "k8", "k1"]
    assert [item["key"] for item in rest] == ["k4", "k7", "k0", "k3", "k6", "zz"]


def test_missing_sort_values_sort_first_and_survive_cursors() -> None:
    docs = [doc("a", {"n": 1}), doc("b", {}), doc("c", {"n": None}), doc("d", {})]
    page, cursor = run(docs, sort=[["value.n", "asc"]], limit=1)
    assert [item["key"] for item in page] == ["b"]
    rest, _ = run(docs, sort=[["value.n", "asc"]], cursor=cursor)
    assert [item["key"] for item in rest] == ["d", "c", "a"]


def test_projection_rebuilds_nested_fields_and_always_has_the_key() -> None:
    page, _ = run(
        DOCS,
        filter={"key": "c"},
        projection=["value.nested.deep.1.k", "value.status", "value.missing", "metadata", "version"],
    )
    assert page == [
        {"key": "c", "version": 1, "metadata": {}, "value": {"status": "open", "nested": {"deep": {"1": {"k": "v"}}}}}
    ]
    page, _ = run(DOCS, filter={"key": "a"}, projection=["value", "value.n"])
    assert page == [{"key": "a", "value": DOCS[0].value}]


def test_no_projection_returns_the_whole_document() -> None:
    page, _ = run(DOCS, filter={"key": "b"})
    assert page == [
        {
            "key": "b",
            "value": DOCS[1].value,
            "metadata": {"team": "blue"},
            "version": 3,
            "created_at_ms": 10,
            "updated_at_ms": 23,
            "created_by": "a1",
            "updated_by": "a2",
            "expires_at_ms": None,
        }
    ]


def test_key_prefix_filters_narrow_the_scan() -> None:
    plan = QueryPlan(Query(filter={"key": {"$prefix": "b/"}, "value.n": 1}))
    assert plan.key_prefix == "b/"
    assert plan.key_ordered
    sorted_plan = QueryPlan(Query(sort=[("key", "asc"), ("value", "desc")]))
    assert sorted_plan.key_ordered  # sorting by key alone is key order
    assert not QueryPlan(Query(sort=[("key", "desc")])).key_ordered


def test_query_parse_accepts_json_shapes() -> None:
    query = Query.parse({"filter": {"value.n": {"$gt": 1}}, "sort": [["value.n", "desc"]], "limit": 5})
    assert query.sort == [("value.n", "desc")]
    assert query.limit == 5
