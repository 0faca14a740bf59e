"""Vector collections with exact search (DESIGN §4): one contiguous float32 matrix per collection, scanned in full.

**State.** A collection is `(tenant, namespace, name)` with a fixed `dimension` and `metric`. It holds
a float32 matrix whose capacity doubles as it fills, the vector id of each slot, a slot per id, and
each vector's metadata as canonical JSON bytes. The slot layout is a function of the log: a new id
takes the next slot in apply order, an upsert of a known id overwrites its slot in place, and a
delete moves the last slot into the hole. A collection lives in one partition (routing is by
tenant/namespace), so its layout follows that partition's log order only.

**Rows and scores** (higher is always better, so `min_score` means "at least" for every metric):

- `cosine`: the row holds the embedding exactly as written (reads give back its bytes); the model
  also keeps `1/|x|` in float32. score = `(x · q̂) · (1/|x|)` with `q̂ = q/|q|`: the cosine
  similarity, in [-1, 1] up to float32 rounding.
- `dot`: score = `x · q`.
- `euclidean`: the model keeps `|x|²` in float32; score = `-sqrt(max(0, |x|² - 2 x·q + |q|²))`, the
  negated L2 distance (`min_score=-0.5` keeps vectors within distance 0.5). Like faiss's batched
  L2 search this expansion rounds in float32, so two distances closer than ~1e-7·|x|² may swap.

Norms come from `|x|²` summed in float64 (the squares of float32 values are exact there; the error
of the sum is ~1e-14, far below float32's 6e-8). Every embedding (and query) must have an L2 norm
of at most `MAX_NORM` (so no score can overflow float32), and in a cosine collection at least
`MIN_COSINE_NORM` (a zero vector has no direction); otherwise `invalid`.

**Determinism.** One fixed scoring path: each row is scored on its own by `np.vecdot` (one BLAS
`sdot` per row; `np.einsum` on numpy < 2), over `X[:n]` or, for a selective filter, over the
matching rows gathered into a block. A matrix-vector product (`X[:n] @ q`, BLAS sgemv) would not
do: OpenBLAS scores rows in 4-row blocks with one kernel and a ragged tail with another and splits
rows between threads, so a row's last bits would depend on the row count, the filter and the thread
count (measured). With one dot per row a vector's score depends only on its bytes and the query's,
so replay (same layout, or any layout), filtered and unfiltered searches give bit-identical scores.
It is also faster than `X @ q` on this machine, whose OpenBLAS sgemv "T" kernel is slow. A
dimension-major matrix (sgemv "N") scans ~1.35x faster but gathers a filter's rows ~4x slower (each
vector spans d cache lines), so rows stay contiguous (bench/vector_search.py measures both).
Top-k is `np.partition` for the k-th score, every score at least that, then a sort by
(-score, id): ties go to the smaller id.

**Filters** (exact at any selectivity) follow the records query DSL (`projections.query_dsl`), with
paths relative to the metadata: `{"path": value}` is `$eq`; operators `$eq $ne $gt $gte $lt $lte $in
$nin $exists $prefix`; `{"$and": [...]}`, `{"$or": [...]}`; dots descend into objects and digit
segments index arrays. `$eq`/`$in` match an equal value or an array holding an equal element, `$ne`
/`$nin` are their negations (a missing field matches), comparisons stay within one type class,
`1 == 1.0`, `true != 1`. A filter is evaluated to a boolean mask over slots with per-path *columns*,
built on first use and then maintained on every write: the code of each slot's value (equal JSON
values share a code), the value as float64 when it is an exactly representable number, and for
array values an inverted index code → slots of their elements. `$eq` is one vectorized int32
comparison, `$in`/`$prefix`/string ranges a lookup table over the distinct values, numeric ranges a
float64 comparison (exact, also for integers beyond 2^53). Columns are a cache: they are not
pickled, not digested and never change a result. An invalid filter raises `FilterError`.

**Reads** are not thread-safe against `apply`: the engine serializes them.
"""

from __future__ import annotations

import hashlib
import math
import struct
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

import numpy as np
import numpy.typing as npt
import orjson

from commands import CommandError, canonical_json
from commands.limits import MAX_K
from commands.wire import CollectionCreate, VectorDelete, VectorUpsert
from projections.model import ApplyContext, ReadModel
from projections.outcome import Rejected
from projections.query_dsl import MISSING, descend

__all__ = [
    "MAX_NORM",
    "MIN_COSINE_NORM",
    "CollectionInfo",
    "CollectionNotFoundError",
    "FilterError",
    "Hit",
    "StoredVector",
    "VectorQueryError",
    "VectorsModel",
]

#: Fewest rows a collection's matrix holds once it has a vector (then it doubles).
MIN_CAPACITY: Final = 16
#: Largest L2 norm of an embedding or query: |x·q| and |x-q|² stay far below float32's 3.4e38.
MAX_NORM: Final = 1e18
#: Smallest L2 norm of an embedding or query in a cosine collection.
MIN_COSINE_NORM: Final = 1e-18
#: Most values in a `$in`/`$nin` list; deepest `$and`/`$or` nesting (as in the records DSL).
MAX_IN: Final = 1000
MAX_FILTER_DEPTH: Final = 16
#: Most filter columns cached per collection (each costs 12 bytes per slot plus its distinct values).
MAX_COLUMNS: Final = 32

