"""Pre-serialized JSON responses: orjson bytes, so FastAPI neither walks nor re-validates the body.

A route that returns `json_response(...)` keeps its declared `response_model` for OpenAPI (FastAPI
passes a returned `Response` through untouched). orjson writes dataclasses (the read models'
frozen views) natively, without the deep copy `dataclasses.asdict` makes.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Response

__all__ = ["JsonBody", "json_response"]

#: Options for response bodies: dataclass views as objects, non-str dict keys (cuts) as strings.
_OPTIONS = orjson.OPT_NON_STR_KEYS


class JsonBody(Response):
    """An `application/json` response whose body is already encoded."""

    media_type = "application/json"


def json_response(content: Any, status_code: int = 200) -> Response:
    """`content` encoded once by orjson as the response body."""
    return JsonBody(orjson.dumps(content, option=_OPTIONS), status_code=status_code)
