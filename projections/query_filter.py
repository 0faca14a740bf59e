"""Documents, paths and filters of the query DSL (DESIGN §4): what a filter means, compiled to a predicate.

A query runs over the *documents* of one namespace. A document is a record as read, with the fields
`key`, `value`, `metadata`, `version`, `created_at_ms`, `updated_at_ms`, `created_by`, `updated_by`
and `expires_at_ms`. A **path** names a field, and inside `value` and `metadata` descends with dots:
`value.status`, `metadata.tags`, `value.items.0.name` (a digit segment indexes an array).

**Filter** (a JSON object; its clauses are ANDed):

- `{"path": plain}` is `{"path": {"$eq": plain}}` (a plain object is compared whole);
- `{"path": {"$op": arg, ...}}` with operators `$eq $ne $gt $gte $lt $lte $in $nin $exists $prefix`
  (all ANDed); an object mixing `$` operators and plain fields is an error;
- `{"$and": [filter, ...]}`, `{"$or": [filter, ...]}` (non-empty lists, nested at most 16 deep).

Operator semantics (MongoDB-like): `$eq` matches an equal value or an array holding an equal element;
`$ne` is its negation (so a missing field matches); `$in`/`$nin` likewise against any listed value;
`$gt $gte $lt $lte` compare only within one type class (numbers with numbers, strings with strings,
...): `{"$gt": 5}` never matches a string; `$exists` takes a bool (null exists, missing does not);
`$prefix` takes a string and matches strings starting with it. Equality is JSON equality: `1 == 1.0`,
`true != 1`, objects equal whatever their key order.

**Ordering** of JSON values, total and deterministic, used by comparisons, sort and cursors:
missing < null < bool < number < string < array < object; numbers by value, strings by code point,
arrays element-wise, objects by their (key, value) pairs in key order. `descending_key` gives the
exact opposite order with native comparisons only.

Anything invalid raises `QueryError` (HTTP 400).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Final, Protocol

__all__ = [
    "DOCUMENT_FIELDS",
    "MISSING",
    "Document",
    "Predicate",
    "QueryError",
    "compile_filter",
    "compile_path",
    "descend",
    "descending_key",
    "json_equal",
    "key_prefix",
    "sort_key",
    "split_path",
]

#: The fields of a document, in the order a full document lists them.
DOCUMENT_FIELDS: Final = (
    "key",
    "value",
    "metadata",
    "version",
    "created_at_ms",
    "updated_at_ms",
    "created_by",
    "updated_by",
    "expires_at_ms",
)
_NESTED_ROOTS: Final = frozenset(("value", "metadata"))
_ROOTS: Final = frozenset(DOCUMENT_FIELDS)
_OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$prefix")
_MAX_DEPTH: Final = 16
_MAX_IN: Final = 1000
MISSING: Final[Any] = object()
_RANK_MISSING, _RANK_NULL, _RANK_BOOL, _RANK_NUMBER, _RANK_STRING, _RANK_ARRAY, _RANK_OBJECT = range(7)

#: A compiled filter: true when a document matches.
Predicate = Callable[["Document"], bool]
_Getter = Callable[["Document"], Any]


class QueryError(ValueError):
    """A query that cannot run: bad operator, operand, path, limit or cursor (HTTP 400)."""


class Document(Protocol):
    """What a query reads: a record as read (`projections.records.RecordView` is one)."""

    @property
    def key(self) -> str:
        """The record's key."""

    @property
    def value(self) -> Any:
        """The record's JSON value."""

    @property
    def metadata(self) -> dict[str, Any]:
        """The record's metadata object."""

    @property
    def version(self) -> int:
        """The record's version."""


# -- JSON ordering and equality -------------------------------------------------------------------


def _rank(value: Any) -> int:
    """The type class of a JSON value in the order missing < null < bool < number < string < array < object."""
    kind = type(value)
    if kind is str:
        return _RANK_STRING
    if kind is int or kind is float:
        return _RANK_NUMBER
    if kind is bool:
        return _RANK_BOOL
    if value is None:
        return _RANK_NULL
    if kind is list:
        return _RANK_ARRAY
    if kind is dict:
        return _RANK_OBJECT
    if value is MISSING:
        return _RANK_MISSING
    raise QueryError(f"{kind.__name__} is not a JSON value")


