"""RFC 9457 problem details: every error the API answers is `application/problem+json`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from commands import CommandError, from_validation_errors
from eventlog.errors import InvalidRequestError, LimitExceededError, LogError, LogFailedError, TopicNotFoundError
from projections.cut import CutError
from projections.outcome import Outcome
from query_api.node.branches import BranchError
from query_api.node.node import NotApplied, TokenAhead

__all__ = ["ApiProblem", "install_problem_handlers", "problem_response", "rejection_problem", "route_methods"]

MEDIA_TYPE = "application/problem+json"
#: Seconds a client told the log is unavailable (503) should wait before retrying.
LOG_RETRY_AFTER_S = 1

#: HTTP status of each rejection reason a projection records.
REJECTION_STATUS = {
    "version_conflict": 409,
    "already_exists": 409,
    "lock_held": 409,
    "precondition_failed": 409,
    "run_closed": 409,
    "forbidden": 403,
    "not_found": 404,
    "schema_violation": 422,
    "invalid": 422,
    "cross_partition": 422,
    "idempotency_key_reused": 409,
}


class ApiProblem(Exception):
    """Raise to answer with a problem: `code` becomes `urn:agentlog:error:<code>`."""

    def __init__(self, status: int, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra


def problem_response(
    status: int,
    code: str,
    detail: str,
    retry_after_s: int | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response; `retry_after_s` becomes a `Retry-After` header."""
    body = {"type": f"urn:agentlog:error:{code}", "title": code.replace("_", " "), "status": status, "detail": detail}
    body.update(extra)
    if retry_after_s is not None:
        headers = {**(headers or {}), "Retry-After": str(retry_after_s)}
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def rejection_problem(outcome: Outcome, write: dict[str, Any]) -> ApiProblem:
    """The problem for a command the projection rejected; it carries the write's position and token."""
    reason = outcome.reason or "invalid"
    return ApiProblem(
        REJECTION_STATUS.get(reason, 409), reason, outcome.detail or reason, **outcome.result, write=write
    )


RouteTable = list[tuple[re.Pattern[str], int, frozenset[str]]]


def route_methods(routers: Iterable[APIRouter]) -> RouteTable:
    """Each route's path pattern, specificity (literal characters) and methods, for `allowed_methods`."""
    return [
        (route.path_regex, len(re.sub(r"\{[^}]*\}", "", route.path)), frozenset(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def allowed_methods(request: Request) -> list[str]:
    """The methods of the resource at the request's path (for `Allow` on a 405).

    Where templates overlap (`/v1/kv/{namespace}/batch-get` and `/v1/kv/{namespace}/{key}`), the
    resource is the most specific template's, as the OpenAPI document describes it.
    """
    table: RouteTable = request.app.state.route_methods
    matches = [(specificity, methods) for pattern, specificity, methods in table if pattern.match(request.url.path)]
    best = max((specificity for specificity, _ in matches), default=0)
    return sorted({method for specificity, methods in matches if specificity == best for method in methods})


def validation_status(errors: Sequence[Mapping[str, Any]]) -> int:
    """413 when a request body exceeds one of the named limits the schema cannot say, else 422.

    A value over a bound the OpenAPI document declares (`maxLength`, `maxItems`, `maximum`) is a
    schema violation like any other (422); only our own size limits inside a body (a vector's
    dimension, a value's bytes) are "content too large".
    """
    too_large = [item for item in errors if item.get("type") == "too_large"]
    if too_large and all(tuple(item.get("loc", ()))[:1] == ("body",) for item in too_large):
        return 413
    return 422


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error type the layers raise to a problem response."""

    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, error: ApiProblem) -> JSONResponse:
        return problem_response(error.status, error.code, error.detail, **error.extra)

    @app.exception_handler(BranchError)
    async def _branch(_: Request, error: BranchError) -> JSONResponse:
        return problem_response(error.status, error.code, error.detail, error.retry_after_s, **error.extra)

    @app.exception_handler(CommandError)
    async def _command_error(_: Request, error: CommandError) -> JSONResponse:
        return problem_response(error.status, error.code, error.detail)

    @app.exception_handler(PydanticValidationError)
    async def _pydantic(_: Request, error: PydanticValidationError) -> JSONResponse:
        converted = from_validation_errors(error.errors())
        return problem_response(converted.status, converted.code, converted.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(error.status_code, "http_error")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return problem_response(error.status_code, code, str(error.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, error: RequestValidationError) -> JSONResponse:
        converted = from_validation_errors(error.errors())
        return problem_response(validation_status(error.errors()), converted.code, converted.detail)

    @app.exception_handler(NotApplied)
    async def _not_applied(_: Request, error: NotApplied) -> JSONResponse:
        return problem_response(504, "not_applied", str(error))

    @app.exception_handler(TokenAhead)
    async def _token_ahead(_: Request, error: TokenAhead) -> JSONResponse:
        return problem_response(409, "token_ahead", str(error))

    @app.exception_handler(CutError)
    async def _cut(_: Request, error: CutError) -> JSONResponse:
        return problem_response(400, "bad_token", str(error))

    @app.exception_handler(LimitExceededError)
    async def _limit(_: Request, error: LimitExceededError) -> JSONResponse:
        return problem_response(413, "too_large", str(error))

    @app.exception_handler(LogFailedError)
    async def _failed(_: Request, error: LogFailedError) -> JSONResponse:
        return problem_response(503, "log_failed", str(error), LOG_RETRY_AFTER_S)

    @app.exception_handler(InvalidRequestError)
    async def _invalid_log_request(_: Request, error: InvalidRequestError) -> JSONResponse:
        return problem_response(400, "invalid", str(error))

    @app.exception_handler(TopicNotFoundError)
    async def _no_topic(_: Request, error: TopicNotFoundError) -> JSONResponse:
        return problem_response(404, "not_found", str(error))

    @app.exception_handler(LogError)
    async def _log(_: Request, error: LogError) -> JSONResponse:
        # the log or the broker failed (closed, unreachable, timed out, corrupt): not the client's fault
        return problem_response(503, "log_unavailable", str(error), LOG_RETRY_AFTER_S)
