"""The apply path's decoder: typed msgspec structs decoded straight from a record's bytes.

Records were validated by the producer before append (`commands.encoding`), so the apply path does
not run pydantic again: `decode_for_apply(record)` parses the value once with msgspec into frozen
structs (`commands.structs`) that mirror the command models field for field (same names, same
`type` tags, the same limits as `msgspec.Meta` constraints checked in C). What msgspec cannot express is checked in
`__post_init__` hooks: key byte length, the envelope's scope rules, unique batch keys, one condition
per txn precondition, no txn writing one record twice, embeddings. JSON values (`value`, `payload`,
`metadata`, ...) are taken as raw bytes and parsed by orjson, exactly as the pydantic path parses them.

The pydantic models stay the reference: any record the structs refuse gets a second opinion from
`commands.encoding.decode` (which raises `CommandError`, or returns a pydantic `Envelope` for a
command type this module does not mirror). So the decoder refuses exactly what the pydantic path
refuses, and a golden test checks that it accepts what the producer writes, equal field by field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Final, TypeAlias

import msgspec

from commands import limits
from commands.encoding import decode, record_version
from commands.envelope import Envelope
from commands.fields import Scope
from commands.structs import (
    WIRE_TYPES,
    CollectionCreate,
    EventAppend,
    KvBatchPut,
    KvClear,
    KvDelete,
    KvExpire,
    KvItem,
    KvPut,
    LockAcquire,
    LockRelease,
    LockRenew,
    NamespaceConfig,
    RunBegin,
    RunEnd,
    StateCas,
    TraceRecord,
    Txn,
    TxnKvDelete,
    TxnKvPut,
    TxnPrecondition,
    TxnRead,
    TxnStateSet,
    VectorDelete,
    VectorUpsert,
    WireCommand,
    check_command_id,
    check_id,
    check_namespace,
)
from eventlog.records import Record

__all__ = [
    "PYDANTIC_DECODED",
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
    "LoggedEnvelope",
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
    "WireEnvelope",
    "decode_for_apply",
    "decode_wire",
]

Id = Annotated[str, msgspec.Meta(max_length=limits.MAX_ID_BYTES)]
Namespace = Annotated[str, msgspec.Meta(max_length=limits.MAX_NAMESPACE_BYTES)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=limits.MAX_INT)]


class WireEnvelope(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A logged envelope (see `commands.envelope.Envelope`), decoded by msgspec."""

    command_id: Id
    tenant: Id
    run_id: Id
    command: WireCommand
    agent_id: Id | None = None
    tool_id: Id | None = None
    namespace: Namespace | None = None
    issued_at: NonNegative | None = None

    def __post_init__(self) -> None:
        check_command_id(self.command_id)
        check_id(self.tenant)
        check_id(self.run_id)
        check_id(self.agent_id)
        check_id(self.tool_id)
        check_namespace(self.namespace)
        command = self.command
        if command.scope == "namespace":
            if self.namespace is None:
                raise ValueError(f"{command.type} needs a namespace")
            command.check_scope(self.namespace)
        elif self.namespace is not None:
            raise ValueError(f"{command.type} is run-scoped and takes no namespace")

    @property
    def type(self) -> str:
        """The command's `type` tag, e.g. `kv.put`."""
        return self.command.type

    @property
    def scope(self) -> Scope:
        """`namespace` or `run`: which partition key routes this command."""
        return self.command.scope


#: Command types without a struct yet: the pydantic path decodes them on apply (barrier changes are
#: rare; a memory command's cost is its embedding and text; the coordination commands are small).
PYDANTIC_DECODED: Final[frozenset[str]] = frozenset(
    {
        *("barrier.set", "memory.add", "memory.update", "memory.invalidate", "memory.merge", "memory.index"),
        *("task.enqueue", "task.claim", "task.complete", "task.fail"),
        *("channel.create", "channel.subscribe", "channel.share", "agent.register", "agent.heartbeat"),
        *("proposal.create", "proposal.vote"),
    }
)

#: What the apply path hands to read models: the struct, or (for a type not mirrored here) the pydantic envelope.
LoggedEnvelope: TypeAlias = WireEnvelope | Envelope

_DECODER: Final = msgspec.json.Decoder(WireEnvelope)
_decode_struct: Final[Callable[[bytes], WireEnvelope]] = _DECODER.decode


def decode_wire(value: bytes, version: int = limits.SCHEMA_VERSION) -> LoggedEnvelope:
    """The envelope in `value`: msgspec structs, else the pydantic path's answer (an Envelope or CommandError)."""
    if version == limits.SCHEMA_VERSION and len(value) <= limits.MAX_COMMAND_BYTES:
        try:
            return _decode_struct(value)
        except (msgspec.ValidationError, msgspec.DecodeError, ValueError):
            pass
    return decode(value, version)


def decode_for_apply(record: Record) -> LoggedEnvelope:
    """The envelope a log record carries, for the apply path (schema version from its `v` header)."""
    return decode_wire(record.value, record_version(record.headers))
