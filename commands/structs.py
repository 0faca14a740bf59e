"""The msgspec structs of the apply path: every command, field for field as its pydantic model.

Frozen structs, unknown fields refused, the `type` tag as in the pydantic union; the limits of
`commands.limits` as `msgspec.Meta` constraints, checked in C, and in `__post_init__` what msgspec
cannot express (key byte length and characters, id syntax through a memo, unique batch keys, one
condition per precondition, no txn writing one record twice, embeddings). JSON values arrive as raw
JSON text and are parsed by orjson, as the pydantic path parses them. `commands.wire` decodes
records into them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final, Literal, TypeAlias, cast

import msgspec
import orjson
from msgspec.structs import force_setattr

from commands import limits
from commands.errors import CommandError
from commands.fields import Scope
from commands.vectors import embedding_bytes

__all__ = [
    "WIRE_TYPES",
    "CollectionCreate",
    "EventAppend",
    "KvBatchPut",
    "KvClear",
    "KvDelete",
    "KvExpire",
    "KvItem",
    "KvPut",
    "LockAcquire",
    "LockRelease",
    "LockRenew",
    "NamespaceConfig",
    "RunBegin",
    "RunEnd",
    "StateCas",
    "TraceRecord",
    "Txn",
    "TxnKvDelete",
    "TxnKvPut",
    "TxnPrecondition",
    "TxnRead",
    "TxnStateSet",
    "VectorDelete",
    "VectorUpsert",
    "WireCommand",
    "check_id",
    "check_namespace",
    "check_command_id",
]


def _name_pattern(alphabet: str) -> str:
    """`[alphabet]+` but not `.` or `..` (as `commands.fields`, with `\\Z`: Python's `$` allows a final newline)."""
    no_dot = alphabet.replace(".", "")
    return rf"^(?:[{no_dot}][{alphabet}]*|\.[{no_dot}][{alphabet}]*|\.\.[{alphabet}]+)\Z"


#: An id; its syntax is checked by `_check_id` (a memo of names seen: ids repeat, a regex call does not pay).
Id = Annotated[str, msgspec.Meta(max_length=limits.MAX_ID_BYTES)]
#: A namespace; its syntax is checked by `_check_namespace`.
Namespace = Annotated[str, msgspec.Meta(max_length=limits.MAX_NAMESPACE_BYTES)]
#: A key: non-empty; no control characters and the UTF-8 byte limit are checked by `_check_key`.
Key = Annotated[str, msgspec.Meta(min_length=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=limits.MAX_INT)]
Positive = Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_INT)]
TtlSeconds = Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_TTL_S)]
Dimension = Annotated[int, msgspec.Meta(ge=1, le=limits.MAX_VECTOR_DIMENSION)]
_Items = msgspec.Meta(max_length=limits.MAX_BATCH_COMMANDS)

if TYPE_CHECKING:
    #: A JSON value: parsed in `__post_init__`, so readers see the Python value.
    JsonField: TypeAlias = Any
    #: An optional JSON object (metadata, schemas): parsed in `__post_init__`.
    JsonObjectField: TypeAlias = dict[str, Any] | None
    #: An embedding: float32 LE bytes once `__post_init__` has checked it.
    EmbeddingField: TypeAlias = bytes
else:  # msgspec reads these: the raw JSON text of the value, handed to orjson as the pydantic path does
    JsonField = msgspec.Raw
    JsonObjectField = msgspec.Raw
    EmbeddingField = bytes | list[Any]

#: A key of at most this many characters is within `MAX_KEY_BYTES` whatever they are (≤ 4 bytes each).
_SHORT_KEY: Final = limits.MAX_KEY_BYTES // 4


_ID: Final = re.compile(_name_pattern("A-Za-z0-9._:@-"))
_NAMESPACE: Final = re.compile(_name_pattern("A-Za-z0-9._:-"))
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f]")
#: Names (ids and namespaces) already found valid; cleared when full. Only a memo of a pure check.
_VALID_NAMES: set[str] = set()
#: Namespaces already found valid (a separate memo: `a@b` is an id but not a namespace).
_VALID_SPACES: set[str] = set()
_VALID_NAMES_MAX: Final = 65_536


def _check_key(key: str) -> None:
    # Control characters are not printable, so a printable key needs no regex.
    if not key.isprintable() and _CONTROL.search(key):
        raise ValueError(f"key {key!r} contains a control character")
    if len(key) > _SHORT_KEY and len(key.encode("utf-8")) > limits.MAX_KEY_BYTES:
        raise ValueError(f"key longer than {limits.MAX_KEY_BYTES} bytes")


def _remember(name: str) -> None:
    if len(_VALID_NAMES) >= _VALID_NAMES_MAX:
        _VALID_NAMES.clear()
    _VALID_NAMES.add(name)