_F32: Final = np.float32
_LE_F32: Final = np.dtype("<f4")
#: A filtered search gathers its rows when they are at most this fraction of the collection; above, it
#: scores every row and picks (the scores are the same either way).
_GATHER_FRACTION: Final = 0.25
_DIGEST_BLOCK_ROWS: Final = 4096
_U32: Final = struct.Struct("<I")
_REAL_TYPES: Final = (int, float, np.integer, np.floating)

_Vector = npt.NDArray[np.float32]
_Mask = npt.NDArray[np.bool_]
_Slots = npt.NDArray[np.intp]
_Space = tuple[str, str]
_Metric = Literal["cosine", "dot", "euclidean"]


class VectorQueryError(ValueError):
    """A search that cannot run: bad query vector, k, min_score or filter (HTTP 400)."""


class FilterError(VectorQueryError):
    """An invalid metadata filter: unknown operator, bad operand, bad path or too deep."""


class CollectionNotFoundError(LookupError):
    """No collection of that name in the tenant's namespace (HTTP 404)."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: vector id, score (higher is better; -distance for euclidean), metadata, vector."""

    id: str
    score: float
    metadata: dict[str, Any]
    vector: _Vector | None = None


@dataclass(frozen=True, slots=True)
class StoredVector:
    """A vector as stored: its embedding (a float32 copy, bit-exact as written) and metadata."""

    id: str
    vector: _Vector
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CollectionInfo:
    """A collection's configuration, size and memory (`bytes_used` counts matrix, ids, metadata, caches)."""

    name: str
    dimension: int
    metric: str
    count: int
    capacity: int
    matrix_bytes: int
    bytes_used: int

    @property
    def bytes_per_vector(self) -> float:
        """`bytes_used` / `count` (0 when empty)."""
        return self.bytes_used / self.count if self.count else 0.0


# -- JSON values: equality keys, paths ----------------------------------------------------------------

_R_NULL, _R_BOOL, _R_NUMBER, _R_STRING, _R_ARRAY, _R_OBJECT = range(1, 7)
_MIN_INT: Final = -(2**63)
_MAX_UINT: Final = 2**64 - 1
_JsonKey = tuple[Any, ...]


def _json_key(value: Any) -> _JsonKey:
    """A hashable, ordered key of a JSON value: equal iff JSON-equal (`1 == 1.0`, `true != 1`, key order ignored)."""
    kind = type(value)
    if kind is str:
        return (_R_STRING, value)
    if kind is int:
        if not _MIN_INT <= value <= _MAX_UINT:
            raise FilterError(f"integer {value} outside the 64-bit range of JSON numbers")
        return (_R_NUMBER, value)
    if kind is float:
        if not math.isfinite(value):
            raise FilterError(f"non-finite number {value!r} is not JSON")
        return (_R_NUMBER, value)
    if kind is bool:
        return (_R_BOOL, value)
    if value is None:
        return (_R_NULL,)
    if kind is list:
        return (_R_ARRAY, tuple(_json_key(item) for item in value))
    if kind is dict:
        for name in value:
            if type(name) is not str:
                raise FilterError(f"JSON object keys must be strings, not {name!r}")
        return (_R_OBJECT, tuple((name, _json_key(value[name])) for name in sorted(value)))
    raise FilterError(f"{kind.__name__} is not a JSON value")


def _is_exact_float(value: int | float) -> bool:
    """True if `value` is a float, or an int that float64 holds exactly."""
    return type(value) is float or float(value) == value


# -- columns: per-path value indexes over slots ------------------------------------------------------


