"""The harness: record a run live, replay an agent against it, and the report of a replay."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from agentlog.aclient import AsyncAgentlogClient
from agentlog.client import AgentlogClient
from agentlog.replay.cassette import Cassette, fetch_cassette, fetch_cassette_sync
from agentlog.replay.diff import Divergence, ReplayDivergence
from agentlog.replay.recorder import Recorder, SyncRecorder

__all__ = ["RecordedRun", "ReplayReport", "record_run", "record_run_sync", "replay_run", "replay_run_sync"]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """The outcome of replaying an agent against a run's recording."""

    run_id: str
    recorded: int
    replayed: int
    divergence: Divergence | None
    error: str | None = None
    result: Any = None

    @property
    def ok(self) -> bool:
        """True when the agent issued exactly the recorded steps and returned normally."""
        return self.divergence is None and self.error is None

    def __str__(self) -> str:
        head = f"replay of run {self.run_id}: {self.replayed}/{self.recorded} steps matched"
        if self.ok:
            return head + ", no divergence"
        lines = [head]
        if self.divergence is not None:
            lines.append(str(self.divergence))
        if self.error is not None:
            lines.append(f"the agent raised {self.error}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A recorded run: its id, how many steps were logged, what the agent returned."""

    run_id: str
    steps: int
    result: Any


def _report(recorder: Recorder | SyncRecorder, cassette: Cassette, error: str | None, result: Any) -> ReplayReport:
    """The report of a finished replay."""
    divergence = recorder.finish()
    replayed = recorder.steps if divergence is None or divergence.kind == "missing" else divergence.seq - 1
    return ReplayReport(cassette.run_id, len(cassette.entries), replayed, divergence, error, result)


async def replay_run(
    client: AsyncAgentlogClient | None,
    run_id: str,
    agent: Callable[[Recorder], Awaitable[Any]],
    *,
    cassette: Cassette | None = None,
    branch: str | None = None,
) -> ReplayReport:
    """Run `agent` against the recording of `run_id` (no tool or model is called) and report the first divergence."""
    if cassette is None:
        if client is None:
            raise ValueError("give a client or a cassette")
        cassette = await fetch_cassette(client, run_id, branch=branch)
    recorder = Recorder(client, run_id, "replay", cassette, branch=branch)
    error: str | None = None
    result: Any = None
    try:
        result = await agent(recorder)
    except ReplayDivergence:
        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _report(recorder, cassette, error, result)


def replay_run_sync(
    client: AgentlogClient | None,
    run_id: str,
    agent: Callable[[SyncRecorder], Any],
    *,
    cassette: Cassette | None = None,
    branch: str | None = None,
) -> ReplayReport:
    """`replay_run` for a synchronous agent."""
    if cassette is None:
        if client is None:
            raise ValueError("give a client or a cassette")
        cassette = fetch_cassette_sync(client, run_id, branch=branch)
    recorder = SyncRecorder(client, run_id, "replay", cassette, branch=branch)
    error: str | None = None
    result: Any = None
    try:
        result = agent(recorder)
    except ReplayDivergence:
        pass
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    return _report(recorder, cassette, error, result)


async def record_run(
    client: AsyncAgentlogClient,
    agent: Callable[[Recorder], Awaitable[Any]],
    *,
    run_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    branch: str | None = None,
) -> RecordedRun:
    """Begin a run, run `agent` live with a recording `Recorder`, end the run (failed if the agent raised)."""
    begun = await client.begin_run(run_id, name=name, metadata=metadata, branch=branch)
    recorder = Recorder(client, str(begun.result["run_id"]), "record", branch=branch)
    try:
        result = await agent(recorder)
    except BaseException as error:
        failure = {"error": f"{type(error).__name__}: {error}"}
        await client.end_run(recorder.run_id, "failed", result=failure, branch=branch)
        raise
    await client.end_run(recorder.run_id, "succeeded", branch=branch)
    return RecordedRun(recorder.run_id, recorder.steps, result)


def record_run_sync(
    client: AgentlogClient,
    agent: Callable[[SyncRecorder], Any],
    *,
    run_id: str | None = None,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    branch: str | None = None,
) -> RecordedRun:
    """`record_run` for a synchronous agent."""
    begun = client.begin_run(run_id, name=name, metadata=metadata, branch=branch)
    recorder = SyncRecorder(client, str(begun.result["run_id"]), "record", branch=branch)
    try:
        result = agent(recorder)
    except BaseException as error:
        client.end_run(recorder.run_id, "failed", result={"error": f"{type(error).__name__}: {error}"}, branch=branch)
        raise
    client.end_run(recorder.run_id, "succeeded", branch=branch)
    return RecordedRun(recorder.run_id, recorder.steps, result)
