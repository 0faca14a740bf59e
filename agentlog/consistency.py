"""Per-call consistency: `strong(call)` makes one read linearizable.

    from agentlog import _calls as calls
    record = client.run(strong(calls.kv_get("notes", "fact-1")))

A whole client: `AgentlogClient(url, consistency="strong")`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from agentlog._calls import Call

__all__ = ["strong"]

T = TypeVar("T")


def strong(call: Call[T]) -> Call[T]:
    """The same call with `consistency=strong`: the node answers after applying the log's end as of now."""
    return replace(call, params={**call.params, "consistency": "strong"})