class _Column:
    """The values of one metadata path over a collection's slots: codes, float64 numbers, array elements."""

    __slots__ = (
        "big_ints",
        "code_of",
        "codes",
        "dead",
        "elements",
        "keys",
        "nums",
        "refs",
        "segments",
        "slot_elements",
    )

    def __init__(self, segments: tuple[str, ...], capacity: int) -> None:
        self.segments = segments
        #: Code of each slot's whole value (equal JSON values share one), -1 when missing.
        self.codes = np.full(capacity, -1, dtype=np.int32)
        #: Each slot's value as float64 when it is a number float64 holds exactly, else NaN.
        self.nums = np.full(capacity, np.nan, dtype=np.float64)
        #: Slots whose value is an int float64 cannot hold exactly, with the value.
        self.big_ints: dict[int, int] = {}
        self.code_of: dict[_JsonKey, int] = {}
        self.keys: list[_JsonKey] = []
        #: How many slot values and array elements use each code; `dead` counts codes at zero.
        self.refs: list[int] = []
        self.dead = 0
        #: Inverted index of array values: element code → slots whose array holds an equal element.
        self.elements: dict[int, set[int]] = {}
        self.slot_elements: dict[int, tuple[int, ...]] = {}

    def grow(self, capacity: int) -> None:
        """Resize the per-slot arrays to `capacity` (slots beyond the count are empty)."""
        codes = np.full(capacity, -1, dtype=np.int32)
        nums = np.full(capacity, np.nan, dtype=np.float64)
        keep = min(capacity, len(self.codes))
        codes[:keep] = self.codes[:keep]
        nums[:keep] = self.nums[:keep]
        self.codes, self.nums = codes, nums

    def _intern(self, key: _JsonKey) -> int:
        code = self.code_of.get(key)
        if code is None:
            code = len(self.keys)
            self.code_of[key] = code
            self.keys.append(key)
            self.refs.append(1)
            return code
        if self.refs[code] == 0:
            self.dead -= 1
        self.refs[code] += 1
        return code

    def _release(self, code: int) -> None:
        self.refs[code] -= 1
        if self.refs[code] == 0:
            self.dead += 1

    def put(self, slot: int, document: dict[str, Any] | None) -> None:
        """Index the value of this path in `document` at `slot` (which must be empty)."""
        value = MISSING if document is None else descend(document, self.segments)
        if value is MISSING:
            return
        self.codes[slot] = self._intern(_json_key(value))
        kind = type(value)
        if kind is int or kind is float:
            if _is_exact_float(value):
                self.nums[slot] = float(value)
            else:
                self.big_ints[slot] = value
        elif kind is list and value:
            codes = tuple(sorted({self._intern(_json_key(item)) for item in value}))
            self.slot_elements[slot] = codes
            for code in codes:
                self.elements.setdefault(code, set()).add(slot)

    def clear(self, slot: int) -> None:
        """Forget the value at `slot`."""
        code = int(self.codes[slot])
        if code < 0:
            return
        self._release(code)
        self.codes[slot] = -1
        self.nums[slot] = np.nan
        self.big_ints.pop(slot, None)
        for element in self.slot_elements.pop(slot, ()):
            slots = self.elements[element]
            slots.discard(slot)
            if not slots:
                del self.elements[element]
            self._release(element)

    def move(self, source: int, target: int) -> None:
        """Move the value at `source` to the empty slot `target`."""
        self.codes[target] = self.codes[source]
        self.nums[target] = self.nums[source]
        self.codes[source] = -1
        self.nums[source] = np.nan
        if source in self.big_ints:
            self.big_ints[target] = self.big_ints.pop(source)
        elements = self.slot_elements.pop(source, None)
        if elements is not None:
            self.slot_elements[target] = elements
            for element in elements:
                slots = self.elements[element]
                slots.discard(source)
                slots.add(target)

    def stale(self) -> bool:
        """True when most known values are no longer used (the column should be rebuilt)."""
        return self.dead > 1024 and self.dead * 2 > len(self.keys)

    def nbytes(self) -> int:
        """Approximate memory of the column."""
        distinct = sys.getsizeof(self.code_of) + sys.getsizeof(self.keys) + sys.getsizeof(self.refs)
        postings = sum(sys.getsizeof(slots) for slots in self.elements.values())
        return int(self.codes.nbytes + self.nums.nbytes) + distinct + 64 * len(self.keys) + postings

    # - masks over the first `count` slots -

    def table_mask(self, codes: Sequence[int] | _Mask, count: int) -> _Mask:
        """Slots whose whole value has one of `codes` (a list of codes or a boolean table over codes)."""
        table = np.zeros(len(self.keys) + 1, dtype=np.bool_)  # the extra last entry serves code -1
        if len(codes):
            table[: len(self.keys)] |= _as_table(codes, len(self.keys))
        result: _Mask = table[self.codes[:count]]
        return result

    def add_elements(self, mask: _Mask, codes: Sequence[int]) -> None:
        """Also set the slots whose array holds an element with one of `codes`."""
        for code in codes:
            slots = self.elements.get(code)
            if slots:
                mask[np.fromiter(slots, dtype=np.intp, count=len(slots))] = True


def _as_table(codes: Sequence[int] | _Mask, size: int) -> _Mask:
    if isinstance(codes, np.ndarray) and codes.dtype == np.bool_:
        return codes
    table = np.zeros(size, dtype=np.bool_)
    table[np.asarray(codes, dtype=np.intp)] = True
    return table


# -- filters: compiled to nodes evaluated into masks --------------------------------------------------


class _Columns:
    """What a filter node reads: the count of slots and a column per path."""

    __slots__ = ("collection", "count")

    def __init__(self, collection: _Collection) -> None:
        self.collection = collection
        self.count = collection.count

    def column(self, segments: tuple[str, ...]) -> _Column:
        """The column of `segments`, built now if it is not cached."""
        return self.collection.column(segments)


class _Node:
    """A compiled filter node."""

    __slots__ = ()

    def mask(self, columns: _Columns) -> _Mask:
        """The slots that match, as a boolean mask of length `columns.count`."""
        raise NotImplementedError


