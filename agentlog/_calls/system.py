"""The builders of the node's status and liveness."""

from __future__ import annotations

from typing import Any

from agentlog._calls.call import Call, json_object

__all__ = ["health", "status"]


def status(*, branch: str | None = None) -> Call[dict[str, Any]]:
    """The node's status (of `branch`): per partition end and applied offsets and lag, digests, newest snapshot."""
    return Call("GET", "/v1/status", json_object, params={"branch": branch})


def health() -> Call[dict[str, Any]]:
    """Liveness: `{"status": "ok"}` while the node's apply loop runs."""
    return Call("GET", "/health", json_object)
