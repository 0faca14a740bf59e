"""agentlog commands layer: the command language (envelope, typed commands, encoding, routing, limits, producer).

Write side: build a command model (e.g. `KvPut`), `stamp` it for a `Caller` (or parse a
`CommandRequest` body and `.stamp(caller)`), then `await CommandProducer(log, topic).submit(env)`.
Read side: `decode_record(record)` gives the `Envelope`; `envelope.command` is the typed command,
dispatch on `envelope.type` or `isinstance`.
"""

from commands.barriers import BarrierSet
from commands.catalog import (
    CLIENT_COMMAND_TYPES,
    COMMAND_TYPES,
    ClientCommand,
    Command,
    command_class,
    parse_command,
)
from commands.encoding import (
    HEADER_TYPE,
    HEADER_VERSION,
    canonical_json,
    command_fingerprint,
    decode,
    decode_fingerprinted,
    decode_record,
    encode,
    encode_message,
    loads_json,
    record_version,
)
from commands.envelope import Caller, CommandRequest, Envelope, stamp
from commands.errors import CommandError, from_validation_errors
from commands.fields import CommandModel, ScopedCommand, check_json_value
from commands.ids import new_id, uuid7, uuid7_timestamp_ms
from commands.kv import KvBatchPut, KvClear, KvDelete, KvExpire, KvItem, KvPut, NamespaceConfig
from commands.limits import (
    DEFAULT_NAMESPACE,
    DEFAULT_RUN_ID,
    MAX_BATCH_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_ID_BYTES,
    MAX_K,
    MAX_KEY_BYTES,
    MAX_NAMESPACE_BYTES,
    MAX_VECTOR_DIMENSION,
    SCHEMA_VERSION,
)
from commands.memory import MemoryAdd, MemoryIndex, MemoryInvalidate, MemoryMerge, MemoryUpdate
from commands.producer import CommandProducer, Submitted
from commands.routing import check_single_partition, partition_key, partition_of
from commands.runs import EventAppend, RunBegin, RunEnd, TraceRecord
from commands.state import LockAcquire, LockRelease, LockRenew, StateCas
from commands.txn import Txn, TxnKvDelete, TxnKvPut, TxnPrecondition, TxnRead, TxnStateSet, TxnWrite
from commands.vectors import CollectionCreate, VectorDelete, VectorUpsert, embedding_bytes

__all__ = [
    "BarrierSet",
    "CLIENT_COMMAND_TYPES",
    "COMMAND_TYPES",
    "DEFAULT_NAMESPACE",
    "DEFAULT_RUN_ID",
    "HEADER_TYPE",
    "HEADER_VERSION",
    "MAX_BATCH_COMMANDS",
    "MAX_COMMAND_BYTES",
    "MAX_ID_BYTES",
    "MAX_K",
    "MAX_KEY_BYTES",
    "MAX_NAMESPACE_BYTES",
    "MAX_VECTOR_DIMENSION",
    "SCHEMA_VERSION",
    "Caller",
    "ClientCommand",
    "CollectionCreate",
    "Command",
    "CommandError",
    "CommandModel",
    "CommandProducer",
    "CommandRequest",
    "Envelope",
    "EventAppend",
    "KvBatchPut",
    "KvClear",
    "MemoryAdd",
    "MemoryIndex",
    "MemoryInvalidate",
    "MemoryMerge",
    "MemoryUpdate",
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
    "ScopedCommand",
    "StateCas",
    "Submitted",
    "TraceRecord",
    "Txn",
    "TxnKvDelete",
    "TxnKvPut",
    "TxnPrecondition",
    "TxnRead",
    "TxnStateSet",
    "TxnWrite",
    "VectorDelete",
    "VectorUpsert",
    "canonical_json",
    "command_fingerprint",
    "check_json_value",
    "check_single_partition",
    "command_class",
    "decode",
    "decode_fingerprinted",
    "decode_record",
    "embedding_bytes",
    "encode",
    "encode_message",
    "from_validation_errors",
    "loads_json",
    "new_id",
    "parse_command",
    "partition_key",
    "partition_of",
    "record_version",
    "stamp",
    "uuid7",
    "uuid7_timestamp_ms",
]