class _All(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def mask(self, columns: _Columns) -> _Mask:
        result = np.ones(columns.count, dtype=np.bool_)
        for part in self.parts:
            result &= part.mask(columns)
        return result


class _Any(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: list[_Node]) -> None:
        self.parts = parts

    def mask(self, columns: _Columns) -> _Mask:
        result = np.zeros(columns.count, dtype=np.bool_)
        for part in self.parts:
            result |= part.mask(columns)
        return result


class _Not(_Node):
    __slots__ = ("part",)

    def __init__(self, part: _Node) -> None:
        self.part = part

    def mask(self, columns: _Columns) -> _Mask:
        return ~self.part.mask(columns)


class _In(_Node):
    """`$eq` (one key) and `$in`: the value, or an element of an array value, equals one of `keys`."""

    __slots__ = ("keys", "segments")

    def __init__(self, segments: tuple[str, ...], keys: list[_JsonKey]) -> None:
        self.segments = segments
        self.keys = keys

    def mask(self, columns: _Columns) -> _Mask:
        column = columns.column(self.segments)
        codes = sorted({code for key in self.keys if (code := column.code_of.get(key)) is not None})
        if len(codes) == 1:
            result: _Mask = column.codes[: columns.count] == codes[0]
        else:
            result = column.table_mask(codes, columns.count)
        column.add_elements(result, codes)
        return result


class _Exists(_Node):
    __slots__ = ("present", "segments")

    def __init__(self, segments: tuple[str, ...], present: bool) -> None:
        self.segments = segments
        self.present = present

    def mask(self, columns: _Columns) -> _Mask:
        codes = columns.column(self.segments).codes[: columns.count]
        result: _Mask = codes >= 0 if self.present else codes < 0
        return result


class _KeyTest(_Node):
    """A test on each distinct value (`$prefix`, comparisons of strings and other non-numbers)."""

    __slots__ = ("segments", "test")

    def __init__(self, segments: tuple[str, ...], test: Callable[[_JsonKey], bool]) -> None:
        self.segments = segments
        self.test = test

    def mask(self, columns: _Columns) -> _Mask:
        column = columns.column(self.segments)
        table = np.fromiter((self.test(key) for key in column.keys), dtype=np.bool_, count=len(column.keys))
        return column.table_mask(table, columns.count)


_PY_COMPARE: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": lambda left, right: bool(left > right),
    "$gte": lambda left, right: bool(left >= right),
    "$lt": lambda left, right: bool(left < right),
    "$lte": lambda left, right: bool(left <= right),
}
#: The comparison with the nearest float `bound` of an int operand, by (operator, bound > operand).
_ROUNDED_OPERATOR: Final = {
    ("$gt", True): "$gte",
    ("$gt", False): "$gt",
    ("$gte", True): "$gte",
    ("$gte", False): "$gt",
    ("$lt", True): "$lt",
    ("$lt", False): "$lte",
    ("$lte", True): "$lt",
    ("$lte", False): "$lte",
}
_NP_COMPARE: Final[dict[str, Callable[[Any, float], _Mask]]] = {
    "$gt": np.greater,
    "$gte": np.greater_equal,
    "$lt": np.less,
    "$lte": np.less_equal,
}


class _NumberCompare(_Node):
    """`$gt $gte $lt $lte` with a number: exact, on the float64 column plus the big ints."""

    __slots__ = ("operand", "operator", "segments")

    def __init__(self, segments: tuple[str, ...], operator: str, operand: int | float) -> None:
        self.segments = segments
        self.operator = operator
        self.operand = operand

    def mask(self, columns: _Columns) -> _Mask:
        column = columns.column(self.segments)
        nums = column.nums[: columns.count]
        operator, operand = self.operator, self.operand
        bound = float(operand)
        if not _is_exact_float(operand):
            # No float lies strictly between the int operand and its nearest float `bound`, so a float
            # compares to the operand as it compares to `bound`, with the equal case decided by the side.
            operator = _ROUNDED_OPERATOR[operator, bound > operand]
        with np.errstate(invalid="ignore"):
            result: _Mask = _NP_COMPARE[operator](nums, bound)
        holds = _PY_COMPARE[self.operator]
        for slot, value in column.big_ints.items():
            if slot < columns.count and holds(value, self.operand):
                result[slot] = True
        return result


def _field_path(path: Any) -> tuple[str, ...]:
    """The segments of a metadata path, or FilterError."""
    if not isinstance(path, str) or not path:
        raise FilterError(f"a field path must be a non-empty string, not {path!r}")
    segments = tuple(path.split("."))
    if any(not segment for segment in segments):
        raise FilterError(f"path {path!r} has an empty segment")
    return segments


def _operand_key(value: Any, where: str) -> _JsonKey:
    try:
        return _json_key(value)
    except FilterError as exc:
        raise FilterError(f"{where}: {exc}") from None


def _compare_node(segments: tuple[str, ...], operator: str, operand: Any, where: str) -> _Node:
    key = _operand_key(operand, where)
    rank = key[0]
    if rank == _R_NUMBER:
        return _NumberCompare(segments, operator, operand)
    holds = _PY_COMPARE[operator]
    if rank == _R_STRING:
        return _KeyTest(segments, lambda found: found[0] == _R_STRING and holds(found[1], operand))
    return _KeyTest(segments, lambda found: found[0] == rank and holds(found, key))


def _operator_node(segments: tuple[str, ...], operator: str, operand: Any, path: str) -> _Node:
    where = f"{operator} on {path!r}"
    if operator in ("$eq", "$ne"):
        node: _Node = _In(segments, [_operand_key(operand, where)])
        return node if operator == "$eq" else _Not(node)
    if operator in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise FilterError(f"{where} takes a list of values, not {type(operand).__name__}")
        if len(operand) > MAX_IN:
            raise FilterError(f"{where} lists {len(operand)} values; at most {MAX_IN}")
        node = _In(segments, [_operand_key(item, where) for item in operand])
        return node if operator == "$in" else _Not(node)
    if operator in _PY_COMPARE:
        return _compare_node(segments, operator, operand, where)
    if operator == "$exists":
        if type(operand) is not bool:
            raise FilterError(f"{where} takes true or false, not {operand!r}")
        return _Exists(segments, operand)
    if operator == "$prefix":
        if type(operand) is not str:
            raise FilterError(f"{where} takes a string, not {type(operand).__name__}")
        prefix: str = operand
        return _KeyTest(segments, lambda found: found[0] == _R_STRING and found[1].startswith(prefix))
    raise FilterError(
        f"unknown operator {operator!r} on {path!r}; use one of $eq $ne $gt $gte $lt $lte $in $nin $exists $prefix"
    )


