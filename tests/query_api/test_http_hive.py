"""The hive over real HTTP and WebSocket: channels (a share reaches a live subscriber), the agent
registry, proposals and votes (once per agent, decided at quorum), and the CLI verbs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import orjson
import pytest
from click.testing import CliRunner
from websockets.asyncio.client import connect

from query_api.cli.main import main
from tests.query_api.http_node import CLIENT_TIMEOUT_S, assert_problem, memory_settings, serve

#: A hang guard for frames, not a timing assertion.
FRAME_WAIT_S = 30.0


@pytest.fixture
def base_url() -> Iterator[str]:
    with serve(memory_settings(), websockets=True) as base:
        yield base


def agent(base: str, agent_id: str, tenant: str = "default") -> httpx.Client:
    return httpx.Client(base_url=base, timeout=CLIENT_TIMEOUT_S, headers={"X-Agent-Id": agent_id, "X-Tenant": tenant})


def test_a_share_reaches_a_live_channel_subscriber_and_the_feed(base_url: str) -> None:
    with agent(base_url, "alice") as alice, agent(base_url, "bob") as bob:
        assert alice.post("/v1/channels", json={"channel": "project:x"}).status_code == 200
        assert_problem(alice.post("/v1/channels", json={"channel": "project:x"}), 409, "already_exists")
        assert bob.post("/v1/channels/project:x/subscribe", json={}).status_code == 200

        async def scenario() -> dict[str, object]:
            url = "ws" + base_url[4:] + "/v1/ws?channel=project:x"
            async with connect(url) as ws:
                await asyncio.wait_for(ws.recv(), FRAME_WAIT_S)  # subscribed
                kv = await asyncio.to_thread(alice.put, "/v1/kv/notes/fact-1", json={"value": "the sky is blue"})
                assert kv.status_code == 200
                shared = await asyncio.to_thread(
                    alice.post,
                    "/v1/channels/project:x/share",
                    json={"kind": "kv", "ref": "notes/fact-1", "note": "fyi"},
                )
                assert shared.status_code == 200, shared.text
                frame: dict[str, object] = orjson.loads(await asyncio.wait_for(ws.recv(), FRAME_WAIT_S))
                return frame

        frame = asyncio.run(scenario())
        assert frame["command_type"] == "channel.share"
        assert frame["agent_id"] == "alice"
        assert frame["command"] == {"type": "channel.share", "kind": "kv", "ref": "notes/fact-1", "note": "fyi"}
        for i in range(3):
            bob.post("/v1/channels/project:x/share", json={"kind": "memory", "ref": f"m{i}"})
        page = bob.get("/v1/channels/project:x/feed", params={"limit": 2}).json()
        assert [item["seq"] for item in page["items"]] == [1, 2]
        assert page["next_cursor"] == 2
        rest = bob.get("/v1/channels/project:x/feed", params={"after": 2}).json()
        assert [item["ref"] for item in rest["items"]] == ["m1", "m2"]
        assert rest["next_cursor"] is None
        listed = bob.get("/v1/channels").json()["items"]
        assert [(c["channel"], c["subscribers"], c["feed_length"]) for c in listed] == [("project:x", ["bob"], 4)]
        assert_problem(bob.post("/v1/channels/nowhere/share", json={"kind": "kv", "ref": "x"}), 404, "not_found")
    with agent(base_url, "mallory", tenant="other") as mallory:
        assert mallory.get("/v1/channels").json() == {"items": []}
        assert_problem(mallory.get("/v1/channels/project:x/feed"), 404, "not_found")


def test_private_channels_take_writes_from_their_creator_only(base_url: str) -> None:
    with agent(base_url, "alice") as alice, agent(base_url, "bob") as bob:
        assert alice.post("/v1/channels", json={"channel": "secret", "visibility": "private"}).status_code == 200
        assert alice.post("/v1/channels/secret/share", json={"kind": "kv", "ref": "a/b"}).status_code == 200
        assert_problem(bob.post("/v1/channels/secret/share", json={"kind": "kv", "ref": "a/b"}), 403, "forbidden")


def test_agent_registry_heartbeat_and_whoami(base_url: str) -> None:
    with agent(base_url, "planner") as planner, httpx.Client(base_url=base_url) as anonymous:
        assert_problem(planner.post("/v1/agents/planner/heartbeat", json={}), 404, "not_found")
        registered = planner.post(
            "/v1/agents", json={"name": "Planner", "agent_type": "llm", "capabilities": ["plan", "code"]}
        )
        assert registered.status_code == 200, registered.text
        assert planner.post("/v1/agents/planner/heartbeat", json={"busy": True}).status_code == 200
        me = planner.get("/v1/agents/planner").json()
        assert (me["name"], me["capabilities"], me["status"]) == ("Planner", ["code", "plan"], "busy")
        planner.post("/v1/channels", json={"channel": "ops"})
        planner.post("/v1/channels/ops/subscribe", json={})
        who = planner.get("/v1/whoami").json()
        assert (who["agent_id"], who["agent"]["agent_type"], who["channels"]) == ("planner", "llm", ["ops"])
        assert [a["agent_id"] for a in planner.get("/v1/agents").json()["items"]] == ["planner"]
        assert_problem(planner.post("/v1/agents/someone/heartbeat", json={}), 403, "forbidden")
        # An agent is its credentials: a write without an agent identity is refused.
        assert_problem(anonymous.post("/v1/agents", json={"name": "x"}), 422, "invalid")


def test_votes_count_once_per_agent_and_the_quorum_decides(base_url: str) -> None:
    with agent(base_url, "a1") as a1, agent(base_url, "a2") as a2, agent(base_url, "a3") as a3:
        created = a1.post("/v1/proposals", json={"proposal_id": "ship-it", "title": "Ship?", "quorum": 2})
        assert created.status_code == 200
        first = a1.post("/v1/proposals/ship-it/vote", json={"vote": "yes"}).json()
        assert first["result"] == {"proposal_id": "ship-it", "tally": {"yes": 1, "no": 0}, "decision": None}
        again = a1.post("/v1/proposals/ship-it/vote", json={"vote": "yes"})
        assert_problem(again, 409, "already_exists")
        assert a2.post("/v1/proposals/ship-it/vote", json={"vote": "no"}).json()["result"]["decision"] is None
        decided = a3.post("/v1/proposals/ship-it/vote", json={"vote": "yes"}).json()["result"]
        assert decided == {"proposal_id": "ship-it", "tally": {"yes": 2, "no": 1}, "decision": "accepted"}
        assert_problem(a2.post("/v1/proposals/ship-it/vote", json={"vote": "yes"}), 422, "invalid")
        proposal = a2.get("/v1/proposals/ship-it").json()
        assert proposal["votes"] == {"a1": "yes", "a2": "no", "a3": "yes"}
        assert proposal["decision"] == "accepted"
        assert proposal["decided_at_ms"] is not None


def test_cli_channels_and_agents(base_url: str) -> None:
    runner = CliRunner()
    common = ["--url", base_url, "--agent-id", "cli-agent"]
    assert runner.invoke(main, ["channels", "create", "global", *common]).exit_code == 0
    shared = runner.invoke(main, ["channels", "share", "global", "kv", "notes/a", "--note", "hi", *common])
    assert shared.exit_code == 0, shared.output
    feed = json.loads(runner.invoke(main, ["channels", "feed", "global", *common]).output)
    assert [item["ref"] for item in feed["items"]] == ["notes/a"]
    streamed = runner.invoke(
        main, ["channels", "subscribe", "global", "--url", base_url, "--after", "", "--limit", "2"]
    )
    assert streamed.exit_code == 0, streamed.output
    frames = [json.loads(line) for line in streamed.output.splitlines()]
    assert [f["command_type"] for f in frames] == ["channel.create", "channel.share"]
    assert runner.invoke(main, ["agents", "register", "Cli", "--capability", "x", *common]).exit_code == 0
    assert runner.invoke(main, ["agents", "heartbeat", "--busy", *common]).exit_code == 0
    who = json.loads(runner.invoke(main, ["agents", "whoami", *common]).output)
    assert (who["agent"]["name"], who["agent"]["status"]) == ("Cli", "busy")
