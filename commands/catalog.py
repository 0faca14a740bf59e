"""The command catalog: the discriminated unions on `type`, and lookup by type name."""

from __future__ import annotations

from typing import Annotated, Any, Final

from pydantic import Field, TypeAdapter, ValidationError

from commands.barriers import BarrierSet
from commands.errors import CommandError, from_validation_errors
from commands.fields import ScopedCommand
from commands.hive import (
    AgentHeartbeat,
    AgentRegister,
    ChannelCreate,
    ChannelShare,
    ChannelSubscribe,
    ProposalCreate,
    ProposalVote,
)
from commands.kv import KvBatchPut, KvClear, KvDelete, KvExpire, KvPut, NamespaceConfig
from commands.memory import MemoryAdd, MemoryIndex, MemoryInvalidate, MemoryMerge, MemoryUpdate
from commands.runs import EventAppend, RunBegin, RunEnd, TraceRecord
from commands.state import LockAcquire, LockRelease, LockRenew, StateCas
from commands.tasks import TaskClaim, TaskComplete, TaskEnqueue, TaskFail
from commands.txn import Txn
from commands.vectors import CollectionCreate, VectorDelete, VectorUpsert

__all__ = [
    "CLIENT_COMMAND_TYPES",
    "COMMAND_TYPES",
    "ClientCommand",
    "Command",
    "command_class",
    "parse_command",
]

_ClientUnion = (
    KvPut
    | KvDelete
    | KvBatchPut
    | KvClear
    | NamespaceConfig
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
    | MemoryAdd
    | MemoryUpdate
    | MemoryInvalidate
    | MemoryMerge
    | MemoryIndex
    | TaskEnqueue
    | TaskClaim
    | TaskComplete
    | TaskFail
    | ChannelCreate
    | ChannelSubscribe
    | ChannelShare
    | AgentRegister
    | AgentHeartbeat
    | ProposalCreate
    | ProposalVote
)

#: Any command, tagged by `type` (what the log carries and projections decode).
Command = Annotated[_ClientUnion | KvExpire | BarrierSet, Field(discriminator="type")]
#: A command a client may send: every command except the internal ones (`kv.expire`, `barrier.set`).
ClientCommand = Annotated[_ClientUnion, Field(discriminator="type")]


def _type_name(cls: type[ScopedCommand]) -> str:
    default = cls.model_fields["type"].default
    assert isinstance(default, str)
    return default


_CLASSES: tuple[type[ScopedCommand], ...] = (
    KvPut,
    KvDelete,
    KvBatchPut,
    KvClear,
    NamespaceConfig,
    KvExpire,
    BarrierSet,
    StateCas,
    LockAcquire,
    LockRenew,
    LockRelease,
    Txn,
    RunBegin,
    RunEnd,
    EventAppend,
    TraceRecord,
    CollectionCreate,
    VectorUpsert,
    VectorDelete,
    MemoryAdd,
    MemoryUpdate,
    MemoryInvalidate,
    MemoryMerge,
    MemoryIndex,
    TaskEnqueue,
    TaskClaim,
    TaskComplete,
    TaskFail,
    ChannelCreate,
    ChannelSubscribe,
    ChannelShare,
    AgentRegister,
    AgentHeartbeat,
    ProposalCreate,
    ProposalVote,
)

#: Every command class by its `type` name.
COMMAND_TYPES: Final[dict[str, type[ScopedCommand]]] = {
    _type_name(cls): cls for cls in sorted(_CLASSES, key=_type_name)
}
#: The `type` names a client may send, sorted.
CLIENT_COMMAND_TYPES: Final[tuple[str, ...]] = tuple(name for name, cls in COMMAND_TYPES.items() if not cls.internal)

_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)


def command_class(type_name: str) -> type[ScopedCommand]:
    """The command class of a `type` name, or CommandError `unsupported`."""
    try:
        return COMMAND_TYPES[type_name]
    except KeyError:
        raise CommandError("unsupported", f"unknown command type {type_name!r}") from None


def parse_command(data: Any) -> Command:
    """Validate a command from Python data (a dict with `type`); failures raise CommandError."""
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        raise from_validation_errors(exc.errors()) from None
