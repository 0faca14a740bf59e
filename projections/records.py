"""The records read model (KV documents): `(tenant, namespace, key)` → value, version, metadata, TTL.

Commands: `kv.put`, `kv.delete`, `kv.batch_put`, `kv.clear`, `ns.config` and the sweeper's
`kv.expire`. Everything is decided in **log time** (`ApplyContext.log_time_ms`); reads take the
reader's clock `now_ms` only to hide what has expired by then.

Decisions:

- **Versions** count from 1 per key and go up by one on every put. The model keeps no tombstones: a
  delete (or expiry, or clear) forgets the key, and a re-created key starts again at version 1.
  `if_version=0` means "must not exist". (So a delete-then-recreate is not distinguished from the
  original version 1; clients that need that use state records, whose versions never restart.)
- **Expiry**: `expires_at_ms = log time + ttl_s * 1000`, else the namespace's default TTL, else none;
  every put recomputes it (a put without TTL clears an earlier one unless the namespace has a
  default). A record whose `expires_at_ms <= log time` is absent for writes (version 0): a put
  re-creates it at version 1, a delete reports `deleted: false`. Reads hide a record once
  `expires_at_ms <= now_ms`. The sweeper lists `expired(now_ms, limit)` and appends `kv.expire`,
  which purges the key only if it is still at that version and expired in log time, else is a
  no-op answering `{"expired": false}`.
- **Metadata**: a put with `metadata` replaces it; a put without keeps the live record's metadata
  (a new record gets `{}`), so value-only updates (seed 002 `set(key, value)`) keep tags.
- **Namespace config** (`ns.config`) replaces the namespace's JSON Schema and default TTL; it applies
  to later writes only and survives `kv.clear`. A namespace is listed by `namespaces` while it has
  live keys or a config.
- **JSON Schema subset** (no `jsonschema` dependency; a small deterministic validator):
  `type` (a name or list of names of null, boolean, integer, number, string, array, object;
  `integer` accepts integral floats), `enum`, `const`, `properties`, `required`,
  `additionalProperties` (bool or schema), `minimum`, `maximum`, `exclusiveMinimum`,
  `exclusiveMaximum` (numbers), `minLength`, `maxLength` (code points), `items` (one schema),
  `minItems`, `maxItems`; boolean schemas; annotations (`$schema`, `$comment`, `title`,
  `description`, `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`) are ignored. Any other
  keyword, or nesting deeper than 32, makes `ns.config` rejected as `invalid`.
- **Batch put** checks every item (version, schema) before writing any; then writes all.
- **Isolation**: state is keyed by tenant first and every method takes the tenant; nothing crosses.

Reads return `RecordView`s (frozen) that share the stored JSON value and metadata: serialize, do not
mutate them. Per namespace the keys are kept in a chunked sorted list (O(log n) inserts, cheap
ordered scans) and expiring records in a sorted index by `(expires_at_ms, key)`, plus one global
index by `(expires_at_ms, tenant, namespace, key)` for the sweeper.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Final, Generic, TypeVar

import orjson

from commands.wire import KvBatchPut, KvClear, KvDelete, KvExpire, KvPut, LoggedEnvelope, NamespaceConfig
from projections.model import ApplyContext, ReadModel, chunked
from projections.outcome import Rejected
from projections.query_dsl import MAX_LIMIT, Query, QueryError, QueryPlan, json_equal

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

__all__ = ["NamespaceView", "RecordView", "RecordsModel", "check_schema_definition", "schema_violation"]

_T = TypeVar("_T", bound="SupportsRichComparison")
_CHUNK: Final = 512
_MAX_SCHEMA_DEPTH: Final = 32
_ANNOTATIONS: Final = frozenset(
    ("$schema", "$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly")
)
_TYPE_NAMES: Final = frozenset(("null", "boolean", "integer", "number", "string", "array", "object"))
_TYPE_CLASSES: Final[dict[str, type]] = {"boolean": bool, "string": str, "array": list, "object": dict}
_BOUNDS: Final = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
_COUNTS: Final = ("minLength", "maxLength", "minItems", "maxItems")
_SUBSCHEMA_KEYWORDS: Final = frozenset(("properties", "additionalProperties", "items"))
_KEYWORDS: Final = frozenset(("type", "enum", "const", "required", *_BOUNDS, *_COUNTS, *_SUBSCHEMA_KEYWORDS))


# -- sorted list ----------------------------------------------------------------------------------


class _SortedList(Generic[_T]):
    """A sorted list of unique items in chunks: O(log n) add/remove, ordered scans from any item."""

    __slots__ = ("_chunks", "_maxes")

    def __init__(self) -> None:
        self._chunks: list[list[_T]] = []
        self._maxes: list[_T] = []

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def __iter__(self) -> Iterator[_T]:
        for chunk in self._chunks:
            yield from chunk

    def add(self, item: _T) -> None:
        """Insert `item` (not already present)."""
        if not self._chunks:
            self._chunks.append([item])
            self._maxes.append(item)
            return
        index = bisect_left(self._maxes, item)
        if index == len(self._maxes):
            index -= 1
            self._chunks[index].append(item)
            self._maxes[index] = item
        else:
            insort(self._chunks[index], item)
        chunk = self._chunks[index]
        if len(chunk) > 2 * _CHUNK:
            self._chunks[index : index + 1] = [chunk[:_CHUNK], chunk[_CHUNK:]]
            self._maxes[index : index + 1] = [chunk[_CHUNK - 1], chunk[-1]]

    def remove(self, item: _T) -> None:
        """Remove `item` (present)."""
        index = bisect_left(self._maxes, item)
        chunk = self._chunks[index]
        position = bisect_left(chunk, item)
        if position >= len(chunk) or chunk[position] != item:
            raise KeyError(item)  # an index out of step with the records: never delete a neighbour
        del chunk[position]
        if not chunk:
            del self._chunks[index]
            del self._maxes[index]
        elif position == len(chunk):
            self._maxes[index] = chunk[-1]

    def scan(self, start: _T, *, inclusive: bool) -> Iterator[_T]:
        """The items from `start` on (including it if `inclusive`), in order."""
        find = bisect_left if inclusive else bisect_right
        index = find(self._maxes, start)
        if index == len(self._chunks):
            return
        chunk = self._chunks[index]
        yield from chunk[find(chunk, start) :]
        for later in self._chunks[index + 1 :]:
            yield from later

    @classmethod
    def from_sorted(cls, items: list[_T]) -> _SortedList[_T]:
        """A sorted list holding `items`, which must be sorted and unique."""
        built: _SortedList[_T] = cls()
        built._chunks = [items[start : start + _CHUNK] for start in range(0, len(items), _CHUNK)]
        built._maxes = [chunk[-1] for chunk in built._chunks]
        return built

    def count_below(self, bound: _T) -> int:
        """How many items are less than `bound`."""
        index = bisect_left(self._maxes, bound)
        before = sum(len(chunk) for chunk in self._chunks[:index])
        if index < len(self._chunks):
            before += bisect_left(self._chunks[index], bound)
        return before


# -- views and state ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordView:
    """One record as stored and read: key, JSON value, version, metadata, provenance and expiry (log time)."""

    key: str
    value: Any
    version: int
    metadata: dict[str, Any]
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None
    updated_by: str | None
    expires_at_ms: int | None

    def row(self) -> tuple[Any, ...]:
        """The record's fields as a tuple, in declaration order (for digests, snapshots and exports)."""
        return (
            self.key,
            self.value,
            self.version,
            self.metadata,
            self.created_at_ms,
            self.updated_at_ms,
            self.created_by,
            self.updated_by,
            self.expires_at_ms,
        )