def sort_key(value: Any) -> tuple[Any, ...]:
    """A hashable key giving JSON values a total order (missing < null < bool < number < string < array < object)."""
    rank = _rank(value)
    if rank in (_RANK_STRING, _RANK_BOOL):
        return (rank, value)
    if rank == _RANK_NUMBER:
        if type(value) is float and not math.isfinite(value):
            raise QueryError(f"non-finite number {value!r} is not JSON")
        return (rank, value)
    if rank == _RANK_ARRAY:
        return (rank, tuple(sort_key(item) for item in value))
    if rank == _RANK_OBJECT:
        for name in value:
            if type(name) is not str:
                raise QueryError(f"JSON object keys must be strings, not {name!r}")
        return (rank, tuple((name, sort_key(value[name])) for name in sorted(value)))
    return (rank,)


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: `1 == 1.0`, `true != 1`, objects equal whatever their key order."""
    if type(left) is type(right) and type(left) in (str, int):
        return bool(left == right)
    return sort_key(left) == sort_key(right)


def _invert_text(text: str) -> tuple[int, ...]:
    """Negated code points and a terminator above them all: reverses string order, prefixes included."""
    return (*(-ord(char) for char in text), 1)


def descending_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key ordering exactly opposite to the sort key `key`, with only native comparisons (for `desc`)."""
    rank = key[0]
    if len(key) == 1:
        return (-rank,)
    payload = key[1]
    if rank == _RANK_STRING:
        return (-rank, _invert_text(payload))
    if rank == _RANK_ARRAY:
        return (-rank, (*(descending_key(item) for item in payload), (1,)))
    if rank == _RANK_OBJECT:
        return (-rank, (*((_invert_text(name), descending_key(item)) for name, item in payload), ((2,),)))
    return (-rank, -payload)


# -- paths ----------------------------------------------------------------------------------------


def split_path(path: Any) -> tuple[str, tuple[str, ...]]:
    """Validate `path` and split it into its root field and the segments below it."""
    if not isinstance(path, str) or not path:
        raise QueryError(f"a field path must be a non-empty string, not {path!r}")
    root, *rest = path.split(".")
    if root not in _ROOTS:
        raise QueryError(f"unknown field {root!r} in path {path!r}; fields are {', '.join(DOCUMENT_FIELDS)}")
    if rest and root not in _NESTED_ROOTS:
        raise QueryError(f"path {path!r} descends into {root!r}, which is not an object")
    if any(not segment for segment in rest):
        raise QueryError(f"path {path!r} has an empty segment")
    return root, tuple(rest)


def descend(current: Any, segments: tuple[str, ...]) -> Any:
    """The value at `segments` below `current` (dots into objects, digits into arrays), or `MISSING`."""
    for segment in segments:
        kind = type(current)
        if kind is dict:
            current = current.get(segment, MISSING)
            if current is MISSING:
                return MISSING
        elif kind is list and segment.isdigit():
            index = int(segment)
            if index >= len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


def compile_path(path: str) -> Callable[[Document], Any]:
    """A function reading `path` from a document (an internal marker when missing); QueryError if invalid."""
    root, rest = split_path(path)
    read_root = attrgetter(root)
    if not rest:
        return read_root
    if len(rest) == 1 and not rest[0].isdigit():
        segment = rest[0]

        def read_member(document: Document) -> Any:
            found = read_root(document)
            return found.get(segment, MISSING) if type(found) is dict else MISSING

        return read_member
    return lambda document: descend(read_root(document), rest)


# -- filters --------------------------------------------------------------------------------------


def _always(document: Document) -> bool:
    return True


def _all_of(predicates: Sequence[Predicate]) -> Predicate:
    if not predicates:
        return _always
    if len(predicates) == 1:
        return predicates[0]
    return lambda document: all(predicate(document) for predicate in predicates)


def _any_of(predicates: Sequence[Predicate]) -> Predicate:
    return lambda document: any(predicate(document) for predicate in predicates)


def _json_operand(value: Any, where: str) -> tuple[Any, ...]:
    """The sort key of an operand, refusing what is not JSON with a message naming `where`."""
    try:
        return sort_key(value)
    except QueryError as exc:
        raise QueryError(f"{where}: {exc}") from None


