"""Who is calling and what they may do: open mode trusts `X-Tenant`/`X-Agent-Id`/`X-Tool-Id`; keys decide otherwise.

The keys file is JSON: `{"keys": {"<secret>": {"tenant": "acme", "agent_id": "planner", "tool_id": null,
"role": "writer"}}}`. Roles, each allowing what the one before it does:

- `reader`: reads of the tenant's records, runs, branches; the tenant's view of `/v1/status`.
- `writer` (the default for a key that names no role, so older key files keep working): writes,
  making branches and forks.
- `admin`: deleting branches, write barriers, the raw log (`GET /v1/log`), the audit view of
  denials, node-wide status detail and `/metrics`.

In open mode there are no credentials to check: every caller is `admin` of the tenant it names.
"""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commands import Caller

__all__ = ["ROLES", "ApiKeys", "AuthError", "Principal", "Role", "allows", "resolve_caller", "resolve_principal"]

#: The tenant of open mode when no `X-Tenant` header is sent.
DEFAULT_TENANT = "default"

Role = Literal["reader", "writer", "admin"]
#: The roles, weakest first: each allows everything the ones before it allow.
ROLES: Final[tuple[Role, ...]] = get_args(Role)
#: The role of a key that names none (key files from before roles existed).
DEFAULT_ROLE: Final[Role] = "writer"
_IDENTITY_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,256}$"


class AuthError(Exception):
    """The credentials are missing or unknown."""


class _KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tenant: str = Field(pattern=_IDENTITY_PATTERN)
    agent_id: str | None = Field(None, pattern=_IDENTITY_PATTERN)
    tool_id: str | None = Field(None, pattern=_IDENTITY_PATTERN)
    role: Role = DEFAULT_ROLE


@dataclass(frozen=True, slots=True)
class Principal:
    """A caller's identity (tenant, agent, tool) and the role its credentials grant."""

    caller: Caller
    role: Role


def allows(role: Role, needed: Role) -> bool:
    """Whether `role` may do what needs `needed` (roles are ordered reader < writer < admin)."""
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """API keys and the principal each stands for."""

    entries: dict[str, Principal]

    @classmethod
    def load(cls, path: Path) -> ApiKeys:
        """Read a keys file; ValueError naming the file when it is malformed."""
        try:
            document = json.loads(path.read_text())
            keys = {secret: _KeyEntry.model_validate(entry) for secret, entry in document["keys"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as error:
            raise ValueError(f"API keys file {path}: {error}") from error
        return cls({secret: Principal(Caller(e.tenant, e.agent_id, e.tool_id), e.role) for secret, e in keys.items()})

    def find(self, presented: str) -> Principal | None:
        """The principal of a key, compared in constant time."""
        found = None
        for secret, principal in self.entries.items():
            if hmac.compare_digest(secret.encode(), presented.encode()):
                found = principal
        return found


def resolve_principal(
    keys: ApiKeys | None,
    authorization: str | None,
    api_key: str | None,
    tenant: str | None,
    agent_id: str | None,
    tool_id: str | None,
) -> Principal:
    """The caller and its role, from headers (open mode: admin) or from its API key."""
    if keys is None:
        return Principal(Caller(tenant or DEFAULT_TENANT, agent_id, tool_id), "admin")
    presented = api_key
    if presented is None and authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
    if not presented:
        raise AuthError("this node requires an API key (Authorization: Bearer <key> or X-API-Key)")
    principal = keys.find(presented)
    if principal is None:
        raise AuthError("unknown API key")
    return principal


def resolve_caller(
    keys: ApiKeys | None,
    authorization: str | None,
    api_key: str | None,
    tenant: str | None,
    agent_id: str | None,
    tool_id: str | None,
) -> Caller:
    """The caller's identity from headers (open mode) or from its API key."""
    return resolve_principal(keys, authorization, api_key, tenant, agent_id, tool_id).caller
