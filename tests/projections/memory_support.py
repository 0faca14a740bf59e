"""Helpers for memory tests: apply commands straight to a model, with made-up positions and log times."""

from __future__ import annotations

from typing import Any

from commands import Caller, Command, stamp
from projections.memories import MemoriesModel
from projections.model import ApplyContext
from projections.outcome import Rejected

ACME = Caller(tenant="acme", agent_id="planner")


class Applier:
    """Applies commands to one `MemoriesModel` at increasing log times (1000, 1010, ...)."""

    def __init__(self, model: MemoriesModel | None = None) -> None:
        self.model = model or MemoriesModel()
        self.offset = 0
        self.log_time_ms = 1000

    def __call__(self, command: Command, caller: Caller = ACME, namespace: str = "default") -> dict[str, Any]:
        envelope = stamp(command, caller, namespace=namespace)
        context = ApplyContext(envelope, 0, self.offset, self.log_time_ms)
        self.offset += 1
        self.log_time_ms += 10
        return self.model.apply(context)

    def rejected(self, command: Command, caller: Caller = ACME, namespace: str = "default") -> Rejected:
        """Apply a command that must be rejected; the rejection, after checking the digest did not change."""
        before = self.model.digest()
        try:
            self(command, caller, namespace)
        except Rejected as rejected:
            assert self.model.digest() == before
            return rejected
        raise AssertionError(f"{command.type} was applied")
