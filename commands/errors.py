"""The one error the command layer raises: `CommandError(code, detail, status)`.

Codes and their default HTTP status (the API maps them to RFC 9457 problem details):

    invalid          422  schema, syntax or value error
    malformed        400  bytes that do not parse as a command
    too_large        413  a named limit of `commands.limits` exceeded
    cross_partition  422  a transaction whose keys route to several partitions
    unsupported      400  an unknown schema version or command type
    run_required     422  `require_run` set and no run_id given
    idempotency_key_reused  409  the tenant's command_id is bound to a different command
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["DEFAULT_STATUS", "CommandError", "from_validation_errors"]

#: The HTTP status a code maps to unless the raiser names another.
DEFAULT_STATUS: Final[dict[str, int]] = {
    "invalid": 422,
    "malformed": 400,
    "too_large": 413,
    "cross_partition": 422,
    "unsupported": 400,
    "run_required": 422,
    "idempotency_key_reused": 409,
}


class CommandError(ValueError):
    """A command refused before it reaches the log: a machine code, a human detail and an HTTP status."""

    def __init__(self, code: str, detail: str, status: int | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status = status if status is not None else DEFAULT_STATUS.get(code, 400)

    def __reduce__(self) -> tuple[type[CommandError], tuple[str, str, int]]:
        return (CommandError, (self.code, self.detail, self.status))


#: pydantic error types that mean "over a limit" (ours are named by code; `too_long` is pydantic's).
_TOO_LARGE_TYPES: Final = frozenset({"too_large", "too_long", "string_too_long"})
_MAX_LISTED = 5


def _location(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def from_validation_errors(errors: Iterable[Mapping[str, Any]]) -> CommandError:
    """One CommandError from pydantic's `exc.errors()` (also FastAPI's RequestValidationError.errors()).

    The code is `too_large` when any error is over a limit, else `invalid`; the detail lists the
    first few errors as `location: message`.
    """
    items = list(errors)
    code = "too_large" if any(item.get("type") in _TOO_LARGE_TYPES for item in items) else "invalid"
    parts = [f"{_location(item.get('loc', ()))}: {item.get('msg', 'invalid')}" for item in items[:_MAX_LISTED]]
    if len(items) > _MAX_LISTED:
        parts.append(f"and {len(items) - _MAX_LISTED} more")
    return CommandError(code, "; ".join(parts) or "invalid command")
