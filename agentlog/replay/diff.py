"""Where a replay parts from its recording: the divergence with its unified diff, and what is raised into the agent."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Divergence", "RecordedError", "ReplayDivergence", "command_diff"]


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first step where the agent and its recording part: what was recorded, what the agent issued, a diff."""

    seq: int
    kind: Literal["mismatch", "extra", "missing"]
    expected: dict[str, Any] | None
    actual: dict[str, Any] | None
    diff: str
    position: tuple[int, int] | None = None
    event_seq: int | None = None

    @property
    def command_type(self) -> str | None:
        """The command type the recording has at this step (else the agent's)."""
        side = self.expected or self.actual
        return None if side is None else str(side["type"])

    def __str__(self) -> str:
        what = {
            "mismatch": "the agent issued a different command",
            "extra": "the agent issued a command the recording does not have",
            "missing": "the agent stopped before this recorded command",
        }[self.kind]
        where = f" (recorded at {self.position[0]}:{self.position[1]})" if self.position else ""
        return f"step {self.seq} [{self.command_type}]{where}: {what}\n{self.diff}".rstrip()


class ReplayDivergence(Exception):
    """Raised into the agent at the first step that differs from the recording (it stops the replay)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(str(divergence))
        self.divergence = divergence


class RecordedError(Exception):
    """A tool or model call that failed while recording, raised again at the same step on replay."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.message = message


def _pretty(value: Any) -> str:
    """Canonical pretty JSON (sorted keys, two-space indent) for diffs."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def command_diff(step: int, expected: Any, actual: Any) -> str:
    """A unified diff of the recorded and the replayed command."""
    lines = difflib.unified_diff(
        _pretty(expected).splitlines() if expected is not None else [],
        _pretty(actual).splitlines() if actual is not None else [],
        fromfile=f"recorded step {step}",
        tofile=f"replayed step {step}",
        lineterm="",
    )
    return "\n".join(lines)
