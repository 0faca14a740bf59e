"""Canonical JSON for hashing, and the versioned record encoding of command envelopes.

`canonical_json` is the one byte form of a JSON value that projections hash: keys sorted, UTF-8,
no insignificant whitespace, no NaN or Infinity.

The record of a command (`encode_message`):

- value: `encode(envelope)`, the canonical JSON (sorted keys, no whitespace) of the envelope with
  optional fields left out while None (required ones, like a put's `value`, stay even if null), e.g.
  `{"command":{"key":"k","type":"kv.put","value":1},"command_id":"0190...","namespace":"default",
  "run_id":"default","tenant":"acme"}`; embeddings are base64 of their float32 LE bytes. At most
  `MAX_COMMAND_BYTES`.
- key: the partition key (`tenant/namespace` or `tenant/run_id`).
- headers: `v` = schema version (ASCII decimal, now `1`) and `type` = the command type, so
  consumers can skip records without decoding them.

`decode_record(record)` reads the `v` header and decodes the value, validating it as on write.

`command_fingerprint(envelope)` names what a command does, for idempotency: a hash of the canonical
JSON of its type, namespace, run and payload. Who sent it (agent, tool), when (`issued_at`) and its
`command_id` are left out, so a retry has the fingerprint of its first try, and the same key on a
different command does not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, Final, Protocol

import orjson
from pydantic import ValidationError

from commands.envelope import Envelope
from commands.errors import CommandError, from_validation_errors
from commands.fields import TRUSTED_JSON
from commands.limits import MAX_COMMAND_BYTES, SCHEMA_VERSION
from commands.routing import partition_key
from eventlog.records import Header, Message, Record

__all__ = [
    "HEADER_TYPE",
    "HEADER_VERSION",
    "Fingerprinted",
    "canonical_json",
    "command_fingerprint",
    "decode",
    "decode_fingerprinted",
    "decode_record",
    "encode",
    "encode_message",
    "value_fingerprint",
    "loads_json",
    "record_version",
]

#: Record header holding the schema version of the value.
HEADER_VERSION: Final = "v"
#: Record header holding the command type.
HEADER_TYPE: Final = "type"
_VERSION_BYTES: Final = str(SCHEMA_VERSION).encode()
_TRUSTED: Final = {TRUSTED_JSON: True}

_CANONICAL_OPTS = orjson.OPT_SORT_KEYS


def _check_finite(obj: Any) -> None:
    """Raise CommandError when a float in `obj` is NaN or infinite (orjson would write them as null)."""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                raise CommandError("invalid", f"non-finite number {item!r} is not JSON")
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def canonical_json(obj: Any) -> bytes:
    """The canonical bytes of a JSON value: sorted keys, UTF-8, no whitespace; NaN/Infinity refused."""
    _check_finite(obj)
    try:
        return orjson.dumps(obj, option=_CANONICAL_OPTS)
    except TypeError as exc:  # orjson.JSONEncodeError subclasses TypeError
        raise CommandError("invalid", f"not canonical JSON: {exc}") from None


def loads_json(data: bytes | str) -> Any:
    """Parse JSON bytes (orjson); malformed input raises CommandError `malformed`."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise CommandError("malformed", f"malformed JSON: {exc}") from None


def encode(envelope: Envelope) -> bytes:
    """The record value of `envelope`: canonical JSON, optional None fields omitted; `too_large` over 1 MiB."""
    try:
        data = orjson.dumps(envelope.model_dump(mode="json"), option=_CANONICAL_OPTS)
    except TypeError as exc:
        raise CommandError("invalid", f"command does not encode as JSON: {exc}") from None
    if len(data) > MAX_COMMAND_BYTES:
        raise CommandError("too_large", f"encoded command of {len(data)} bytes exceeds {MAX_COMMAND_BYTES}")
    return data


class Fingerprinted(Protocol):
    """What a fingerprint covers besides the payload: a pydantic envelope or a decoded struct."""

    @property
    def type(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def run_id(self) -> str: ...


def _fingerprint(envelope: Fingerprinted, payload: Any) -> str:
    data = orjson.dumps([envelope.type, envelope.namespace, envelope.run_id, payload], option=_CANONICAL_OPTS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def value_fingerprint(envelope: Fingerprinted, value: bytes) -> str:
    """The `command_fingerprint` of the command a record value carries (decoded as `envelope`)."""
    data = orjson.loads(value)
    return _fingerprint(envelope, data.get("command") if isinstance(data, dict) else None)


def command_fingerprint(envelope: Envelope) -> str:
    """A hash of what `envelope` does (type, namespace, run, payload), equal for a command and its retries."""
    return _fingerprint(envelope, envelope.command.model_dump(mode="json"))


def encode_message(envelope: Envelope) -> Message:
    """The log message of `envelope`: encoded value, partition key, `v` and `type` headers."""
    headers: tuple[Header, ...] = ((HEADER_VERSION, _VERSION_BYTES), (HEADER_TYPE, envelope.type.encode()))
    return Message(encode(envelope), partition_key(envelope), headers)


def decode(value: bytes, version: int = SCHEMA_VERSION) -> Envelope:
    """The envelope encoded in `value` under schema `version`, validated as on write; else CommandError."""
    return _decode(value, version)[0]


def _decode(value: bytes, version: int) -> tuple[Envelope, dict[str, Any]]:
    """The envelope in `value`, and the JSON object it was validated from."""
    if version != SCHEMA_VERSION:
        raise CommandError("unsupported", f"schema version {version} is not {SCHEMA_VERSION}")
    if len(value) > MAX_COMMAND_BYTES:
        raise CommandError("too_large", f"encoded command of {len(value)} bytes exceeds {MAX_COMMAND_BYTES}")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise CommandError("malformed", f"record value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError("malformed", "record value is not a JSON object")
    try:
        return Envelope.model_validate(data, context=_TRUSTED), data
    except ValidationError as exc:
        raise from_validation_errors(exc.errors()) from None


def record_version(headers: Sequence[Header]) -> int:
    """The schema version named by the `v` header; CommandError `unsupported` if absent or not a number."""
    for name, raw in headers:
        if name == HEADER_VERSION:
            if raw.isdigit() and len(raw) <= 9:
                return int(raw)
            break
    raise CommandError("unsupported", "record has no valid `v` (schema version) header")


def decode_record(record: Record) -> Envelope:
    """The envelope a log record carries (schema version from its `v` header)."""
    return decode(record.value, record_version(record.headers))


def decode_fingerprinted(record: Record) -> tuple[Envelope, str]:
    """The envelope a record carries and its `command_fingerprint`, hashed from the decoded JSON (no re-encode)."""
    envelope, data = _decode(record.value, record_version(record.headers))
    return envelope, _fingerprint(envelope, data.get("command"))
