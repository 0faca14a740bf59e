"""`Call`, one HTTP exchange of the SDK, and the helpers every resource's builders share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar
from urllib.parse import quote

from agentlog.models import WriteResult

__all__ = ["DEFAULT_NAMESPACE", "Call", "json_object", "none", "options", "read_call", "segment", "write_call"]

T = TypeVar("T")

#: The namespace of state records and locks when none is named (commands.DEFAULT_NAMESPACE).
DEFAULT_NAMESPACE: Final = "default"


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One HTTP exchange: what to send and how to read the answer."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    #: A write: its answer's token is merged into the session's.
    write: bool = False
    #: A read: sends `token`, or the session's token when `consistent`.
    read: bool = False
    token: str | None = None
    consistent: bool = True
    #: What a 404 answers instead of raising NotFoundError (reads of one thing answer None).
    missing: Callable[[], T] | None = None
    #: The branch whose consistency token the call sends and updates (None: main).
    branch: str | None = None


def segment(text: str) -> str:
    """`text` as one URL path segment: everything reserved escaped, and `.`/`..` too (never normalized away)."""
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def options(**values: Any) -> dict[str, Any]:
    """The named values that are not None (optional body members)."""
    return {name: value for name, value in values.items() if value is not None}


def write_call(
    method: str, path: str, body: dict[str, Any] | None = None, *, branch: str | None = None, **params: Any
) -> Call[WriteResult]:
    """A write call answering a `WriteResult`, on `branch` (None: main)."""
    params["branch"] = branch
    return Call(method, path, WriteResult.from_json, params=params, body=body, write=True, branch=branch)


def read_call(
    path: str,
    parse: Callable[[Any], T],
    token: str | None,
    consistent: bool,
    *,
    method: str = "GET",
    body: dict[str, Any] | None = None,
    missing: Callable[[], T] | None = None,
    branch: str | None = None,
    as_of: str | None = None,
    **params: Any,
) -> Call[T]:
    """A read call that carries the consistency token of its branch (None: main), as of `as_of` if given."""
    params |= {"branch": branch, "as_of": as_of}
    return Call(
        method,
        path,
        parse,
        params=params,
        body=body,
        read=True,
        token=token,
        consistent=consistent,
        missing=missing,
        branch=branch,
    )


def none() -> None:
    """The answer of a read of one thing that does not exist."""
    return None


def json_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise TypeError(f"expected a JSON object, got {type(data).__name__}")
    return data