def _eq(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$eq`: the field equals `operand`, or is an array holding an element equal to it."""
    wanted = _json_operand(operand, where)

    def predicate(document: Document) -> bool:
        found = getter(document)
        if sort_key(found) == wanted:
            return True
        return type(found) is list and any(sort_key(item) == wanted for item in found)

    return predicate


def _in(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$in`: the field (or an element of an array field) equals one of `operand`'s values."""
    if not isinstance(operand, list):
        raise QueryError(f"{where} takes a list of values, not {type(operand).__name__}")
    if len(operand) > _MAX_IN:
        raise QueryError(f"{where} lists {len(operand)} values; at most {_MAX_IN}")
    wanted = frozenset(_json_operand(item, where) for item in operand)

    def predicate(document: Document) -> bool:
        found = getter(document)
        if sort_key(found) in wanted:
            return True
        return type(found) is list and any(sort_key(item) in wanted for item in found)

    return predicate


def _negate(predicate: Predicate) -> Predicate:
    return lambda document: not predicate(document)


_COMPARATORS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_NUMBER_TYPES: Final = (int, float)


def _compare(getter: _Getter, name: str, operand: Any, where: str) -> Predicate:
    """`$gt $gte $lt $lte`: compare within the operand's type class only (type bracketing)."""
    wanted = _json_operand(operand, where)
    rank = wanted[0]
    holds = _COMPARATORS[name]
    if rank == _RANK_NUMBER:

        def number(document: Document) -> bool:
            found = getter(document)
            return type(found) in _NUMBER_TYPES and bool(holds(found, operand))

        return number
    if rank == _RANK_STRING:

        def text(document: Document) -> bool:
            found = getter(document)
            return type(found) is str and bool(holds(found, operand))

        return text

    def general(document: Document) -> bool:
        found = getter(document)
        return _rank(found) == rank and bool(holds(sort_key(found), wanted))

    return general


def _exists(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$exists`: the field is present (true) or missing (false)."""
    if type(operand) is not bool:
        raise QueryError(f"{where} takes true or false, not {operand!r}")
    return lambda document: (getter(document) is not MISSING) is operand


def _prefix(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$prefix`: the field is a string starting with `operand`."""
    if type(operand) is not str:
        raise QueryError(f"{where} takes a string, not {type(operand).__name__}")

    def predicate(document: Document) -> bool:
        found = getter(document)
        return type(found) is str and found.startswith(operand)

    return predicate


def _ne(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$ne`: not `$eq` (a missing field matches)."""
    return _negate(_eq(getter, operand, where))


def _nin(getter: _Getter, operand: Any, where: str) -> Predicate:
    """`$nin`: not `$in` (a missing field matches)."""
    return _negate(_in(getter, operand, where))


_OPERAND_BUILDERS: Final[dict[str, Callable[[_Getter, Any, str], Predicate]]] = {
    "$eq": _eq,
    "$ne": _ne,
    "$in": _in,
    "$nin": _nin,
    "$exists": _exists,
    "$prefix": _prefix,
}


def _operator(getter: _Getter, name: str, operand: Any, path: str) -> Predicate:
    """The predicate of one `{"$op": operand}` on `path`."""
    where = f"{name} on {path!r}"
    if name in _COMPARATORS:
        return _compare(getter, name, operand, where)
    build = _OPERAND_BUILDERS.get(name)
    if build is None:
        raise QueryError(f"unknown operator {name!r} on {path!r}; use one of {' '.join(_OPERATORS)}")
    return build(getter, operand, where)


def _field_clause(path: str, operand: Any) -> Predicate:
    """The predicate of `{path: operand}`: operators if `operand` is an object of `$` keys, else `$eq`."""
    getter = compile_path(path)
    if isinstance(operand, dict) and any(isinstance(name, str) and name.startswith("$") for name in operand):
        if not all(isinstance(name, str) and name.startswith("$") for name in operand):
            raise QueryError(f"the condition on {path!r} mixes $ operators and plain fields")
        return _all_of([_operator(getter, name, arg, path) for name, arg in operand.items()])
    return _eq(getter, operand, f"value for {path!r}")


def _clause(name: Any, operand: Any, depth: int) -> Predicate:
    """The predicate of one top-level clause of a filter object."""
    if name in ("$and", "$or"):
        if not isinstance(operand, list) or not operand:
            raise QueryError(f"{name} takes a non-empty list of filters")
        parts = [_filter(part, depth + 1) for part in operand]
        return _all_of(parts) if name == "$and" else _any_of(parts)
    if isinstance(name, str) and name.startswith("$"):
        raise QueryError(f"unknown operator {name!r}; only $and and $or combine filters")
    return _field_clause(name, operand)


def _filter(spec: Any, depth: int) -> Predicate:
    if not isinstance(spec, dict):
        raise QueryError(f"a filter must be an object, not {type(spec).__name__}")
    if depth > _MAX_DEPTH:
        raise QueryError(f"filter nested deeper than {_MAX_DEPTH} levels")
    return _all_of([_clause(name, operand, depth) for name, operand in spec.items()])


def compile_filter(spec: Mapping[str, Any]) -> Predicate:
    """Compile a filter object into a predicate over documents; QueryError if it is invalid."""
    return _filter(dict(spec) if not isinstance(spec, dict) else spec, 0)


def key_prefix(spec: Mapping[str, Any]) -> str:
    """The `$prefix` a top-level `key` clause imposes (narrows the scan), or ''."""
    condition = spec.get("key")
    if isinstance(condition, dict) and type(condition.get("$prefix")) is str:
        return str(condition["$prefix"])
    return ""
