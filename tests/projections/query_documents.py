"""Documents for query tests, and running a query over them."""

from __future__ import annotations

from typing import Any

from projections.query_dsl import Query, QueryPlan
from projections.records import RecordView


def doc(key: str, value: Any = None, metadata: dict[str, Any] | None = None, version: int = 1) -> RecordView:
    """A document as the records model stores it."""
    return RecordView(key, value, version, metadata or {}, 10, 20 + version, "a1", "a2", None)


def run(documents: list[RecordView], **query: Any) -> tuple[list[dict[str, Any]], str | None]:
    """Run a query over `documents` (given in key order) and return the page and cursor."""
    return QueryPlan(Query(**query)).execute(sorted(documents, key=lambda document: document.key))


def keys(documents: list[RecordView], **query: Any) -> list[str]:
    """The keys a query returns."""
    return [item["key"] for item in run(documents, **query)[0]]


DOCS = [
    doc("a", {"status": "open", "n": 1, "tags": ["x", "y"], "owner": None}, {"team": "red"}),
    doc("b", {"status": "done", "n": 2.5, "tags": ["y"]}, {"team": "blue"}, version=3),
    doc("c", {"status": "open", "n": "7", "nested": {"deep": [10, {"k": "v"}]}}),
    doc("d", {"status": "open", "n": 10, "flag": True}),
    doc("e", "plain string"),
]
