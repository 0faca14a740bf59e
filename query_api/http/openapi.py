"""The OpenAPI document as the contract: every error status a route can answer, as problem+json.

FastAPI documents a route's success response and a 422 in its own `HTTPValidationError` shape. The
node answers more than that, from machinery every route shares: identity headers (400, 401, 403),
branches (404), `as_of` (400, 409, 429), consistency tokens (400, 504), bodies (413), projections'
rejections on writes (403, 404, 409, 422), and a failed log (503). `complete_openapi` adds each status
to exactly the operations whose parameters, body or method lead to it, all as
`application/problem+json` with the `Problem` schema, and writes the constraints the code checks by
hand (identity headers, `as_of`) into the parameters' schemas, so a schema-driven client or fuzzer
knows what the node accepts.
"""

from __future__ import annotations

from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from projections.cut import token_pattern
from query_api.node.branches import as_of_pattern

__all__ = ["IDENTITY_PATTERN", "PROBLEM_SCHEMA", "complete_openapi", "install_openapi", "query_patterns"]

#: What `X-Tenant`, `X-Agent-Id` and `X-Tool-Id` must match (checked in `deps.get_caller`).
IDENTITY_PATTERN: Final = r"^[A-Za-z0-9._:@-]{1,256}$"


def query_patterns(partitions: int | None = None) -> dict[str, str]:
    """Query parameters whose syntax the code checks by hand, and what it accepts (for this topic)."""
    as_of = as_of_pattern(partitions)
    return {"as_of": as_of, "cut_a": as_of, "cut_b": as_of, "token": token_pattern(partitions)}

IDENTITY_HEADERS: Final = ("x-tenant", "x-agent-id", "x-tool-id")
MEDIA_TYPE: Final = "application/problem+json"

#: RFC 9457 problem details; extra members (`current_version`, `write`, ...) depend on the error.
PROBLEM_SCHEMA: Final[dict[str, Any]] = {
    "title": "Problem",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "`urn:agentlog:error:<code>`"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}

#: What each status means, as the description of its response.
DESCRIPTIONS: Final = {
    400: "Malformed request: an identity header, `as_of`, `token` or body the node cannot use",
    401: "No API key, or an unknown one (API-key mode)",
    403: "The caller's role or write barrier does not allow this",
    404: "No such branch, or no such resource",
    405: "Method not allowed (the `Allow` header lists the allowed ones)",
    409: "Conflict: a version, lock, precondition or existing resource; or an `as_of` cut not yet applied",
    413: "The body or a value in it exceeds a named limit",
    422: "The body or a parameter does not validate, or the projection rejected the command as invalid",
    429: "Too many rebuilds in flight for this tenant (`as_of`, diff); retry later",
    503: "The log or the node is not available; retry after `Retry-After`",
    504: "The node did not apply the requested token's cut in time",
}

WRITE_METHODS: Final = frozenset({"post", "put", "patch", "delete"})


def _parameter_names(operation: dict[str, Any]) -> set[str]:
    return {str(parameter["name"]).lower() for parameter in operation.get("parameters", [])}


def statuses_for(path: str, method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from its parameters, body and method."""
    names = _parameter_names(operation)
    statuses: set[int] = {503} if path.startswith("/v1/") else set()
    if names or "requestBody" in operation:
        statuses.add(422)
    if names & set(IDENTITY_HEADERS):
        statuses |= {400, 401, 403}
    if "branch" in names:
        statuses.add(404)
    if "as_of" in names:
        statuses |= {400, 409, 429}
    if names & {"cut_a", "cut_b"}:
        statuses |= {400, 409, 429}
    if "token" in names:
        statuses |= {400, 504}
    if "requestBody" in operation:
        statuses |= {400, 413}
    if method in WRITE_METHODS and path.startswith("/v1/"):
        statuses |= {403, 404, 409}
    if "{" in path:
        statuses.add(404)
    return statuses


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS.get(status, "Error"),
        "content": {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _constrain_parameters(operation: dict[str, Any], patterns: dict[str, str]) -> None:
    for parameter in operation.get("parameters", []):
        name = str(parameter["name"]).lower()
        schema = parameter.get("schema", {})
        target = next((option for option in schema.get("anyOf", []) if option.get("type") == "string"), schema)
        if parameter.get("in") == "header" and name in IDENTITY_HEADERS:
            target["pattern"] = IDENTITY_PATTERN
        elif parameter.get("in") == "query" and name in patterns:
            target["pattern"] = patterns[name]


def complete_openapi(document: dict[str, Any], partitions: int | None = None) -> None:
    """Declare every error status of every operation of `document` as problem+json (in place).

    With `partitions` (the node's topic), cuts and tokens in the document name only its partitions.
    """
    patterns = query_patterns(partitions)
    document.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    schemas = document["components"]["schemas"]
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in {"get", "put", "post", "delete", "patch", "head", "options"}:
                continue
            _constrain_parameters(operation, patterns)
            responses = operation.setdefault("responses", {})
            statuses = statuses_for(path, method, operation)
            for status in sorted(statuses):
                responses[str(status)] = _problem_response(status)


def install_openapi(app: FastAPI) -> None:
    """Serve `app`'s OpenAPI document completed by `complete_openapi` (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            node = getattr(app.state, "node", None)
            complete_openapi(document, len(node.engine.applied) if node is not None else None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