@dataclass(frozen=True, slots=True)
class NamespaceView:
    """A namespace's configuration: the JSON Schema values must match and the default TTL (None = none)."""

    json_schema: dict[str, Any] | None
    default_ttl_s: int | None


@dataclass(slots=True)
class _Space:
    """One (tenant, namespace): its records, sorted keys, expiry index and config."""

    records: dict[str, RecordView] = field(default_factory=dict)
    keys: _SortedList[str] = field(default_factory=_SortedList)
    expiry: _SortedList[tuple[int, str]] = field(default_factory=_SortedList)
    config: NamespaceView | None = None

    def __getstate__(self) -> tuple[list[tuple[Any, ...]], NamespaceView | None]:
        """Pickle as record rows in key order and the config; the indexes are rebuilt on load."""
        records = self.records
        return [records[key].row() for key in self.keys], self.config

    def __setstate__(self, state: tuple[list[tuple[Any, ...]], NamespaceView | None]) -> None:
        rows, self.config = state
        self.records = {row[0]: RecordView(*row) for row in rows}
        self.keys = _SortedList.from_sorted([row[0] for row in rows])
        self.expiry = _SortedList.from_sorted(sorted((row[-1], row[0]) for row in rows if row[-1] is not None))

    def expired_count(self, now_ms: int) -> int:
        """How many records have expired at `now_ms`."""
        return self.expiry.count_below((now_ms + 1, ""))