def check_id(value: str | None) -> None:
    """Raise ValueError unless `value` is None or a valid id (memoized: ids repeat)."""
    if value is None or value in _VALID_NAMES:
        return
    if not _ID.match(value):
        raise ValueError(f"id {value!r} must match [A-Za-z0-9._:@-]+ and not be '.' or '..'")
    _remember(value)


def check_command_id(value: str) -> None:
    """Raise ValueError unless `value` is a valid id (unique per command: no memo)."""
    if not _ID.match(value):
        raise ValueError(f"command_id {value!r} must match [A-Za-z0-9._:@-]+ and not be '.' or '..'")


def check_namespace(value: str | None) -> None:
    """Raise ValueError unless `value` is None or a valid namespace (memoized)."""
    if value is None or value in _VALID_SPACES:
        return
    if not _NAMESPACE.match(value):
        raise ValueError(f"namespace {value!r} must match [A-Za-z0-9._:-]+ and not be '.' or '..'")
    if len(_VALID_SPACES) >= _VALID_NAMES_MAX:
        _VALID_SPACES.clear()
    _VALID_SPACES.add(value)


def _json(raw: Any) -> Any:
    """A JSON value parsed as the pydantic path parses it (orjson)."""
    return orjson.loads(memoryview(raw))


def _json_object(raw: Any) -> dict[str, Any] | None:
    """An optional JSON object (absent or null: None), parsed as the pydantic path parses it."""
    if raw is None:
        return None
    value = orjson.loads(memoryview(raw))
    if value is not None and type(value) is not dict:
        raise ValueError("metadata must be a JSON object")
    return cast("dict[str, Any] | None", value)


class _Part(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base of every struct: frozen, unknown fields refused."""


class _Command(_Part, frozen=True, forbid_unknown_fields=True, tag_field="type"):
    """Base of the top-level commands, tagged by `type` like the pydantic union."""

    scope: ClassVar[Scope] = "namespace"
    type: ClassVar[str]

    def namespaces(self, default: str) -> frozenset[str]:
        """Every namespace this command touches when its envelope's namespace is `default`."""
        return frozenset((default,))

    def check_scope(self, namespace: str | None) -> None:
        """Raise ValueError if the command is inconsistent with its envelope's namespace."""


# -- kv -----------------------------------------------------------------------------------------------


class KvPut(_Command, frozen=True, forbid_unknown_fields=True, tag="kv.put"):
    """`kv.put` (see `commands.kv.KvPut`)."""

    type: ClassVar[str] = "kv.put"
    key: Key
    value: JsonField
    metadata: JsonObjectField = None
    ttl_s: TtlSeconds | None = None
    if_version: NonNegative | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        force_setattr(self, "value", _json(self.value))
        force_setattr(self, "metadata", _json_object(self.metadata))


class KvDelete(_Command, frozen=True, forbid_unknown_fields=True, tag="kv.delete"):
    """`kv.delete`."""

    type: ClassVar[str] = "kv.delete"
    key: Key
    if_version: NonNegative | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)


class KvItem(_Part, frozen=True, forbid_unknown_fields=True):
    """One item of a `kv.batch_put`."""

    key: Key
    value: JsonField
    metadata: JsonObjectField = None
    ttl_s: TtlSeconds | None = None
    if_version: NonNegative | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        force_setattr(self, "value", _json(self.value))
        force_setattr(self, "metadata", _json_object(self.metadata))


class KvBatchPut(_Command, frozen=True, forbid_unknown_fields=True, tag="kv.batch_put"):
    """`kv.batch_put`: 1..1,000 items, keys unique."""

    type: ClassVar[str] = "kv.batch_put"
    items: Annotated[list[KvItem], msgspec.Meta(min_length=1, max_length=limits.MAX_BATCH_COMMANDS)]

    def __post_init__(self) -> None:
        if len({item.key for item in self.items}) != len(self.items):
            raise ValueError("a key appears twice in one batch")


class KvClear(_Command, frozen=True, forbid_unknown_fields=True, tag="kv.clear"):
    """`kv.clear`."""

    type: ClassVar[str] = "kv.clear"


class NamespaceConfig(_Command, frozen=True, forbid_unknown_fields=True, tag="ns.config"):
    """`ns.config`."""

    type: ClassVar[str] = "ns.config"
    json_schema: JsonObjectField = None
    default_ttl_s: TtlSeconds | None = None

    def __post_init__(self) -> None:
        force_setattr(self, "json_schema", _json_object(self.json_schema))


class KvExpire(_Command, frozen=True, forbid_unknown_fields=True, tag="kv.expire"):
    """`kv.expire` (internal, from the TTL sweeper)."""

    type: ClassVar[str] = "kv.expire"
    key: Key
    expected_version: Positive

    def __post_init__(self) -> None:
        _check_key(self.key)


