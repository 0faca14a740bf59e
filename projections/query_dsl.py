"""The query DSL of the records model (DESIGN §4): filter, projection, sort, limit and cursor.

A query runs over the *documents* of one namespace (a record as read). Its **filter**, the paths it
names and the total order of JSON values are defined in `projections.query_filter`; this module
validates a query, plans it and runs it one page at a time.

**Sort**: a list of `[path, "asc"|"desc"]`; ties are always broken by `key` ascending (keys are unique
in a namespace, so the order is total). No sort means key order.

**Projection**: a list of paths to return; `key` is always returned; nested paths rebuild nested
objects (`value.a` gives `{"key": ..., "value": {"a": ...}}`); missing paths are left out.

**Cursor**: opaque and stable: URL-safe base64 (unpadded) of the canonical JSON
`{"f": 1, "k": last_key, "s": sort, "v": [[1, value] | [0], ...]}`: the format, the last returned
item's key and sort values (`[0]` when missing) and the sort it belongs to. A page resumes strictly
after that position, so writes between pages never repeat or skip the items that did not move. A
cursor given with another sort is refused.

Anything invalid raises `QueryError` (HTTP 400). Returned documents share the stored JSON values:
callers serialize them and must not mutate them.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Iterable, Sequence
from operator import itemgetter
from typing import Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from projections.query_filter import (
    DOCUMENT_FIELDS,
    MISSING,
    Document,
    Predicate,
    QueryError,
    compile_filter,
    compile_path,
    descend,
    descending_key,
    json_equal,
    key_prefix,
    sort_key,
    split_path,
)

__all__ = [
    "DOCUMENT_FIELDS",
    "MAX_LIMIT",
    "MISSING",
    "compile_filter",
    "compile_path",
    "descend",
    "Document",
    "json_equal",
    "Predicate",
    "Query",
    "QueryError",
    "QueryPlan",
    "sort_key",
    "to_document",
]

#: Largest page a query (or a key listing) returns.
MAX_LIMIT: Final = 1000
_MAX_PATHS: Final = 64
_MAX_SORT: Final = 8
_CURSOR_FORMAT: Final = 1

_SortSpec = tuple[tuple[str, Literal["asc", "desc"]], ...]
#: Where an item sits in a sorted result: the sort keys of its sort values (reversed if desc), then its key.
_Position = tuple[Any, ...]


# -- the query model ------------------------------------------------------------------------------


class Query(BaseModel):
    """A query over one namespace: filter, projection, sort, limit (1..1000, default 100) and cursor."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filter: dict[str, Any] = Field(default_factory=dict)
    projection: list[str] | None = Field(default=None, max_length=_MAX_PATHS)
    sort: list[tuple[str, Literal["asc", "desc"]]] = Field(default_factory=list, max_length=_MAX_SORT)
    limit: int = Field(default=100, ge=1, le=MAX_LIMIT)
    cursor: str | None = None

    @field_validator("projection")
    @classmethod
    def _check_projection(cls, value: list[str] | None) -> list[str] | None:
        for path in value or ():
            split_path(path)
        return value

    @field_validator("sort")
    @classmethod
    def _check_sort(cls, value: list[tuple[str, Literal["asc", "desc"]]]) -> list[tuple[str, Literal["asc", "desc"]]]:
        for path, _direction in value:
            split_path(path)
        return value

    @model_validator(mode="after")
    def _check(self) -> Query:
        compile_filter(self.filter)
        if self.cursor is not None:
            _decode_cursor(self.cursor)
        return self

    @classmethod
    def parse(cls, data: Any) -> Query:
        """Validate `data` (a JSON object) into a Query; any problem raises QueryError with a clear message."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(_problem(error) for error in exc.errors()[:5])
            raise QueryError(f"invalid query: {problems}") from None


def _problem(error: Any) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "query"
    message = str(error.get("msg", "invalid"))
    return f"{location}: {message.removeprefix('Value error, ')}"


# -- cursors --------------------------------------------------------------------------------------


def _encode_cursor(sort: _SortSpec, values: Sequence[Any], key: str) -> str:
    """The opaque cursor of the position just after the item with sort `values` and `key`."""
    payload = {
        "f": _CURSOR_FORMAT,
        "k": key,
        "s": [list(item) for item in sort],
        "v": [[0] if value is MISSING else [1, value] for value in values],
    }
    raw = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(cursor: str) -> tuple[_SortSpec, tuple[Any, ...], str]:
    """The (sort, values, key) a cursor names; QueryError if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise QueryError("malformed cursor") from None
    if not isinstance(payload, dict) or payload.get("f") != _CURSOR_FORMAT or set(payload) != {"f", "k", "s", "v"}:
        raise QueryError("malformed cursor")
    key, sort, values = payload["k"], payload["s"], payload["v"]
    if not isinstance(key, str) or not isinstance(sort, list) or not isinstance(values, list):
        raise QueryError("malformed cursor")
    if len(sort) != len(values) or not all(_is_sort_item(item) for item in sort):
        raise QueryError("malformed cursor")
    decoded = []
    for value in values:
        if value == [0]:
            decoded.append(MISSING)
        elif isinstance(value, list) and len(value) == 2 and value[0] == 1:
            decoded.append(value[1])
        else:
            raise QueryError("malformed cursor")
    return tuple((item[0], item[1]) for item in sort), tuple(decoded), key