def _field_node(path: Any, condition: Any) -> _Node:
    segments = _field_path(path)
    if isinstance(condition, dict) and any(isinstance(name, str) and name.startswith("$") for name in condition):
        if not all(isinstance(name, str) and name.startswith("$") for name in condition):
            raise FilterError(f"the condition on {path!r} mixes $ operators and plain fields")
        parts = [_operator_node(segments, name, operand, path) for name, operand in condition.items()]
        return parts[0] if len(parts) == 1 else _All(parts)
    return _In(segments, [_operand_key(condition, f"value for {path!r}")])


def _compile(spec: Any, depth: int) -> _Node | None:
    """The node of a filter object, or None when it matches everything."""
    if not isinstance(spec, dict):
        raise FilterError(f"a filter must be an object, not {type(spec).__name__}")
    if depth > MAX_FILTER_DEPTH:
        raise FilterError(f"filter nested deeper than {MAX_FILTER_DEPTH} levels")
    parts: list[_Node] = []
    for name, operand in spec.items():
        if name in ("$and", "$or"):
            if not isinstance(operand, list) or not operand:
                raise FilterError(f"{name} takes a non-empty list of filters")
            children = [_compile(child, depth + 1) for child in operand]
            if name == "$and":
                parts.extend(child for child in children if child is not None)
            elif all(child is not None for child in children):
                parts.append(_Any([child for child in children if child is not None]))
            # else: one branch of the $or matches everything, so the $or does too
        elif isinstance(name, str) and name.startswith("$"):
            raise FilterError(f"unknown operator {name!r}; only $and and $or combine filters")
        else:
            parts.append(_field_node(name, operand))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else _All(parts)


# -- collections -----------------------------------------------------------------------------------


_VECDOT: Final[Callable[[_Vector, _Vector], _Vector] | None] = getattr(np, "vecdot", None)


def _row_dots(rows: _Vector, query: _Vector) -> _Vector:
    """`rows @ query` computed row by row, so each score depends only on its row and the query."""
    if _VECDOT is not None:
        return _VECDOT(rows, query)
    dots: _Vector = np.einsum("ij,j->i", rows, query)
    return dots


def _sum_of_squares(vector: _Vector) -> float:
    """|x|² in float64: the squares of float32 values are exact there, and BLAS `ddot` adds them in a fixed order."""
    wide = vector.astype(np.float64)
    return float(np.dot(wide, wide))