# -- state and locks ------------------------------------------------------------------------------------


class StateCas(_Command, frozen=True, forbid_unknown_fields=True, tag="state.cas"):
    """`state.cas`."""

    type: ClassVar[str] = "state.cas"
    name: Key
    expected_version: NonNegative
    value: JsonField

    def __post_init__(self) -> None:
        _check_key(self.name)
        force_setattr(self, "value", _json(self.value))


class LockAcquire(_Command, frozen=True, forbid_unknown_fields=True, tag="lock.acquire"):
    """`lock.acquire`."""

    type: ClassVar[str] = "lock.acquire"
    name: Key
    holder: Id
    ttl_s: TtlSeconds

    def __post_init__(self) -> None:
        _check_key(self.name)
        check_id(self.holder)


class LockRenew(_Command, frozen=True, forbid_unknown_fields=True, tag="lock.renew"):
    """`lock.renew`."""

    type: ClassVar[str] = "lock.renew"
    name: Key
    holder: Id
    fencing_token: Positive
    ttl_s: TtlSeconds

    def __post_init__(self) -> None:
        _check_key(self.name)
        check_id(self.holder)


class LockRelease(_Command, frozen=True, forbid_unknown_fields=True, tag="lock.release"):
    """`lock.release`."""

    type: ClassVar[str] = "lock.release"
    name: Key
    holder: Id
    fencing_token: Positive

    def __post_init__(self) -> None:
        _check_key(self.name)
        check_id(self.holder)


# -- txn ------------------------------------------------------------------------------------------------

ItemKind = Literal["kv", "state"]


class TxnRead(_Part, frozen=True, forbid_unknown_fields=True):
    """A txn read: `key` was at `version`."""

    key: Key
    version: NonNegative
    kind: ItemKind = "kv"
    namespace: Namespace | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        check_namespace(self.namespace)


class TxnPrecondition(_Part, frozen=True, forbid_unknown_fields=True):
    """A txn precondition: exactly one of `exists` and `version`."""

    key: Key
    kind: ItemKind = "kv"
    namespace: Namespace | None = None
    exists: bool | None = None
    version: NonNegative | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        check_namespace(self.namespace)
        if (self.exists is None) == (self.version is None):
            raise ValueError("a precondition names exactly one of `exists` and `version`")


class TxnKvPut(_Part, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="kv.put"):
    """A txn write: put a kv value."""

    op: ClassVar[str] = "kv.put"
    key: Key
    value: JsonField
    namespace: Namespace | None = None
    metadata: JsonObjectField = None
    ttl_s: TtlSeconds | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        check_namespace(self.namespace)
        force_setattr(self, "value", _json(self.value))
        force_setattr(self, "metadata", _json_object(self.metadata))


class TxnKvDelete(_Part, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="kv.delete"):
    """A txn write: delete a kv key."""

    op: ClassVar[str] = "kv.delete"
    key: Key
    namespace: Namespace | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        check_namespace(self.namespace)


class TxnStateSet(_Part, frozen=True, forbid_unknown_fields=True, tag_field="op", tag="state.set"):
    """A txn write: set a state record's value."""

    op: ClassVar[str] = "state.set"
    key: Key
    value: JsonField
    namespace: Namespace | None = None

    def __post_init__(self) -> None:
        _check_key(self.key)
        check_namespace(self.namespace)
        force_setattr(self, "value", _json(self.value))


TxnWrite: TypeAlias = TxnKvPut | TxnKvDelete | TxnStateSet


class Txn(_Command, frozen=True, forbid_unknown_fields=True, tag="txn"):
    """`txn`: reads, writes and preconditions, at least one of them."""

    type: ClassVar[str] = "txn"
    reads: Annotated[list[TxnRead], _Items] = []
    writes: Annotated[list[TxnWrite], _Items] = []
    preconditions: Annotated[list[TxnPrecondition], _Items] = []

    def __post_init__(self) -> None:
        if not (self.reads or self.writes or self.preconditions):
            raise ValueError("a txn needs at least one read, write or precondition")

    def namespaces(self, default: str) -> frozenset[str]:
        """Every namespace the txn touches, items without one counting as `default`."""
        found = {default}
        for item in (*self.reads, *self.writes, *self.preconditions):
            found.add(item.namespace or default)
        return frozenset(found)

    def check_scope(self, namespace: str | None) -> None:
        """Refuse two writes to the same record (kind, namespace, key) once namespaces are resolved."""
        seen: set[tuple[str, str | None, str]] = set()
        for write in self.writes:
            target = ("state" if type(write) is TxnStateSet else "kv", write.namespace or namespace, write.key)
            if target in seen:
                raise ValueError(f"txn writes {target[0]} {target[2]!r} of {target[1]!r} twice")
            seen.add(target)