def _is_expired(record: RecordView, now_ms: int) -> bool:
    expires = record.expires_at_ms
    return expires is not None and expires <= now_ms


def _live_version(space: _Space | None, key: str, now_ms: int) -> int:
    """The version of `key` in `space` for a write at `now_ms`: 0 if absent or expired."""
    record = None if space is None else space.records.get(key)
    return 0 if record is None or _is_expired(record, now_ms) else record.version


# -- JSON Schema subset ---------------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _invalid(path: str, detail: str) -> Rejected:
    return Rejected("invalid", f"JSON Schema at {path}: {detail}", path=path)


def _check_type_keyword(names: Any, path: str) -> None:
    listed = names if isinstance(names, list) else [names]
    if not listed or not all(isinstance(name, str) and name in _TYPE_NAMES for name in listed):
        raise _invalid(path, f"`type` must name one or more of {', '.join(sorted(_TYPE_NAMES))}")


def _check_keyword(name: str, argument: Any, path: str, depth: int) -> None:
    """Refuse a keyword of the subset whose argument has the wrong shape."""
    if name == "type":
        _check_type_keyword(argument, path)
    elif name == "enum" and not isinstance(argument, list):
        raise _invalid(path, "`enum` must be a list")
    elif name == "required" and not (isinstance(argument, list) and all(isinstance(item, str) for item in argument)):
        raise _invalid(path, "`required` must be a list of strings")
    elif name in _BOUNDS and not _is_number(argument):
        raise _invalid(path, f"`{name}` must be a number")
    elif name in _COUNTS and not (type(argument) is int and argument >= 0):
        raise _invalid(path, f"`{name}` must be a non-negative integer")
    elif name == "properties":
        if not isinstance(argument, dict):
            raise _invalid(path, "`properties` must be an object of schemas")
        for prop, subschema in argument.items():
            _check_definition(subschema, f"{path}.properties.{prop}", depth + 1)
    elif name in ("additionalProperties", "items"):
        _check_definition(argument, f"{path}.{name}", depth + 1)


def _check_definition(schema: Any, path: str, depth: int) -> None:
    if type(schema) is bool:
        return
    if not isinstance(schema, dict):
        raise _invalid(path, "a schema must be an object or a boolean")
    if depth > _MAX_SCHEMA_DEPTH:
        raise _invalid(path, f"nested deeper than {_MAX_SCHEMA_DEPTH} levels")
    for name, argument in schema.items():
        if name in _ANNOTATIONS:
            continue
        if name not in _KEYWORDS:
            raise _invalid(path, f"keyword {name!r} is not supported (supported: {', '.join(sorted(_KEYWORDS))})")
        _check_keyword(name, argument, path, depth)


