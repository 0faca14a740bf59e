"""`Session`: what both transports share, identity headers and the newest consistency token per branch.

A write's token is merged into it; a read sends it (unless `consistent=False` or an explicit `token`)
so the node answers only once it has applied the client's own writes (read-your-writes). Offsets
differ between branches, so the session keeps one token per branch and a call sends the token of its
own branch.
"""

from __future__ import annotations

import json
import threading
from typing import Any, Final, TypeVar

import orjson

from agentlog._calls.call import Call
from agentlog.errors import AgentlogError, InvalidRequestError, error_from_problem

__all__ = ["MAIN_BRANCH", "USER_AGENT", "Session"]

T = TypeVar("T")

#: Sent as `User-Agent` by both clients.
USER_AGENT: Final = "agentlog-sdk/0.1.0"
#: The branch a call without `branch` goes to.
MAIN_BRANCH: Final = "main"


class Session:
    """Identity headers and the newest consistency token (per partition), shared by one client's calls."""

    def __init__(
        self,
        *,
        tenant: str | None = None,
        agent_id: str | None = None,
        tool_id: str | None = None,
        api_key: str | None = None,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
        for name, value in (("X-Tenant", tenant), ("X-Agent-Id", agent_id), ("X-Tool-Id", tool_id)):
            if value is not None:
                headers[name] = value
        if api_key is not None:
            headers["Authorization"] = f"Bearer {api_key}"
        self.headers: dict[str, str] = headers
        self._applied: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    @property
    def token(self) -> str | None:
        """The token covering every write this client has seen answered on main, or None before the first."""
        return self.token_for(None)

    def token_for(self, branch: str | None) -> str | None:
        """The token covering every write this client has seen answered on `branch` (None: main)."""
        with self._lock:
            applied = self._applied.get(branch or MAIN_BRANCH)
            if not applied:
                return None
            return ",".join(f"{p}:{o}" for p, o in sorted(applied.items()))

    def observe(self, token: str, branch: str | None = None) -> None:
        """Merge a write's token (`p:next_offset,...`) on `branch` into the session's; malformed parts are ignored."""
        with self._lock:
            applied = self._applied.setdefault(branch or MAIN_BRANCH, {})
            for part in token.split(","):
                partition, _, offset = part.partition(":")
                if partition.isdigit() and offset.isdigit():
                    p, o = int(partition), int(offset)
                    applied[p] = max(applied.get(p, 0), o)

    def params(self, call: Call[Any]) -> dict[str, str]:
        """The query parameters to send: the call's, plus the consistency token of a read."""
        params = {name: _param(value) for name, value in call.params.items() if value is not None}
        if call.read:
            token = call.token if call.token is not None else (self.token_for(call.branch) if call.consistent else None)
            if token:
                params["token"] = token
        return params

    def request(self, call: Call[Any]) -> dict[str, Any]:
        """The keyword arguments of `httpx.(Async)Client.request` for a call, besides method and path."""
        content = self.content(call)
        headers = None if content is None else {"Content-Type": "application/json"}
        return {"params": self.params(call), "content": content, "headers": headers}

    @staticmethod
    def content(call: Call[Any]) -> bytes | None:
        """The call's JSON body as bytes; InvalidRequestError (status 0) for what JSON cannot carry (NaN, sets)."""
        if call.body is None:
            return None
        try:
            return json.dumps(call.body, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()
        except (TypeError, ValueError) as error:
            raise InvalidRequestError(0, "invalid", f"the request body is not JSON: {error}") from error

    def finish(self, call: Call[T], status: int, content: bytes) -> T:
        """Parse an answer: the typed error for a problem, else the call's result; writes update the token."""
        body = _decode(content)
        if status >= 400:
            if call.write and isinstance(body, dict):
                # A rejected command is in the log too: reads after it should see the state it met.
                write = body.get("write")
                if isinstance(write, dict) and isinstance(write.get("token"), str):
                    self.observe(write["token"], call.branch)
            if status == 404 and call.missing is not None:
                return call.missing()
            raise error_from_problem(status, body, content.decode("utf-8", "replace")[:2000])
        if call.write and isinstance(body, dict) and isinstance(body.get("token"), str):
            self.observe(body["token"], call.branch)
        try:
            return call.parse(body)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            detail = f"unexpected answer to {call.method} {call.path}: {error!r}"
            raise AgentlogError(status, "bad_response", detail) from error


def _decode(content: bytes) -> Any:
    """The JSON of a body, or None when it is empty or not JSON."""
    if not content:
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _param(value: Any) -> str:
    """A query parameter's text (booleans as `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