class _Collection:
    """One collection: the matrix, the per-slot ids, metadata and norms, and the filter columns (a cache)."""

    __slots__ = (
        "aux",
        "columns",
        "count",
        "dimension",
        "id_bytes",
        "ids",
        "matrix",
        "meta",
        "meta_bytes",
        "metric",
        "slots",
    )

    def __init__(self, dimension: int, metric: _Metric) -> None:
        self.dimension = dimension
        self.metric: _Metric = metric
        self.count = 0
        self.matrix: _Vector = np.zeros((0, dimension), dtype=_F32)
        #: Per slot: 1/|x| (cosine) or |x|² (euclidean), float32; empty for dot.
        self.aux: _Vector = np.zeros(0, dtype=_F32)
        self.ids: list[str] = []
        self.slots: dict[str, int] = {}
        #: Per slot: the canonical JSON of the metadata, or None for none.
        self.meta: list[bytes | None] = []
        self.id_bytes = 0
        self.meta_bytes = 0
        self.columns: dict[tuple[str, ...], _Column] = {}

    def __getstate__(self) -> dict[str, Any]:
        state = {slot: getattr(self, slot) for slot in self.__slots__ if slot != "columns"}
        state["capacity"] = len(self.matrix)
        state["matrix"] = self.matrix[: self.count].copy()
        state["aux"] = self.aux[: self.count].copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        capacity = state.pop("capacity")
        for slot, value in state.items():
            setattr(self, slot, value)
        self.columns = {}
        rows, aux = self.matrix, self.aux
        self.matrix = np.zeros((capacity, self.dimension), dtype=_F32)
        self.matrix[: self.count] = rows
        self.aux = np.zeros(capacity if self.metric != "dot" else 0, dtype=_F32)
        self.aux[: len(aux)] = aux

    # - writes (called once every check passed) -

    def _resize(self, capacity: int) -> None:
        matrix = np.zeros((capacity, self.dimension), dtype=_F32)
        matrix[: self.count] = self.matrix[: self.count]
        self.matrix = matrix
        if self.metric != "dot":
            aux = np.zeros(capacity, dtype=_F32)
            aux[: self.count] = self.aux[: self.count]
            self.aux = aux
        for column in self.columns.values():
            column.grow(capacity)

    def upsert(
        self, vector_id: str, vector: _Vector, aux: float, metadata: dict[str, Any] | None, meta: bytes | None
    ) -> bool:
        """Write `vector_id` with its metadata and their canonical JSON (new ids take the next slot); True if new."""
        slot = self.slots.get(vector_id)
        created = slot is None
        if slot is None:
            slot = self.count
            if slot == len(self.matrix):
                self._resize(max(MIN_CAPACITY, 2 * len(self.matrix)))
            self.count += 1
            self.ids.append(vector_id)
            self.slots[vector_id] = slot
            self.meta.append(meta)
            self.id_bytes += sys.getsizeof(vector_id)
        else:
            old = self.meta[slot]
            self.meta_bytes -= sys.getsizeof(old) if old is not None else 0
            self.meta[slot] = meta
            for column in self.columns.values():
                column.clear(slot)
        self.meta_bytes += sys.getsizeof(meta) if meta is not None else 0
        self.matrix[slot] = vector
        if self.metric != "dot":
            self.aux[slot] = aux
        for column in self.columns.values():
            column.put(slot, metadata or None)
        self._drop_stale_columns()
        return created

    def delete(self, vector_id: str) -> None:
        """Remove `vector_id` (which must exist): the last slot moves into its hole."""
        hole = self.slots.pop(vector_id)
        last = self.count - 1
        self.id_bytes -= sys.getsizeof(vector_id)
        old = self.meta[hole]
        self.meta_bytes -= sys.getsizeof(old) if old is not None else 0
        for column in self.columns.values():
            column.clear(hole)
        if hole != last:
            moved = self.ids[last]
            self.matrix[hole] = self.matrix[last]
            if self.metric != "dot":
                self.aux[hole] = self.aux[last]
            self.ids[hole] = moved
            self.slots[moved] = hole
            self.meta[hole] = self.meta[last]
            for column in self.columns.values():
                column.move(last, hole)
        self.matrix[last] = 0
        if self.metric != "dot":
            self.aux[last] = 0
        self.ids.pop()
        self.meta.pop()
        self.count = last
        if len(self.matrix) > MIN_CAPACITY and self.count <= len(self.matrix) // 4:
            self._resize(len(self.matrix) // 2)
        self._drop_stale_columns()

    def _drop_stale_columns(self) -> None:
        for segments in [segments for segments, column in self.columns.items() if column.stale()]:
            del self.columns[segments]

    # - reads -

    def metadata(self, slot: int) -> dict[str, Any]:
        """A fresh dict of the metadata at `slot` ({} when none)."""
        data = self.meta[slot]
        if data is None:
            return {}
        value: dict[str, Any] = orjson.loads(data)
        return value

    def column(self, segments: tuple[str, ...]) -> _Column:
        """The filter column of `segments`, built from every slot's metadata if not cached."""
        column = self.columns.get(segments)
        if column is None:
            column = _Column(segments, len(self.matrix))
            for slot, data in enumerate(self.meta):
                if data is not None:
                    column.put(slot, orjson.loads(data))
            if len(self.columns) >= MAX_COLUMNS:
                del self.columns[next(iter(self.columns))]
            self.columns[segments] = column
        return column

    def scores(self, rows: _Slots | None, query: _Vector, query_sq: np.float32) -> _Vector:
        """Scores of `rows` (None: every slot), in that order, on the one fixed path (see module docstring)."""
        if rows is None:
            dots = _row_dots(self.matrix[: self.count], query)
            aux = self.aux[: self.count]
        else:
            dots = _row_dots(self.matrix[rows], query)
            aux = self.aux[rows] if self.metric != "dot" else self.aux
        if self.metric == "dot":
            return dots
        if self.metric == "cosine":
            dots *= aux
            return dots
        squared = aux - dots * np.float32(2.0)
        squared += query_sq
        np.maximum(squared, np.float32(0.0), out=squared)
        np.sqrt(squared, out=squared)
        np.negative(squared, out=squared)
        return squared

    def bytes_used(self) -> int:
        """Matrix, norms, ids (list, strings, slot dict), metadata (list, bytes) and filter columns."""
        total = int(self.matrix.nbytes + self.aux.nbytes)
        total += sys.getsizeof(self.ids) + self.id_bytes + sys.getsizeof(self.slots)
        total += 28 * max(0, self.count - 256)  # the slot ints the dict holds (small ints are shared)
        total += sys.getsizeof(self.meta) + self.meta_bytes
        return total + sum(column.nbytes() for column in self.columns.values())


def _top(scores: _Vector, k: int, id_of: Callable[[int], str]) -> _Slots:
    """Positions of the k best scores, ordered by (-score, id)."""
    count = len(scores)
    if count > k:
        threshold = np.partition(scores, count - k)[count - k]
        candidates: _Slots = np.flatnonzero(scores >= threshold)
    else:
        candidates = np.arange(count, dtype=np.intp)
    ranked = scores[candidates]
    order = np.argsort(-ranked, kind="stable")
    candidates, ranked = candidates[order], ranked[order]
    if len(ranked) > 1 and bool((ranked[1:] == ranked[:-1]).any()):
        keyed = sorted(zip((-ranked).tolist(), map(id_of, candidates.tolist()), candidates.tolist(), strict=True))
        candidates = np.fromiter((position for _, _, position in keyed), dtype=np.intp, count=len(keyed))
    return candidates[:k]


class VectorsModel(ReadModel):
    """Vector collections per (tenant, namespace): exact top-k search with exact metadata filters."""

    name: ClassVar[str] = "vectors"
    command_types: ClassVar[frozenset[str]] = frozenset(("collection.create", "vector.delete", "vector.upsert"))

    def __init__(self) -> None:
        self._spaces: dict[_Space, dict[str, _Collection]] = {}
        #: Text indexes of `projections.vector_hybrid` (a cache: never snapshotted, digested or state).
        self.text_indexes: dict[tuple[Any, ...], Any] = {}

    def snapshot_state(self) -> Iterator[Any]:
        """Per collection: `[tenant, namespace, name, fields]`, the matrix and norms as arrays."""
        for (tenant, namespace), collections in self._spaces.items():
            for name, stored in collections.items():
                yield [tenant, namespace, name, stored.__getstate__()]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Rebuild the collections from `snapshot_state` pieces (filter columns are rebuilt on use)."""
        for tenant, namespace, name, fields in pieces:
            stored = _Collection.__new__(_Collection)
            stored.__setstate__(dict(fields))
            self._spaces.setdefault((tenant, namespace), {})[name] = stored

    # -- writes --------------------------------------------------------------------------------------

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply collection.create, vector.upsert or vector.delete; Rejected changes nothing."""
        envelope = context.envelope
        command = envelope.command
        namespace = envelope.namespace
        if namespace is None:
            raise Rejected("invalid", f"{envelope.type} needs a namespace")
        space = (envelope.tenant, namespace)
        if isinstance(command, CollectionCreate):
            return self._create(space, command)
        if isinstance(command, VectorUpsert):
            return self._upsert(space, command)
        if isinstance(command, VectorDelete):
            return self._delete(space, command)
        raise Rejected("invalid", f"the vectors model does not apply {envelope.type}")

    def _create(self, space: _Space, command: CollectionCreate) -> dict[str, Any]:
        config = {"collection": command.name, "dimension": command.dimension, "metric": command.metric}
        existing = self._spaces.get(space, {}).get(command.name)
        if existing is not None:
            if (existing.dimension, existing.metric) != (command.dimension, command.metric):
                raise Rejected(
                    "already_exists",
                    f"collection {command.name!r} exists with dimension {existing.dimension} and metric"
                    f" {existing.metric!r}",
                    dimension=existing.dimension,
                    metric=existing.metric,
                )
            return {"created": False, **config}
        self._spaces.setdefault(space, {})[command.name] = _Collection(command.dimension, command.metric)
        return {"created": True, **config}

    def _collection_for_write(self, space: _Space, name: str) -> _Collection:
        collection = self._spaces.get(space, {}).get(name)
        if collection is None:
            raise Rejected("not_found", f"no collection {name!r} in namespace {space[1]!r}")
        return collection

    def _upsert(self, space: _Space, command: VectorUpsert) -> dict[str, Any]:
        collection = self._collection_for_write(space, command.collection)
        vector = command.vector()
        if len(vector) != collection.dimension:
            raise Rejected(
                "invalid",
                f"embedding has dimension {len(vector)}; collection {command.collection!r} has {collection.dimension}",
                dimension=collection.dimension,
            )
        if not bool(np.isfinite(vector).all()):
            raise Rejected("invalid", "embedding values must be finite")
        squares = _sum_of_squares(vector)
        norm = math.sqrt(squares)
        if norm > MAX_NORM:
            raise Rejected("invalid", f"embedding norm {norm:.3g} exceeds {MAX_NORM:g}")
        aux = 0.0
        if collection.metric == "cosine":
            if norm < MIN_COSINE_NORM:
                raise Rejected("invalid", f"embedding norm {norm:.3g} is too small for cosine (a zero vector?)")
            aux = 1.0 / norm
        elif collection.metric == "euclidean":
            aux = squares
        try:
            # A copy: orjson's result keeps a ~4 KiB allocation however short the JSON (measured, orjson 3.13).
            meta = bytes(memoryview(canonical_json(command.metadata))) if command.metadata else None
        except CommandError as exc:
            raise Rejected("invalid", f"metadata: {exc.detail}") from None
        created = collection.upsert(command.id, vector, aux, command.metadata, meta)
        return {"collection": command.collection, "id": command.id, "created": created, "count": collection.count}

    def _delete(self, space: _Space, command: VectorDelete) -> dict[str, Any]:
        collection = self._collection_for_write(space, command.collection)
        if command.id not in collection.slots:
            return {"collection": command.collection, "id": command.id, "deleted": False, "count": collection.count}
        collection.delete(command.id)
        return {"collection": command.collection, "id": command.id, "deleted": True, "count": collection.count}

    # -- reads ---------------------------------------------------------------------------------------

    def _collection(self, tenant: str, namespace: str, name: str) -> _Collection:
        collection = self._spaces.get((tenant, namespace), {}).get(name)
        if collection is None:
            raise CollectionNotFoundError(f"no collection {name!r} in namespace {namespace!r}")
        return collection

    def stored_collection(self, tenant: str, namespace: str, name: str) -> _Collection:
        """The stored collection (for read modules such as `projections.vector_hybrid`); CollectionNotFoundError."""
        return self._collection(tenant, namespace, name)

    def collections(self, tenant: str, namespace: str) -> list[CollectionInfo]:
        """The collections of a tenant's namespace, sorted by name."""
        space = self._spaces.get((tenant, namespace), {})
        return [_info(name, space[name]) for name in sorted(space)]

    def collection_info(self, tenant: str, namespace: str, collection: str) -> CollectionInfo:
        """Dimension, metric, count and memory of one collection; CollectionNotFoundError if absent."""
        return _info(collection, self._collection(tenant, namespace, collection))

    def get_vector(self, tenant: str, namespace: str, collection: str, vector_id: str) -> StoredVector | None:
        """The stored embedding (bit-exact) and metadata of `vector_id`, or None if absent."""
        stored = self._collection(tenant, namespace, collection)
        slot = stored.slots.get(vector_id)
        if slot is None:
            return None
        return StoredVector(vector_id, stored.matrix[slot].copy(), stored.metadata(slot))

    def search(
        self,
        tenant: str,
        namespace: str,
        collection: str,
        query: npt.ArrayLike,
        k: int = 10,
        filter: Mapping[str, Any] | None = None,
        min_score: float | None = None,
        include_vectors: bool = False,
    ) -> list[Hit]:
        """The k best vectors by score (ties by id) among those matching `filter`, each scoring ≥ `min_score`."""
        stored = self._collection(tenant, namespace, collection)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise VectorQueryError(f"k must be an integer from 1 to {MAX_K}, not {k!r}")
        if min_score is not None:
            if isinstance(min_score, bool | np.bool_) or not isinstance(min_score, _REAL_TYPES):
                raise VectorQueryError(f"min_score must be a finite number, not {min_score!r}")
            min_score = float(min_score)
            if not math.isfinite(min_score):
                raise VectorQueryError(f"min_score must be a finite number, not {min_score!r}")
        if isinstance(filter, Mapping) and not isinstance(filter, dict):
            filter = dict(filter)
        node = _compile(filter, 0) if filter is not None else None
        vector, query_sq = _query_vector(query, stored)
        if stored.count == 0:
            return []
        rows: _Slots | None = None
        if node is not None:
            matches = node.mask(_Columns(stored))
            rows = np.flatnonzero(matches)
            if len(rows) == 0:
                return []
            if len(rows) == stored.count:
                rows = None
        if rows is not None and len(rows) > _GATHER_FRACTION * stored.count:
            scores = stored.scores(None, vector, query_sq)[rows]
        else:
            scores = stored.scores(rows, vector, query_sq)
        slot_of: Callable[[int], int] = (lambda position: position) if rows is None else rows.item
        best = _top(scores, k, lambda position: stored.ids[slot_of(position)])
        hits: list[Hit] = []
        for position in best.tolist():
            score = float(scores[position])
            if min_score is not None and score < min_score:
                break
            slot = slot_of(position)
            row = stored.matrix[slot].copy() if include_vectors else None
            hits.append(Hit(stored.ids[slot], score, stored.metadata(slot), row))
        return hits

    # -- digest --------------------------------------------------------------------------------------

    def digest(self) -> str:
        """Hex SHA-256 over collections sorted by (tenant, namespace, name), vectors sorted by id."""
        hasher = hashlib.sha256(b"agentlog.vectors/1\n")
        for space in sorted(self._spaces):
            collections = self._spaces[space]
            for name in sorted(collections):
                stored = collections[name]
                header = [*space, name, stored.dimension, stored.metric, stored.count]
                hasher.update(canonical_json(header) + b"\n")
                order = sorted(range(stored.count), key=stored.ids.__getitem__)
                for start in range(0, len(order), _DIGEST_BLOCK_ROWS):
                    block = order[start : start + _DIGEST_BLOCK_ROWS]
                    hasher.update(stored.matrix[block].astype(_LE_F32, copy=False).tobytes())
                    for slot in block:
                        vector_id = stored.ids[slot].encode()
                        meta = stored.meta[slot] or b""
                        hasher.update(_U32.pack(len(vector_id)) + vector_id + _U32.pack(len(meta)) + meta)
        return hasher.hexdigest()


def _info(name: str, stored: _Collection) -> CollectionInfo:
    return CollectionInfo(
        name=name,
        dimension=stored.dimension,
        metric=stored.metric,
        count=stored.count,
        capacity=len(stored.matrix),
        matrix_bytes=int(stored.matrix.nbytes),
        bytes_used=stored.bytes_used(),
    )


def _query_vector(query: npt.ArrayLike, stored: _Collection) -> tuple[_Vector, np.float32]:
    """The query as scored (normalized for cosine) and its float32 |q|² (euclidean); VectorQueryError if bad."""
    try:
        array = np.asarray(query)
    except (TypeError, ValueError):
        raise VectorQueryError("query must be a flat list of numbers") from None
    if array.ndim != 1 or array.dtype.kind not in "iuf":
        raise VectorQueryError("query must be a flat list of numbers")
    if len(array) != stored.dimension:
        raise VectorQueryError(f"query has dimension {len(array)}; the collection has {stored.dimension}")
    with np.errstate(over="ignore", invalid="ignore"):
        vector = array.astype(_F32)
    if not bool(np.isfinite(vector).all()):
        raise VectorQueryError("query values must be finite float32 numbers")
    squares = _sum_of_squares(vector)
    norm = math.sqrt(squares)
    if norm > MAX_NORM:
        raise VectorQueryError(f"query norm {norm:.3g} exceeds {MAX_NORM:g}")
    if stored.metric == "cosine":
        if norm < MIN_COSINE_NORM:
            raise VectorQueryError(f"query norm {norm:.3g} is too small for cosine (a zero vector?)")
        return (vector.astype(np.float64) / norm).astype(_F32), np.float32(0.0)
    if stored.metric == "euclidean":
        return vector, np.float32(squares)
    return vector, np.float32(0.0)
