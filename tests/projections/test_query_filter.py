"""The query filter: operators, type classes, JSON equality and the total order of JSON values."""

from __future__ import annotations

from typing import Any

import pytest

from projections.query_filter import QueryError, json_equal, sort_key
from tests.projections.query_documents import DOCS, doc, keys

# -- operators ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ({}, ["a", "b", "c", "d", "e"]),
        ({"value.status": "open"}, ["a", "c", "d"]),
        ({"value.status": {"$eq": "open"}, "metadata.team": "red"}, ["a"]),
        ({"value.status": {"$ne": "open"}}, ["b", "e"]),
        ({"value.n": {"$gt": 1}}, ["b", "d"]),
        ({"value.n": {"$gte": 1, "$lt": 10}}, ["a", "b"]),
        ({"value.n": {"$lte": 2.5}}, ["a", "b"]),
        ({"value.n": {"$gt": "5"}}, ["c"]),
        ({"value.n": {"$in": [1, "7"]}}, ["a", "c"]),
        ({"value.n": {"$nin": [1, "7"]}}, ["b", "d", "e"]),
        ({"value.n": 1.0}, ["a"]),
        ({"value.flag": 1}, []),
        ({"value.flag": True}, ["d"]),
        ({"value.tags": "y"}, ["a", "b"]),
        ({"value.tags": ["y"]}, ["b"]),
        ({"value.tags": {"$in": ["x"]}}, ["a"]),
        ({"value.owner": None}, ["a"]),
        ({"value.owner": {"$exists": True}}, ["a"]),
        ({"value.owner": {"$exists": False}}, ["b", "c", "d", "e"]),
        ({"value.nested.deep.1.k": "v"}, ["c"]),
        ({"value.nested.deep.0": {"$gte": 10}}, ["c"]),
        ({"value.nested.deep.5": {"$exists": True}}, []),
        ({"value.nested": {"deep": [10.0, {"k": "v"}]}}, ["c"]),
        ({"value": {"$prefix": "plain"}}, ["e"]),
        ({"value.status": {"$prefix": "do"}}, ["b"]),
        ({"key": {"$in": ["a", "e"]}}, ["a", "e"]),
        ({"version": {"$gt": 1}}, ["b"]),
        ({"updated_at_ms": 23}, ["b"]),
        ({"created_by": "a1", "expires_at_ms": None}, ["a", "b", "c", "d", "e"]),
        ({"$or": [{"value.n": 1}, {"metadata.team": "blue"}]}, ["a", "b"]),
        ({"$and": [{"value.status": "open"}, {"$or": [{"value.n": {"$gt": 5}}, {"key": "a"}]}]}, ["a", "d"]),
    ],
)
def test_filter_operators(filter_: dict[str, Any], expected: list[str]) -> None:
    assert keys(DOCS, filter=filter_) == expected


def test_comparisons_never_cross_type_classes() -> None:
    values: list[Any] = [None, False, 0, "0", [], {}]
    mixed = [doc(str(n), value) for n, value in enumerate(values)]
    assert keys(mixed, filter={"value": {"$gte": None}}) == ["0"]
    assert keys(mixed, filter={"value": {"$gte": False}}) == ["1"]
    assert keys(mixed, filter={"value": {"$gte": 0}}) == ["2"]
    assert keys(mixed, filter={"value": {"$lt": "a"}}) == ["3"]
    assert keys(mixed, filter={"value": {"$gte": []}}) == ["4"]
    assert keys(mixed, filter={"value": {"$lte": {"z": 1}}}) == ["5"]


def test_json_equality() -> None:
    assert json_equal(1, 1.0)
    assert not json_equal(True, 1)
    assert not json_equal(0, False)
    assert json_equal({"a": 1, "b": [1, 2]}, {"b": [1.0, 2], "a": 1})
    assert not json_equal([1, 2], [2, 1])
    assert not json_equal(None, 0)


def test_type_order_is_total_and_mongo_like() -> None:
    ordered = [
        None,
        False,
        True,
        -1,
        0,
        1.5,
        2,
        "",
        "a",
        "ab",
        "b",
        [],
        [0],
        [0, 0],
        [1],
        {},
        {"a": 1},
        {"a": 2},
        {"b": 0},
    ]
    assert sorted(ordered[::-1], key=sort_key) == ordered
    assert sort_key(1) == sort_key(1.0)
    with pytest.raises(QueryError):
        sort_key(float("nan"))
    with pytest.raises(QueryError):
        sort_key((1, 2))
