"""The cassette: step ids, a run's recorded steps as `GET /v1/runs/{run_id}/replay` answers them, fetching it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from agentlog._calls import Call, segment
from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient
from agentlog.errors import AgentlogError
from commands.limits import MAX_ID_BYTES

__all__ = [
    "CASSETTE_LIMIT",
    "Cassette",
    "CassetteEntry",
    "STEP_MARKER",
    "cassette_call",
    "fetch_cassette",
    "fetch_cassette_sync",
    "step_id",
    "step_of",
]

#: The marker between a run id and a step number in a recorder's command ids.
STEP_MARKER: Final = ":rec:"
#: Most cassette items fetched for one replay.
CASSETTE_LIMIT: Final = 100_000
_STEP_DIGITS_MAX: Final = 12


def _step_base(run_id: str) -> str:
    """The run part of a step id: the run id, or a hash of it when the id would not fit."""
    if len(run_id.encode()) + len(STEP_MARKER) + _STEP_DIGITS_MAX <= MAX_ID_BYTES:
        return run_id
    return hashlib.sha256(run_id.encode()).hexdigest()[:40]


def step_id(run_id: str, step: int) -> str:
    """The command id (and trace id) of step `step` of the recorder of `run_id`."""
    return f"{_step_base(run_id)}{STEP_MARKER}{step}"


def step_of(run_id: str, command_id: str) -> int | None:
    """The step number a command id names for `run_id`, or None if a recorder of that run did not issue it."""
    prefix = _step_base(run_id) + STEP_MARKER
    if not command_id.startswith(prefix):
        return None
    digits = command_id[len(prefix) :]
    return int(digits) if digits.isdigit() and len(digits) <= _STEP_DIGITS_MAX and digits[0] != "0" else None


@dataclass(frozen=True, slots=True)
class CassetteEntry:
    """One recorded step: the command as logged, where it sits, and its outcome."""

    seq: int
    type: str
    namespace: str | None
    command: dict[str, Any]
    command_id: str
    partition: int
    offset: int
    timestamp_ms: int
    event_seq: int | None
    outcome: dict[str, Any] | None

    def comparable(self) -> dict[str, Any]:
        """What replay compares: command type, namespace and the command."""
        return {"type": self.type, "namespace": self.namespace, "command": self.command}


@dataclass(frozen=True, slots=True)
class Cassette:
    """A run's recorded steps by step number; `other` counts the run's commands no recorder issued."""

    run_id: str
    entries: dict[int, CassetteEntry]
    other: int = 0
    truncated: bool = False

    @classmethod
    def from_json(cls, data: Any) -> Cassette:
        """Parse `GET /v1/runs/{run_id}/replay`."""
        run_id = str(data["run_id"])
        entries: dict[int, CassetteEntry] = {}
        other = 0
        for item in data["items"]:
            step = step_of(run_id, item["command_id"])
            if item.get("retry"):
                continue
            if step is None or step in entries:
                other += 1
                continue
            entries[step] = CassetteEntry(
                step,
                item["type"],
                item.get("namespace"),
                item["command"],
                item["command_id"],
                item["partition"],
                item["offset"],
                item["timestamp_ms"],
                item.get("event_seq"),
                item.get("outcome"),
            )
        return cls(run_id, dict(sorted(entries.items())), other, bool(data.get("truncated")))

    @property
    def steps(self) -> int:
        """The highest recorded step (0 when none)."""
        return max(self.entries, default=0)


def cassette_call(run_id: str, *, branch: str | None = None, limit: int = CASSETTE_LIMIT) -> Call[Cassette]:
    """The SDK call of `GET /v1/runs/{run_id}/replay` (on `branch`, default main), parsed into a `Cassette`."""
    path = f"/v1/runs/{segment(run_id)}/replay"
    params = {"limit": limit, "branch": branch}
    return Call("GET", path, Cassette.from_json, params=params, read=True, branch=branch)


def _checked(cassette: Cassette) -> Cassette:
    """`cassette`, unless the node cut it short (then AgentlogError `too_large`)."""
    if cassette.truncated:
        raise AgentlogError(0, "too_large", f"run {cassette.run_id} has more than {CASSETTE_LIMIT} commands")
    return cassette


async def fetch_cassette(client: AsyncAgentlogClient, run_id: str, *, branch: str | None = None) -> Cassette:
    """The recorded steps of `run_id` (NotFoundError if there is no such run)."""
    return _checked(await client.run(cassette_call(run_id, branch=branch)))


def fetch_cassette_sync(client: AgentlogClient, run_id: str, *, branch: str | None = None) -> Cassette:
    """The recorded steps of `run_id`, synchronously."""
    return _checked(client.run(cassette_call(run_id, branch=branch)))