def check_schema_definition(schema: Any) -> None:
    """Raise Rejected `invalid` unless `schema` is a JSON Schema within the supported subset."""
    _check_definition(schema, "$", 0)


def _has_type(value: Any, name: str) -> bool:
    kind = type(value)
    if name == "integer":
        return kind is int or (kind is float and float(value).is_integer())
    if name == "number":
        return kind is int or kind is float
    if name == "null":
        return value is None
    return kind is _TYPE_CLASSES[name]


def _type_violation(names: Any, value: Any) -> str | None:
    listed = names if isinstance(names, list) else [names]
    if any(_has_type(value, name) for name in listed):
        return None
    return f"expected {' or '.join(listed)}"


def _number_violation(schema: dict[str, Any], value: Any) -> str | None:
    if not _is_number(value):
        return None
    if "minimum" in schema and value < schema["minimum"]:
        return f"{value} is less than the minimum {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{value} is greater than the maximum {schema['maximum']}"
    if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
        return f"{value} is not greater than {schema['exclusiveMinimum']}"
    if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
        return f"{value} is not less than {schema['exclusiveMaximum']}"
    return None


def _size_violation(schema: dict[str, Any], value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        low, high, what = schema.get("minLength"), schema.get("maxLength"), "characters"
    elif kind is list:
        low, high, what = schema.get("minItems"), schema.get("maxItems"), "items"
    else:
        return None
    if low is not None and len(value) < low:
        return f"has {len(value)} {what}, fewer than {low}"
    if high is not None and len(value) > high:
        return f"has {len(value)} {what}, more than {high}"
    return None


def _object_violation(schema: dict[str, Any], value: Any, path: str) -> tuple[str, str] | None:
    if type(value) is not dict:
        return None
    for name in schema.get("required", ()):
        if name not in value:
            return path, f"required property {name!r} is missing"
    properties: dict[str, Any] = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        subschema = properties.get(name, extra)
        found = _violation(subschema, item, f"{path}.{name}")
        if found is not None:
            if name not in properties and extra is False:
                return path, f"property {name!r} is not allowed"
            return found
    return None


def _array_violation(schema: dict[str, Any], value: Any, path: str) -> tuple[str, str] | None:
    if type(value) is not list or "items" not in schema:
        return None
    for index, item in enumerate(value):
        found = _violation(schema["items"], item, f"{path}[{index}]")
        if found is not None:
            return found
    return None


def _violation(schema: Any, value: Any, path: str) -> tuple[str, str] | None:
    """The first (path, message) where `value` breaks `schema`, or None."""
    if schema is True:
        return None
    if schema is False:
        return path, "no value is allowed here"
    message = None
    if "type" in schema:
        message = _type_violation(schema["type"], value)
    if message is None and "enum" in schema and not any(json_equal(value, item) for item in schema["enum"]):
        message = "not one of the `enum` values"
    if message is None and "const" in schema and not json_equal(value, schema["const"]):
        message = "not the `const` value"
    message = message or _number_violation(schema, value) or _size_violation(schema, value)
    if message is not None:
        return path, message
    return _object_violation(schema, value, path) or _array_violation(schema, value, path)


def schema_violation(schema: Any, value: Any) -> tuple[str, str] | None:
    """The first `(path, message)` where `value` breaks `schema` (a checked subset schema), or None."""
    return _violation(schema, value, "$")


def _check_value(space: _Space, value: Any) -> None:
    """Raise Rejected `schema_violation` if `value` breaks the JSON Schema of `space`."""
    config = space.config
    if config is None or config.json_schema is None:
        return
    found = schema_violation(config.json_schema, value)
    if found is not None:
        path, message = found
        raise Rejected("schema_violation", f"value at {path}: {message}", path=path)


# -- the model ------------------------------------------------------------------------------------


def _version_conflict(key: str, expected: int, current: int) -> Rejected:
    return Rejected(
        "version_conflict",
        f"key {key!r} is at version {current}, not {expected}",
        key=key,
        current_version=current,
    )


class RecordsModel(ReadModel):
    """KV records per (tenant, namespace, key) with versions, metadata, TTL, schemas, listing and queries."""

    name: ClassVar[str] = "records"
    command_types: ClassVar[frozenset[str]] = frozenset(
        ("kv.put", "kv.delete", "kv.batch_put", "kv.clear", "ns.config", "kv.expire")
    )

    def __init__(self) -> None:
        self._tenants: dict[str, dict[str, _Space]] = {}
        self._expiry: _SortedList[tuple[int, str, str, str]] = _SortedList()

    def __getstate__(self) -> list[tuple[str, str, _Space]]:
        """Pickle the namespaces as (tenant, namespace, space); the global expiry index is rebuilt on load."""
        return [
            (tenant, namespace, space)
            for tenant, spaces in self._tenants.items()
            for namespace, space in spaces.items()
        ]

    def __setstate__(self, state: list[tuple[str, str, _Space]]) -> None:
        self._tenants = {}
        entries: list[tuple[int, str, str, str]] = []
        for tenant, namespace, space in state:
            self._tenants.setdefault(tenant, {})[namespace] = space
            entries.extend((expires, tenant, namespace, key) for expires, key in space.expiry)
        self._expiry = _SortedList.from_sorted(sorted(entries))

    def snapshot_state(self) -> Iterator[Any]:
        """Per namespace: `[tenant, namespace, config, rows]` pieces (rows in key order, chunked)."""
        for tenant, spaces in self._tenants.items():
            for namespace, space in spaces.items():
                config = None if space.config is None else [space.config.json_schema, space.config.default_ttl_s]
                records = space.records
                for rows in chunked([records[key].row() for key in space.keys]):
                    yield [tenant, namespace, config, rows]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Rebuild the namespaces, their key and expiry indexes and the global expiry index."""
        collected: dict[tuple[str, str], tuple[Any, list[Any]]] = {}
        for tenant, namespace, config, rows in pieces:
            collected.setdefault((tenant, namespace), (config, []))[1].extend(rows)
        state: list[tuple[str, str, _Space]] = []
        for (tenant, namespace), (config, rows) in collected.items():
            space = _Space()
            space.__setstate__(([tuple(row) for row in rows], None if config is None else NamespaceView(*config)))
            state.append((tenant, namespace, space))
        self.__setstate__(state)

    # -- apply ------------------------------------------------------------------------------------

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply one kv/ns command in log time; raise Rejected having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        tenant, namespace, now = envelope.tenant, _namespace(envelope), context.log_time_ms
        if isinstance(command, KvPut):
            return self._put(tenant, namespace, command, envelope.agent_id, now)
        if isinstance(command, KvDelete):
            return self._delete(tenant, namespace, command, now)
        if isinstance(command, KvBatchPut):
            return self._batch_put(tenant, namespace, command, envelope.agent_id, now)
        if isinstance(command, KvClear):
            return self._clear(tenant, namespace, now)
        if isinstance(command, NamespaceConfig):
            return self._configure(tenant, namespace, command)
        if isinstance(command, KvExpire):
            return self._expire(tenant, namespace, command, now)
        raise Rejected("invalid", f"the records model does not apply {command.type}")

    def _put(self, tenant: str, namespace: str, command: KvPut, agent: str | None, now: int) -> dict[str, Any]:
        space = self._space(tenant, namespace)
        if command.if_version is not None:
            current = _live_version(space, command.key, now)
            if command.if_version != current:
                raise _version_conflict(command.key, command.if_version, current)
        if space is None:
            space = self._ensure_space(tenant, namespace)
        else:
            _check_value(space, command.value)
        return self._write_put(
            space, tenant, namespace, command.key, command.value, command.metadata, command.ttl_s, agent, now
        )

    def _delete(self, tenant: str, namespace: str, command: KvDelete, now: int) -> dict[str, Any]:
        if command.if_version is not None:
            current = self.current_version(tenant, namespace, command.key, now)
            if command.if_version != current:
                raise _version_conflict(command.key, command.if_version, current)
        return self.write_delete(tenant, namespace, command.key, now)

    def _batch_put(
        self, tenant: str, namespace: str, command: KvBatchPut, agent: str | None, now: int
    ) -> dict[str, Any]:
        space = self._space(tenant, namespace)
        for item in command.items:
            if item.if_version is not None:
                current = _live_version(space, item.key, now)
                if item.if_version != current:
                    raise _version_conflict(item.key, item.if_version, current)
            if space is not None:
                _check_value(space, item.value)
        space = self._ensure_space(tenant, namespace)
        results = [
            self._write_put(space, tenant, namespace, item.key, item.value, item.metadata, item.ttl_s, agent, now)
            for item in command.items
        ]
        return {"items": results}

    def _clear(self, tenant: str, namespace: str, now: int) -> dict[str, Any]:
        space = self._space(tenant, namespace)
        if space is None or not space.records:
            return {"deleted": 0}
        live = len(space.records) - space.expired_count(now)
        for expires, key in space.expiry:
            self._expiry.remove((expires, tenant, namespace, key))
        space.records, space.keys, space.expiry = {}, _SortedList(), _SortedList()
        self._drop_if_empty(tenant, namespace, space)
        return {"deleted": live}

    def _configure(self, tenant: str, namespace: str, command: NamespaceConfig) -> dict[str, Any]:
        if command.json_schema is not None:
            check_schema_definition(command.json_schema)
        result = {"namespace": namespace, "json_schema": command.json_schema, "default_ttl_s": command.default_ttl_s}
        if command.json_schema is None and command.default_ttl_s is None:
            space = self._space(tenant, namespace)
            if space is not None:
                space.config = None
                self._drop_if_empty(tenant, namespace, space)
            return result
        self._ensure_space(tenant, namespace).config = NamespaceView(command.json_schema, command.default_ttl_s)
        return result

    def _expire(self, tenant: str, namespace: str, command: KvExpire, now: int) -> dict[str, Any]:
        space = self._space(tenant, namespace)
        record = None if space is None else space.records.get(command.key)
        if space is None or record is None or record.version != command.expected_version:
            return {"key": command.key, "expired": False}
        if not _is_expired(record, now):
            return {"key": command.key, "expired": False}
        self._remove(tenant, namespace, space, record)
        return {"key": command.key, "expired": True, "version": record.version}

    # -- unconditional writes (shared with txn) ----------------------------------------------------

    def check_schema(self, tenant: str, namespace: str, value: Any) -> None:
        """Raise Rejected `schema_violation` if `value` breaks the namespace's JSON Schema."""
        space = self._space(tenant, namespace)
        if space is not None:
            _check_value(space, value)

    def write_put(
        self,
        tenant: str,
        namespace: str,
        key: str,
        value: Any,
        metadata: dict[str, Any] | None,
        ttl_s: int | None,
        agent_id: str | None,
        log_time_ms: int,
    ) -> dict[str, Any]:
        """Write `key` without version or schema checks; return the put result."""
        space = self._ensure_space(tenant, namespace)
        return self._write_put(space, tenant, namespace, key, value, metadata, ttl_s, agent_id, log_time_ms)

    def _write_put(
        self,
        space: _Space,
        tenant: str,
        namespace: str,
        key: str,
        value: Any,
        metadata: dict[str, Any] | None,
        ttl_s: int | None,
        agent_id: str | None,
        log_time_ms: int,
    ) -> dict[str, Any]:
        old = space.records.get(key)
        live = old if old is not None and not _is_expired(old, log_time_ms) else None
        expires = self._expires_at(space, ttl_s, log_time_ms)
        if live is None:
            fresh = {} if metadata is None else metadata
            record = RecordView(key, value, 1, fresh, log_time_ms, log_time_ms, agent_id, agent_id, expires)
        else:
            record = RecordView(
                key,
                value,
                live.version + 1,
                live.metadata if metadata is None else metadata,
                live.created_at_ms,
                log_time_ms,
                live.created_by,
                agent_id,
                expires,
            )
        if old is None:
            space.keys.add(key)
        elif old.expires_at_ms is not None:
            self._unindex_expiry(tenant, namespace, space, old.expires_at_ms, key)
        space.records[key] = record
        if expires is not None:
            space.expiry.add((expires, key))
            self._expiry.add((expires, tenant, namespace, key))
        return {"key": key, "version": record.version, "created": live is None, "expires_at_ms": expires}

    def write_delete(self, tenant: str, namespace: str, key: str, log_time_ms: int | None = None) -> dict[str, Any]:
        """Delete `key` without version checks; an expired record (at `log_time_ms`) counts as absent."""
        space = self._space(tenant, namespace)
        record = None if space is None else space.records.get(key)
        if space is None or record is None:
            return {"key": key, "deleted": False, "version": 0}
        self._remove(tenant, namespace, space, record)
        if log_time_ms is not None and _is_expired(record, log_time_ms):
            return {"key": key, "deleted": False, "version": 0}
        return {"key": key, "deleted": True, "version": record.version}

    # -- state helpers ----------------------------------------------------------------------------

    def _space(self, tenant: str, namespace: str) -> _Space | None:
        spaces = self._tenants.get(tenant)
        return None if spaces is None else spaces.get(namespace)

    def _ensure_space(self, tenant: str, namespace: str) -> _Space:
        spaces = self._tenants.setdefault(tenant, {})
        space = spaces.get(namespace)
        if space is None:
            space = spaces[namespace] = _Space()
        return space

    def _drop_if_empty(self, tenant: str, namespace: str, space: _Space) -> None:
        if space.records or space.config is not None:
            return
        spaces = self._tenants[tenant]
        del spaces[namespace]
        if not spaces:
            del self._tenants[tenant]

    @staticmethod
    def _expires_at(space: _Space, ttl_s: int | None, now: int) -> int | None:
        if ttl_s is None and space.config is not None:
            ttl_s = space.config.default_ttl_s
        return None if ttl_s is None else now + ttl_s * 1000

    def _unindex_expiry(self, tenant: str, namespace: str, space: _Space, expires: int, key: str) -> None:
        space.expiry.remove((expires, key))
        self._expiry.remove((expires, tenant, namespace, key))

    def _remove(self, tenant: str, namespace: str, space: _Space, record: RecordView) -> None:
        del space.records[record.key]
        space.keys.remove(record.key)
        if record.expires_at_ms is not None:
            self._unindex_expiry(tenant, namespace, space, record.expires_at_ms, record.key)
        self._drop_if_empty(tenant, namespace, space)

    # -- reads ------------------------------------------------------------------------------------

    def get(self, tenant: str, namespace: str, key: str, now_ms: int) -> RecordView | None:
        """The record at `key`, or None if absent or expired by the reader's clock `now_ms`."""
        spaces = self._tenants.get(tenant)
        if spaces is None:
            return None
        space = spaces.get(namespace)
        if space is None:
            return None
        record = space.records.get(key)
        if record is None:
            return None
        expires = record.expires_at_ms
        if expires is not None and expires <= now_ms:
            return None
        return record

    def get_many(self, tenant: str, namespace: str, keys: Iterable[str], now_ms: int) -> dict[str, RecordView]:
        """The live records among `keys`, by key, in the order asked (absent keys left out)."""
        found: dict[str, RecordView] = {}
        for key in keys:
            record = self.get(tenant, namespace, key, now_ms)
            if record is not None:
                found[key] = record
        return found

    def _scan(self, space: _Space, prefix: str, after: str | None, now_ms: int) -> Iterator[RecordView]:
        """Live records in key order: keys starting with `prefix`, strictly after `after`."""
        if after is not None and after >= prefix:
            keys = space.keys.scan(after, inclusive=False)
        else:
            keys = space.keys.scan(prefix, inclusive=True)
        records = space.records
        for key in keys:
            if not key.startswith(prefix):
                return
            record = records[key]
            if not _is_expired(record, now_ms):
                yield record

    def list_keys(
        self, tenant: str, namespace: str, prefix: str, after: str | None, limit: int, now_ms: int
    ) -> tuple[list[RecordView], str | None]:
        """A page of live records by key: `prefix`, strictly after `after`, at most `limit` (1..1000), next cursor.

        The cursor is the last key returned, or None when nothing follows.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise QueryError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        space = self._space(tenant, namespace)
        if space is None:
            return [], None
        page: list[RecordView] = []
        for record in self._scan(space, prefix, after, now_ms):
            if len(page) == limit:
                return page, page[-1].key
            page.append(record)
        return page, None

    def namespaces(self, tenant: str, now_ms: int) -> list[tuple[str, int]]:
        """`tenant`'s namespaces with live keys (at `now_ms`) or a config, sorted, with their live key counts."""
        listed = []
        for namespace, space in sorted(self._tenants.get(tenant, {}).items()):
            count = len(space.records) - space.expired_count(now_ms)
            if count or space.config is not None:
                listed.append((namespace, count))
        return listed

    def namespace_config(self, tenant: str, namespace: str) -> NamespaceView | None:
        """The namespace's schema and default TTL, or None if it has no config."""
        space = self._space(tenant, namespace)
        return None if space is None else space.config

    def query(self, tenant: str, namespace: str, query: Query, now_ms: int) -> dict[str, Any]:
        """Run a DSL query over the live records of a namespace: `{"items": [...], "next_cursor": str | None}`."""
        plan = QueryPlan(query)
        space = self._space(tenant, namespace)
        if space is None:
            return {"items": [], "next_cursor": None}
        items, cursor = plan.execute(self._scan(space, plan.key_prefix, plan.start_after, now_ms))
        return {"items": items, "next_cursor": cursor}

    def expired(self, now_ms: int, limit: int) -> list[tuple[str, str, str, int]]:
        """Up to `limit` records expired at `now_ms` as (tenant, namespace, key, version), for the sweeper.

        Ordered by (expires_at_ms, tenant, namespace, key); the sweeper purges each with `kv.expire`.
        """
        found: list[tuple[str, str, str, int]] = []
        for expires, tenant, namespace, key in self._expiry:
            if expires > now_ms or len(found) >= limit:
                break
            found.append((tenant, namespace, key, self._tenants[tenant][namespace].records[key].version))
        return found

    def current_version(self, tenant: str, namespace: str, key: str, log_time_ms: int) -> int:
        """The version of `key` for a write at `log_time_ms`: 0 if absent or expired by then."""
        record = self.get(tenant, namespace, key, log_time_ms)
        return 0 if record is None else record.version

    # -- digest -----------------------------------------------------------------------------------

    def digest(self) -> str:
        """SHA-256 over every namespace config and record, in (tenant, namespace, key) order.

        Each line is canonical JSON (orjson with sorted keys: the bytes of `commands.canonical_json`,
        whose finiteness check is skipped because stored values were validated on decode).
        """
        hasher = hashlib.sha256(b"records/1\n")
        dumps, sort_keys = orjson.dumps, orjson.OPT_SORT_KEYS
        for tenant in sorted(self._tenants):
            spaces = self._tenants[tenant]
            for namespace in sorted(spaces):
                space = spaces[namespace]
                if space.config is not None:
                    config = ["config", tenant, namespace, space.config.json_schema, space.config.default_ttl_s]
                    hasher.update(dumps(config, option=sort_keys) + b"\n")
                prefix = dumps(["record", tenant, namespace])[:-1] + b","
                for key in space.keys:
                    hasher.update(prefix + dumps(space.records[key].row(), option=sort_keys) + b"]\n")
        return hasher.hexdigest()


def _namespace(envelope: LoggedEnvelope) -> str:
    if envelope.namespace is None:
        raise Rejected("invalid", f"{envelope.type} needs a namespace")
    return envelope.namespace