def _is_sort_item(item: Any) -> bool:
    return isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and item[1] in ("asc", "desc")


# -- running a query ------------------------------------------------------------------------------


def _normalize_sort(sort: Sequence[tuple[str, Literal["asc", "desc"]]]) -> _SortSpec:
    """The sort without what follows a `key` entry (keys are unique), and without a trailing `key` asc."""
    normalized: list[tuple[str, Literal["asc", "desc"]]] = []
    for path, direction in sort:
        normalized.append((path, direction))
        if path == "key":
            break
    if normalized and normalized[-1] == ("key", "asc"):
        normalized.pop()
    return tuple(normalized)


def to_document(document: Document) -> dict[str, Any]:
    """The full JSON form of a document: every field of `DOCUMENT_FIELDS`."""
    return {name: getattr(document, name) for name in DOCUMENT_FIELDS}


def _projection(paths: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Split, deduplicate and drop paths covered by a shorter projected path; `key` always first."""
    split = sorted({split_path(path) for path in ("key", *paths)}, key=lambda item: (len(item[1]), item))
    kept: list[tuple[str, tuple[str, ...]]] = []
    for root, rest in split:
        full = (root, *rest)
        if not any(full[: 1 + len(other_rest)] == (other_root, *other_rest) for other_root, other_rest in kept):
            kept.append((root, rest))
    return tuple(kept)


def _project(document: Document, paths: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, Any]:
    """The projected form of `document`: nested objects rebuilt for nested paths, missing ones left out."""
    out: dict[str, Any] = {}
    for root, rest in paths:
        found = descend(getattr(document, root), rest)
        if found is MISSING:
            continue
        if not rest:
            out[root] = found
            continue
        target = out.setdefault(root, {})
        for segment in rest[:-1]:
            target = target.setdefault(segment, {})
        target[rest[-1]] = found
    return out


class QueryPlan:
    """A compiled query, ready to run over the documents of one namespace."""

    __slots__ = ("_after", "_descending", "_getters", "_limit", "_paths", "_predicate", "_sort", "key_prefix")

    def __init__(self, query: Query) -> None:
        self._predicate = compile_filter(query.filter)
        self._sort = _normalize_sort(query.sort)
        self._getters = tuple(compile_path(path) for path, _direction in self._sort)
        self._descending = tuple(index for index, (_path, direction) in enumerate(self._sort) if direction == "desc")
        self._paths = None if query.projection is None else _projection(query.projection)
        self._limit = query.limit
        self._after: _Position | None = None
        #: Every match starts with this prefix: a caller may scan only these keys.
        self.key_prefix = key_prefix(query.filter)
        if query.cursor is not None:
            sort, values, key = _decode_cursor(query.cursor)
            if sort != self._sort:
                raise QueryError("the cursor belongs to a query with another sort")
            self._after = self._position([sort_key(value) for value in values], key)

    @property
    def key_ordered(self) -> bool:
        """True when results come in key order, so a scan may start after `start_after` and stop early."""
        return not self._sort

    @property
    def start_after(self) -> str | None:
        """For a key-ordered plan, the key after which results resume (from the cursor), else None."""
        return self._after[-1] if self._after is not None and self.key_ordered else None

    def execute(self, documents: Iterable[Document]) -> tuple[list[dict[str, Any]], str | None]:
        """Run over `documents` (in ascending key order); return one page of results and the next cursor."""
        try:
            page = self._scan_in_key_order(documents) if self.key_ordered else self._scan_sorted(documents)
        except RecursionError:
            raise QueryError("a compared value is nested too deeply") from None
        more = len(page) > self._limit
        page = page[: self._limit]
        cursor = self._cursor(page[-1]) if more else None
        return [self._render(document) for document in page], cursor

    def _scan_in_key_order(self, documents: Iterable[Document]) -> list[Document]:
        after, prefix, wanted = self.start_after, self.key_prefix, self._limit + 1
        page: list[Document] = []
        for document in documents:
            key = document.key
            if (after is not None and key <= after) or not key.startswith(prefix):
                continue
            if self._predicate(document):
                page.append(document)
                if len(page) == wanted:
                    break
        return page

    def _position(self, keys: list[Any], key: str) -> _Position:
        """The sortable position of an item from the sort keys of its sort values and its key."""
        for index in self._descending:
            keys[index] = descending_key(keys[index])
        keys.append(key)
        return tuple(keys)

    def _scan_sorted(self, documents: Iterable[Document]) -> list[Document]:
        after, getters = self._after, self._getters
        candidates: list[tuple[_Position, Document]] = []
        for document in documents:
            if not self._predicate(document):
                continue
            position = self._position([sort_key(getter(document)) for getter in getters], document.key)
            if after is None or position > after:
                candidates.append((position, document))
        best = heapq.nsmallest(self._limit + 1, candidates, key=itemgetter(0))
        return [document for _position, document in best]

    def _cursor(self, document: Document) -> str:
        return _encode_cursor(self._sort, [getter(document) for getter in self._getters], document.key)

    def _render(self, document: Document) -> dict[str, Any]:
        return to_document(document) if self._paths is None else _project(document, self._paths)
