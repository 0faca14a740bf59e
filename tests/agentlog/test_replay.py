"""The run replay harness: record a sample agent live against a real HTTP node, replay it without calling anything."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from agentlog import AgentlogClient, AsyncAgentlogClient, ConflictError
from agentlog.replay import (
    Cassette,
    RecordedError,
    Recorder,
    ReplayDivergence,
    SyncRecorder,
    fetch_cassette,
    record_run,
    record_run_sync,
    replay_run,
    replay_run_sync,
    step_id,
    step_of,
)
from tests.query_api.http_node import HttpNode

pytest_plugins = ("tests.query_api.http_node",)

pytestmark = pytest.mark.anyio

Agent = Callable[[Recorder], Awaitable[Any]]


class Tools:
    """A search tool, a price tool and a toy model that note every call (replay must make none)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def search(self, args: dict[str, Any]) -> dict[str, Any]:
        """Two deterministic hits for the query."""
        self.calls.append("search")
        return {"hits": [f"{args['q']} #1", f"{args['q']} #2"]}

    async def price(self, args: dict[str, Any]) -> dict[str, Any]:
        """A price that depends on the route (an async tool)."""
        self.calls.append("price")
        return {"route": args["route"], "eur": 10.5 * len(args["route"])}

    def llm(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        """A 'model' whose answer depends on its prompt."""
        self.calls.append("llm")
        return {"choice": "TP-101", "why": f"cheapest of {len(messages[0]['content'])} chars", "scores": (0.5, 0.25)}


def sample_agent(tools: Tools, route: str = "LIS-OPO") -> Agent:
    """A small deterministic agent: event, two tool calls, a model call, a decision event, a kv write (7 steps)."""

    async def agent(rec: Recorder) -> str:
        await rec.event("task", {"goal": "book a trip"})  # step 1
        hits = await rec.tool_call("search", {"q": "flights"}, tools.search)  # step 2
        quote = await rec.tool_call("price", {"route": route}, tools.price)  # step 3
        prompt = [{"role": "user", "content": f"pick one of {hits['hits']} at {quote['eur']} EUR"}]
        answer = await rec.model_call("toy-llm", prompt, tools.llm)  # steps 4 (input) and 5 (output)
        await rec.event("decision", {"choice": answer["choice"], "scores": answer["scores"]})  # step 6
        written = await rec.put("plans", "trip", {"choice": answer["choice"], "eur": quote["eur"]})  # step 7
        assert written["version"] == 1
        return str(answer["choice"])

    return agent


async def record_sample(base_url: str, agent: Agent) -> str:
    """Record `agent` live into a new run; its id."""
    async with AsyncAgentlogClient(base_url, agent_id="planner") as client:
        recorded = await record_run(client, agent, name="trip")
    assert recorded.steps == 7
    assert recorded.result == "TP-101"
    return recorded.run_id


async def test_record_then_replay_has_no_divergence_and_calls_nothing(http_node: HttpNode) -> None:
    live = Tools()
    run_id = await record_sample(http_node.base_url, sample_agent(live))
    assert live.calls == ["search", "price", "llm"]

    replayed = Tools()
    async with AsyncAgentlogClient(http_node.base_url) as client:
        report = await replay_run(client, run_id, sample_agent(replayed))
    assert report.ok, str(report)
    assert report.divergence is None
    assert (report.recorded, report.replayed) == (7, 7)
    assert report.result == "TP-101"
    assert replayed.calls == []
    assert "7/7 steps matched, no divergence" in str(report)


async def test_the_recording_is_in_the_run_events_traces_and_kv(http_node: HttpNode) -> None:
    run_id = await record_sample(http_node.base_url, sample_agent(Tools()))
    client = http_node.client
    events = client.get(f"/v1/runs/{run_id}/events").json()["items"]
    assert [(e["seq"], e["type"]) for e in events] == [(1, "task"), (2, "decision")]
    assert events[1]["payload"] == {"choice": "TP-101", "scores": [0.5, 0.25]}
    assert events[0]["event_id"] == step_id(run_id, 1)
    traces = client.get(f"/v1/runs/{run_id}/traces").json()["items"]
    assert [(t["trace_id"], t["kind"]) for t in traces] == [
        (step_id(run_id, 2), "tool_call"),
        (step_id(run_id, 3), "tool_call"),
        (step_id(run_id, 4), "model_input"),
        (step_id(run_id, 5), "model_output"),
    ]
    assert traces[1]["data"] == {
        "name": "price",
        "args": {"route": "LIS-OPO"},
        "output": {"route": "LIS-OPO", "eur": 73.5},
    }
    assert traces[3]["parent_id"] == step_id(run_id, 4)
    record = client.get("/v1/kv/plans/trip").json()
    assert record["value"] == {"choice": "TP-101", "eur": 73.5}
    assert client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded"


async def test_changed_tool_args_at_step_3_diverge_exactly_there_with_a_readable_diff(http_node: HttpNode) -> None:
    run_id = await record_sample(http_node.base_url, sample_agent(Tools()))
    changed = Tools()
    async with AsyncAgentlogClient(http_node.base_url) as client:
        report = await replay_run(client, run_id, sample_agent(changed, route="LIS-FAO"))
    assert not report.ok
    divergence = report.divergence
    assert divergence is not None
    assert (divergence.seq, divergence.kind, divergence.command_type) == (3, "mismatch", "trace.record")
    assert report.replayed == 2
    assert changed.calls == []  # neither the changed tool nor anything after it ran
    assert divergence.expected is not None
    assert divergence.actual is not None
    assert divergence.expected["command"]["data"]["args"] == {"route": "LIS-OPO"}
    assert divergence.actual["command"]["data"]["args"] == {"route": "LIS-FAO"}
    assert '-        "route": "LIS-OPO"' in divergence.diff
    assert '+        "route": "LIS-FAO"' in divergence.diff
    assert divergence.diff.startswith("--- recorded step 3\n+++ replayed step 3")
    assert divergence.position is not None
    text = str(report)
    assert "2/7 steps matched" in text
    assert "step 3 [trace.record]" in text
    assert "the agent issued a different command" in text


async def test_an_extra_and_a_missing_step_are_reported(http_node: HttpNode) -> None:
    run_id = await record_sample(http_node.base_url, sample_agent(Tools()))
    async with AsyncAgentlogClient(http_node.base_url) as client:
        cassette = await fetch_cassette(client, run_id)

    async def longer(rec: Recorder) -> None:
        await sample_agent(Tools())(rec)
        await rec.event("afterthought", {"n": 1})

    report = await replay_run(None, run_id, longer, cassette=cassette)
    assert report.divergence is not None
    assert (report.divergence.seq, report.divergence.kind) == (8, "extra")
    assert report.divergence.actual is not None
    assert report.divergence.actual["type"] == "event.append"
    assert report.replayed == 7

    async def shorter(rec: Recorder) -> None:
        tools = Tools()
        await rec.event("task", {"goal": "book a trip"})
        await rec.tool_call("search", {"q": "flights"}, tools.search)
        await rec.tool_call("price", {"route": "LIS-OPO"}, tools.price)

    report = await replay_run(None, run_id, shorter, cassette=cassette)
    assert report.divergence is not None
    assert (report.divergence.seq, report.divergence.kind) == (4, "missing")
    assert report.divergence.expected is not None
    assert report.divergence.expected["command"]["kind"] == "model_input"
    assert report.replayed == 3


async def test_a_swallowed_divergence_still_stops_and_is_reported(http_node: HttpNode) -> None:
    run_id = await record_sample(http_node.base_url, sample_agent(Tools()))

    async def stubborn(rec: Recorder) -> str:
        with contextlib.suppress(ReplayDivergence):
            await rec.event("other-task", {})
        with pytest.raises(ReplayDivergence):
            await rec.event("task", {"goal": "book a trip"})
        return "done"

    async with AsyncAgentlogClient(http_node.base_url) as client:
        report = await replay_run(client, run_id, stubborn)
    assert report.divergence is not None
    assert report.divergence.seq == 1
    assert report.result == "done"


async def test_recorded_tool_errors_and_rejections_replay_identically(http_node: HttpNode) -> None:
    calls: list[str] = []

    def flaky(args: dict[str, Any]) -> Any:
        calls.append("flaky")
        raise ValueError(f"service down for {args['id']}")

    async def agent(rec: Recorder) -> list[str]:
        notes = []
        try:
            await rec.tool_call("flaky", {"id": 7}, flaky)
        except Exception as error:  # the agent handles the failure: a RecordedError on replay
            notes.append(str(error))
        await rec.put("locks", "slot", "mine", if_version=0)
        try:
            await rec.put("locks", "slot", "again", if_version=0)
        except ConflictError as error:
            notes.append(f"conflict at {error.extra.get('current_version')}")
        await rec.event("notes", notes)
        return notes

    async with AsyncAgentlogClient(http_node.base_url) as client:
        recorded = await record_run(client, agent)
        assert recorded.result == ["service down for 7", "conflict at 1"]
        assert calls == ["flaky"]
        report = await replay_run(client, recorded.run_id, agent)
    assert report.ok, str(report)
    assert report.result == recorded.result
    assert calls == ["flaky"]

    async def unhandled(rec: Recorder) -> None:
        await rec.tool_call("flaky", {"id": 7}, flaky)

    async with AsyncAgentlogClient(http_node.base_url) as client:
        report = await replay_run(client, recorded.run_id, unhandled)
    assert report.error == "RecordedError: service down for 7"
    assert report.divergence is not None  # the agent died at step 1, so the recorded step 2 never came
    assert (report.divergence.seq, report.divergence.kind) == (2, "missing")


def test_sync_recorder_and_harness(http_node: HttpNode) -> None:
    calls: list[str] = []

    def double(args: dict[str, Any]) -> int:
        calls.append("double")
        return int(args["x"]) * 2

    def agent(rec: SyncRecorder) -> int:
        doubled = rec.tool_call("double", {"x": 21}, double)
        rec.trace("decision", {"answer": doubled})
        rec.put("answers", "life", doubled, metadata={"source": "double"})
        return int(doubled)

    with AgentlogClient(http_node.base_url) as client:
        recorded = record_run_sync(client, agent, run_id="sync-run")
        assert (recorded.run_id, recorded.steps, recorded.result) == ("sync-run", 3, 42)
        report = replay_run_sync(client, "sync-run", agent)
        assert report.ok, str(report)
        assert report.result == 42
        assert calls == ["double"]

        def wrong(rec: SyncRecorder) -> None:
            rec.tool_call("double", {"x": 21}, double)
            rec.trace("decision", {"answer": 43})

        report = replay_run_sync(client, "sync-run", wrong)
    assert report.divergence is not None
    assert (report.divergence.seq, report.divergence.kind) == (2, "mismatch")
    assert '"answer": 43' in report.divergence.diff


def test_step_ids_sort_and_parse() -> None:
    assert step_id("run-1", 12) == "run-1:rec:12"
    assert step_of("run-1", "run-1:rec:12") == 12
    assert step_of("run-1", "run-2:rec:12") is None
    assert step_of("run-1", "run-1:rec:012") is None
    assert step_of("run-1", "run-1") is None
    long_run = "r" * 250
    long_id = step_id(long_run, 3)
    assert len(long_id) <= 256
    assert step_of(long_run, long_id) == 3


def test_cassette_parsing_keeps_recorder_steps_and_counts_the_rest() -> None:
    def item(command_id: str, offset: int, retry: bool = False) -> dict[str, Any]:
        return {
            "command_id": command_id,
            "type": "event.append",
            "namespace": None,
            "command": {"type": "event.append", "event_type": "x"},
            "partition": 0,
            "offset": offset,
            "timestamp_ms": 1,
            "event_seq": None,
            "outcome": None,
            "retry": retry,
        }

    data = {
        "run_id": "r",
        "items": [item("r", 0), item("r:rec:2", 2), item("r:rec:1", 1), item("r:rec:1", 3, retry=True)],
    }
    cassette = Cassette.from_json(data)
    assert list(cassette.entries) == [1, 2]
    assert cassette.entries[1].offset == 1
    assert (cassette.other, cassette.steps, cassette.truncated) == (1, 2, False)


def test_recorder_refuses_non_json_outputs_and_replay_without_a_cassette() -> None:
    with pytest.raises(ValueError, match="cassette"):
        SyncRecorder(None, "r", "replay")
    with pytest.raises(ValueError, match="client"):
        SyncRecorder(None, "r", "record")
    with pytest.raises(RecordedError) as caught:
        raise RecordedError("KeyError", "boom")
    assert (caught.value.type_name, str(caught.value)) == ("KeyError", "boom")
