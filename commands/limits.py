"""Named limits and name syntax of commands, checked on write (producer) and on read (decode).

Syntax, as enforced by the `check_*` functions (each returns its argument or raises `CommandError`):

- **key** (kv keys, state and lock names, vector ids): non-empty, at most `MAX_KEY_BYTES` bytes of
  UTF-8, no control characters (U+0000..U+001F, U+007F..U+009F) and no lone surrogates. Any other
  character is allowed, `/` included.
- **namespace**: `[A-Za-z0-9._:-]+`, at most `MAX_NAMESPACE_BYTES` bytes, not `.` or `..`. No `/`,
  so a namespace is one URL path segment (`/v1/kv/{namespace}/{key}` stays unambiguous);
  seed 002's `files:{repo}` and `cache:api` fit.
- **id** (tenant, run, thread, agent, tool, trace, event, lock holder, collection, command ids, event
  types): `[A-Za-z0-9._:@-]+`, at most `MAX_ID_BYTES` bytes, not `.` or `..`. No `/`, so
  `tenant/namespace` and `tenant/run_id` partition keys split unambiguously at their first `/`.
"""

from __future__ import annotations

import re
from typing import Final

from commands.errors import CommandError

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_RUN_ID",
    "MAX_BATCH_COMMANDS",
    "MAX_COMMAND_BYTES",
    "MAX_ID_BYTES",
    "MAX_INT",
    "MAX_K",
    "MAX_KEY_BYTES",
    "MAX_NAMESPACE_BYTES",
    "MAX_SUBMIT_BYTES",
    "MAX_TTL_S",
    "MAX_VECTOR_DIMENSION",
    "SCHEMA_VERSION",
    "check_id",
    "check_k",
    "check_key",
    "check_namespace",
]

#: Version of the record encoding, written in every record's `v` header.
SCHEMA_VERSION: Final = 1
#: Largest encoded command (the record value), in bytes.
MAX_COMMAND_BYTES: Final = 1024 * 1024
#: Longest key, state/lock name or vector id, in UTF-8 bytes.
MAX_KEY_BYTES: Final = 512
#: Longest namespace, in bytes.
MAX_NAMESPACE_BYTES: Final = 256
#: Longest id (tenant, run, thread, agent, tool, trace, event, holder, collection, command id).
MAX_ID_BYTES: Final = 256
#: Most items in one batch: kv.batch_put items, each txn list, commands in one `submit_many`.
MAX_BATCH_COMMANDS: Final = 1000
#: Largest vector dimension.
MAX_VECTOR_DIMENSION: Final = 4096
#: Most results one search may ask for (checked by the query side with `check_k`).
MAX_K: Final = 1000
#: Longest TTL: ten years, in seconds.
MAX_TTL_S: Final = 10 * 365 * 24 * 3600
#: Largest version, sequence number, fencing token or timestamp a command may carry (int64).
MAX_INT: Final = 2**63 - 1
#: Largest sum of encoded commands that `submit_many` appends to one partition at once.
MAX_SUBMIT_BYTES: Final = 16 * 1024 * 1024
#: The namespace of a namespaced command that names none (seed 002's default).
DEFAULT_NAMESPACE: Final = "default"
#: The implicit run a write without a run_id is attached to (unless the caller requires a run).
DEFAULT_RUN_ID: Final = "default"

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMESPACE = re.compile(r"[A-Za-z0-9._:-]+")
_ID = re.compile(r"[A-Za-z0-9._:@-]+")


def _utf8_len(value: str, what: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise CommandError("invalid", f"{what} is not valid UTF-8 (lone surrogate)") from None


def check_key(value: str, what: str = "key") -> str:
    """Return `value` if it is a valid key (non-empty, ≤ 512 UTF-8 bytes, no control characters)."""
    if not isinstance(value, str) or not value:
        raise CommandError("invalid", f"{what} must be a non-empty string")
    if _utf8_len(value, what) > MAX_KEY_BYTES:
        raise CommandError("too_large", f"{what} longer than {MAX_KEY_BYTES} bytes")
    if _CONTROL.search(value):
        raise CommandError("invalid", f"{what} {value!r} contains a control character")
    return value


def check_namespace(value: str, what: str = "namespace") -> str:
    """Return `value` if it is a valid namespace (`[A-Za-z0-9._:-]+`, ≤ 256 bytes, not `.`/`..`)."""
    if not isinstance(value, str):
        raise CommandError("invalid", f"{what} must be a string")
    if len(value) > MAX_NAMESPACE_BYTES:
        raise CommandError("too_large", f"{what} longer than {MAX_NAMESPACE_BYTES} bytes")
    if not _NAMESPACE.fullmatch(value) or value in (".", ".."):
        raise CommandError("invalid", f"{what} {value!r} must match [A-Za-z0-9._:-]+ and not be '.' or '..'")
    return value


def check_id(value: str, what: str = "id") -> str:
    """Return `value` if it is a valid id (`[A-Za-z0-9._:@-]+`, ≤ 256 bytes, not `.`/`..`)."""
    if not isinstance(value, str):
        raise CommandError("invalid", f"{what} must be a string")
    if len(value) > MAX_ID_BYTES:
        raise CommandError("too_large", f"{what} longer than {MAX_ID_BYTES} bytes")
    if not _ID.fullmatch(value) or value in (".", ".."):
        raise CommandError("invalid", f"{what} {value!r} must match [A-Za-z0-9._:@-]+ and not be '.' or '..'")
    return value


def check_k(k: int) -> int:
    """Return `k` if it is a valid result count for a search (1..MAX_K)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise CommandError("invalid", f"k must be a positive integer, not {k!r}")
    if k > MAX_K:
        raise CommandError("too_large", f"k = {k} exceeds {MAX_K}")
    return k