# -- runs, events, traces --------------------------------------------------------------------------------


class RunBegin(_Command, frozen=True, forbid_unknown_fields=True, tag="run.begin"):
    """`run.begin`."""

    scope: ClassVar[Scope] = "run"
    type: ClassVar[str] = "run.begin"
    name: Key | None = None
    metadata: JsonObjectField = None
    parent_run_id: Id | None = None

    def __post_init__(self) -> None:
        if self.name is not None:
            _check_key(self.name)
        check_id(self.parent_run_id)
        force_setattr(self, "metadata", _json_object(self.metadata))


class RunEnd(_Command, frozen=True, forbid_unknown_fields=True, tag="run.end"):
    """`run.end`."""

    scope: ClassVar[Scope] = "run"
    type: ClassVar[str] = "run.end"
    status: Literal["succeeded", "failed", "cancelled"]
    result: JsonField = None

    def __post_init__(self) -> None:
        if self.result is not None:
            force_setattr(self, "result", _json(self.result))


class EventAppend(_Command, frozen=True, forbid_unknown_fields=True, tag="event.append"):
    """`event.append`."""

    scope: ClassVar[Scope] = "run"
    type: ClassVar[str] = "event.append"
    event_type: Id
    payload: JsonField = None
    thread_id: Id | None = None
    expected_seq: NonNegative | None = None

    def __post_init__(self) -> None:
        check_id(self.event_type)
        check_id(self.thread_id)
        if self.payload is not None:
            force_setattr(self, "payload", _json(self.payload))


class TraceRecord(_Command, frozen=True, forbid_unknown_fields=True, tag="trace.record"):
    """`trace.record`."""

    scope: ClassVar[Scope] = "run"
    type: ClassVar[str] = "trace.record"
    trace_id: Id
    kind: Literal["tool_call", "model_input", "model_output", "citation", "decision", "confidence", "assumption"]
    data: JsonField = None
    event_id: Id | None = None
    seq: Positive | None = None
    parent_id: Id | None = None

    def __post_init__(self) -> None:
        check_id(self.trace_id)
        check_id(self.event_id)
        check_id(self.parent_id)
        if self.data is not None:
            force_setattr(self, "data", _json(self.data))


# -- vectors ------------------------------------------------------------------------------------------------


class CollectionCreate(_Command, frozen=True, forbid_unknown_fields=True, tag="collection.create"):
    """`collection.create`."""

    type: ClassVar[str] = "collection.create"
    name: Id
    dimension: Dimension
    metric: Literal["cosine", "dot", "euclidean"] = "cosine"

    def __post_init__(self) -> None:
        check_id(self.name)


class VectorUpsert(_Command, frozen=True, forbid_unknown_fields=True, tag="vector.upsert"):
    """`vector.upsert`: the embedding is float32 LE bytes after decoding (base64 or a list in JSON)."""

    type: ClassVar[str] = "vector.upsert"
    collection: Id
    id: Key
    embedding: EmbeddingField
    metadata: JsonObjectField = None

    def __post_init__(self) -> None:
        check_id(self.collection)
        _check_key(self.id)
        try:
            force_setattr(self, "embedding", embedding_bytes(self.embedding))
        except CommandError as error:
            raise ValueError(error.detail) from None
        force_setattr(self, "metadata", _json_object(self.metadata))

    @property
    def dimension(self) -> int:
        """The number of float32 values in the embedding."""
        return len(self.embedding) // 4

    def vector(self) -> Any:
        """The embedding as a read-only float32 numpy array (a view of the bytes, no copy)."""
        import numpy as np

        return np.frombuffer(self.embedding, dtype="<f4")


class VectorDelete(_Command, frozen=True, forbid_unknown_fields=True, tag="vector.delete"):
    """`vector.delete`."""

    type: ClassVar[str] = "vector.delete"
    collection: Id
    id: Key

    def __post_init__(self) -> None:
        check_id(self.collection)
        _check_key(self.id)


WireCommand: TypeAlias = (
    KvPut
    | KvDelete
    | KvBatchPut
    | KvClear
    | NamespaceConfig
    | KvExpire
    | StateCas
    | LockAcquire
    | LockRenew
    | LockRelease
    | Txn
    | RunBegin
    | RunEnd
    | EventAppend
    | TraceRecord
    | CollectionCreate
    | VectorUpsert
    | VectorDelete
)

#: The command types this module mirrors (any other is decoded by the pydantic path).
WIRE_TYPES: Final[frozenset[str]] = frozenset(cls.type for cls in WireCommand.__args__)
