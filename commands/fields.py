"""Field types shared by every command model, and their base class `CommandModel`.

Each annotated type validates with the `commands.limits` checks; a failure becomes a pydantic error
whose `type` is the `CommandError` code (`invalid`, `too_large`), so `errors.from_validation_errors`
maps it back. JSON values must be real JSON: str-keyed objects, lists, str, int64/uint64, finite
floats, bools and null (no tuples, no NaN/Infinity), so they encode and decode back equal.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    model_serializer,
)
from pydantic_core import PydanticCustomError

from commands import limits
from commands.errors import CommandError

__all__ = [
    "TRUSTED_JSON",
    "CommandModel",
    "Id",
    "JsonData",
    "JsonInt",
    "Key",
    "Metadata",
    "Namespace",
    "NonNegative",
    "Positive",
    "Scope",
    "ScopedCommand",
    "TtlSeconds",
    "at_most",
    "check_json_value",
]

#: Validation-context flag set by `decode`: JSON values came from orjson, so they are already valid JSON.
TRUSTED_JSON = "agentlog.trusted_json"

#: Which partition key a command routes by: `tenant/namespace` or `tenant/run_id`.
Scope = Literal["namespace", "run"]

_MIN_INT = -(2**63)
_MAX_UINT = 2**64 - 1


def _pydantic(check: Callable[[str, str], str], what: str) -> AfterValidator:
    def validate(value: str) -> str:
        try:
            return check(value, what)
        except CommandError as exc:
            raise PydanticCustomError(exc.code, exc.detail) from None

    return AfterValidator(validate)


def at_most(limit: int, what: str) -> AfterValidator:
    """A validator refusing an int above `limit` with the `too_large` code (not pydantic's `less_than_equal`)."""

    def validate(value: int) -> int:
        if value > limit:
            raise PydanticCustomError("too_large", f"{what} {value} exceeds {limit}")
        return value

    return AfterValidator(validate)


def check_json_value(value: Any) -> Any:
    """Return `value` if it is a JSON value that round-trips exactly; raise CommandError `invalid` if not."""
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not _MIN_INT <= item <= _MAX_UINT:
                raise CommandError("invalid", f"integer {item} outside the 64-bit range of JSON numbers here")
        elif kind is float:
            if not math.isfinite(item):
                raise CommandError("invalid", f"non-finite number {item!r} is not JSON")
        elif kind is dict:
            for key in item:
                if type(key) is not str:
                    raise CommandError("invalid", f"JSON object keys must be strings, not {key!r}")
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        else:
            raise CommandError("invalid", f"{kind.__name__} is not a JSON value")
    return value


def _json_validator(value: Any, info: ValidationInfo) -> Any:
    if info.context is not None and info.context.get(TRUSTED_JSON):
        return value
    try:
        return check_json_value(value)
    except CommandError as exc:
        raise PydanticCustomError(exc.code, exc.detail) from None


#: Any JSON value (validated to round-trip exactly).
JsonData = Annotated[Any, AfterValidator(_json_validator)]
#: A JSON object of metadata.
Metadata = Annotated[dict[str, Any], AfterValidator(_json_validator)]
#: A kv key, state or lock name, or vector id (see `commands.limits`).
Key = Annotated[
    str,
    _pydantic(limits.check_key, "key"),
    # JSON Schema counts characters, not UTF-8 bytes: the byte limit is the named one, checked above.
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": limits.MAX_KEY_BYTES,
            "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]+$",
            "description": f"Non-empty, at most {limits.MAX_KEY_BYTES} UTF-8 bytes, no control characters",
        }
    ),
]


def _native_name(alphabet: str, max_length: int) -> StringConstraints:
    """`[alphabet]+` but not `.` or `..`, checked by pydantic-core's own regex engine (no Python call).

    The Rust engine has no lookahead, so the two reserved names are excluded by alternation. The
    result is the same as `limits.check_id` / `limits.check_namespace`; those stay the reference.
    """
    no_dot = alphabet.replace(".", "")
    pattern = rf"^(?:[{no_dot}][{alphabet}]*|\.[{no_dot}][{alphabet}]*|\.\.[{alphabet}]+)$"
    return StringConstraints(pattern=pattern, max_length=max_length)


#: A namespace (see `commands.limits`); validated natively, as on every replayed command.
Namespace = Annotated[str, _native_name("A-Za-z0-9._:-", limits.MAX_NAMESPACE_BYTES)]
#: An id: tenant, run, thread, agent, tool, trace, event, holder, collection or command id.
Id = Annotated[str, _native_name("A-Za-z0-9._:@-", limits.MAX_ID_BYTES)]


def _integral(value: object) -> object:
    """A JSON number with no fraction (`3.0`) as the integer it is; JSON does not tell `3` from `3.0`."""
    if isinstance(value, float) and value.is_integer() and abs(value) <= limits.MAX_INT:
        return int(value)
    return value


#: An integer as JSON writes it: `3` or `3.0` (strict otherwise: no strings, no bools, no fractions).
JsonInt = Annotated[int, BeforeValidator(_integral)]
#: A version or sequence number where 0 means "none yet".
NonNegative = Annotated[int, Field(ge=0, le=limits.MAX_INT), BeforeValidator(_integral)]
#: A version, sequence number or fencing token that names something existing.
Positive = Annotated[int, Field(ge=1, le=limits.MAX_INT), BeforeValidator(_integral)]
#: A time to live in whole seconds.
TtlSeconds = Annotated[int, Field(ge=1, le=limits.MAX_TTL_S), BeforeValidator(_integral)]


class CommandModel(BaseModel):
    """Base of every command and command part: frozen, strict, unknown fields refused.

    Serialized (`model_dump`, hence the record encoding), an optional field whose default is None
    is left out while it is None; a required field is always written, even when its value is null.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    _omit_if_none: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Note which fields default to None, to leave them out of serialized forms when None."""
        super().__pydantic_init_subclass__(**kwargs)
        cls._omit_if_none = tuple(
            name for name, field in cls.model_fields.items() if not field.is_required() and field.default is None
        )

    # No return annotation on purpose: pydantic then keeps the model's own serialization JSON schema.
    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            for name in self._omit_if_none:
                if name in data and data[name] is None:
                    del data[name]
        return data


class ScopedCommand(CommandModel):
    """Base of the top-level commands: a `type` tag, the scope that routes it, envelope-level checks."""

    #: `namespace`: routed by `tenant/namespace` and needs one; `run`: routed by `tenant/run_id`.
    scope: ClassVar[Scope] = "namespace"
    #: Issued by the server's own processors only; refused in client request bodies.
    internal: ClassVar[bool] = False

    def namespaces(self, default: str) -> frozenset[str]:
        """Every namespace this command touches when its envelope's namespace is `default`."""
        return frozenset((default,))

    def check_scope(self, namespace: str | None) -> None:
        """Raise CommandError if the command is inconsistent with its envelope's namespace."""
