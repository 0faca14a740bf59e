"""Typed errors of the SDK, built from the node's RFC 9457 problem bodies.

The tree::

    AgentlogError                 every failure: status, code, detail, extra (the problem's other fields)
    ├── InvalidRequestError       400, 413, 422: malformed, too large, schema or limit violations
    ├── AuthError                 401, 403: missing or unknown credentials, forbidden by a barrier
    ├── NotFoundError             404: no such key, run, collection, ...
    ├── ConflictError             409: version conflicts, held locks, closed runs (`current_version`)
    └── UnavailableError          503, 504: the node failed or has not applied the cut in time
        └── TransportError        no answer at all: connection refused, timeout, broken connection

Any other status (405, 500, ...) raises plain `AgentlogError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "AgentlogError",
    "AuthError",
    "ConflictError",
    "InvalidRequestError",
    "NotFoundError",
    "TransportError",
    "UnavailableError",
    "error_from_problem",
]

#: The prefix of every problem `type` the node answers with.
PROBLEM_TYPE_PREFIX: Final = "urn:agentlog:error:"
#: Problem members that are not extras.
_STANDARD_MEMBERS: Final = frozenset(("type", "title", "status", "detail", "instance"))


class AgentlogError(Exception):
    """A failed call: HTTP `status`, problem `code` (the `type` after `urn:agentlog:error:`), `detail`, `extra`."""

    def __init__(self, status: int, code: str, detail: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.extra: dict[str, Any] = dict(extra or {})

    def to_problem(self) -> dict[str, Any]:
        """The problem body this error stands for (what the CLI prints)."""
        return {
            "type": PROBLEM_TYPE_PREFIX + self.code,
            "status": self.status,
            "detail": self.detail,
            **self.extra,
        }


class InvalidRequestError(AgentlogError):
    """The request was refused as malformed, too large or invalid (400, 413, 422)."""


class AuthError(AgentlogError):
    """Credentials are missing or unknown (401), or the write is forbidden (403)."""


class NotFoundError(AgentlogError):
    """The addressed key, run, lock, collection or route does not exist (404)."""


class ConflictError(AgentlogError):
    """The write lost a race or a condition (409): `current_version` tells where the record is now."""

    @property
    def current_version(self) -> int | None:
        """The version the record is at, when the node said so."""
        value = self.extra.get("current_version")
        return value if isinstance(value, int) else None


class UnavailableError(AgentlogError):
    """The node cannot answer now (503, 504): retry later or against another node."""


class TransportError(UnavailableError):
    """The node was not reached or did not answer (status 0): connection refused, timeout, reset."""

    def __init__(self, detail: str) -> None:
        super().__init__(0, "transport", detail)


_BY_STATUS: Final[dict[int, type[AgentlogError]]] = {
    400: InvalidRequestError,
    401: AuthError,
    403: AuthError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    422: InvalidRequestError,
    503: UnavailableError,
    504: UnavailableError,
}


def error_from_problem(status: int, body: Any, text: str = "") -> AgentlogError:
    """The typed error for an error response: its problem body when it has one, else its text."""
    cls = _BY_STATUS.get(status, AgentlogError)
    if not isinstance(body, dict):
        return cls(status, "http_error", text.strip() or f"HTTP {status}")
    problem_type = body.get("type")
    if isinstance(problem_type, str) and problem_type.startswith(PROBLEM_TYPE_PREFIX):
        code = problem_type.removeprefix(PROBLEM_TYPE_PREFIX)
    else:
        code = str(body.get("title") or "http_error")
    detail = body.get("detail")
    extra = {name: value for name, value in body.items() if name not in _STANDARD_MEMBERS}
    return cls(status, code, detail if isinstance(detail, str) else (text.strip() or f"HTTP {status}"), extra)
