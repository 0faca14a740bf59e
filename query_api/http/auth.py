"""Who is calling: open mode trusts `X-Tenant`/`X-Agent-Id`/`X-Tool-Id`; with API keys, the key decides.

The keys file is JSON: `{"keys": {"<secret>": {"tenant": "acme", "agent_id": "planner", "tool_id": null}}}`.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from commands import Caller

__all__ = ["ApiKeys", "AuthError", "resolve_caller"]

#: The tenant of open mode when no `X-Tenant` header is sent.
DEFAULT_TENANT = "default"


class AuthError(Exception):
    """The credentials are missing or unknown."""


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str
    agent_id: str | None = None
    tool_id: str | None = None


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """API keys and the identity each stands for."""

    entries: dict[str, Caller]

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """Read a keys file; ValueError naming the file when it is malformed."""
        try:
            document = json.loads(path.read_text())
            keys = {secret: _KeyEntry.model_validate(entry) for secret, entry in document["keys"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as error:
            raise ValueError(f"API keys file {path}: {error}") from error
        return cls({secret: Caller(e.tenant, e.agent_id, e.tool_id) for secret, e in keys.items()})

    def find(self, presented: str) -> Caller | None:
        """The caller of a key, compared in constant time."""
        for secret, caller in self.entries.items():
            if hmac.compare_digest(secret.encode(), presented.encode()):
                return caller
        return None


def resolve_caller(
    keys: ApiKeys | None,
    authorization: str | None,
    api_key: str | None,
    tenant: str | None,
    agent_id: str | None,
    tool_id: str | None,
) -> Caller:
    """The caller's identity from headers (open mode) or from its API key."""
    if keys is None:
        return Caller(tenant or DEFAULT_TENANT, agent_id, tool_id)
    presented = api_key
    if presented is None and authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented:
        raise AuthError("this node requires an API key (Authorization: Bearer <key> or X-API-Key)")
    caller = keys.find(presented)
    if caller is None:
        raise AuthError("unknown API key")
    return caller
