"""Write barriers over real HTTP (invariant 6): a denied write is in the log, answered 403 `forbidden`,
changes no state, and is listed by `GET /v1/audit/denials` and `agentlog audit denials`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from query_api.cli.main import main
from tests.query_api.http_node import CLIENT_TIMEOUT_S, assert_problem, memory_settings, serve

KEYS = {
    "admin": {"tenant": "acme", "agent_id": "operator", "role": "admin"},
    "search-tool": {"tenant": "acme", "agent_id": "planner", "tool_id": "search"},
    "shell-tool": {"tenant": "acme", "agent_id": "planner", "tool_id": "shell"},
    "intern": {"tenant": "acme", "agent_id": "intern", "tool_id": "search"},
    "other-tenant": {"tenant": "globex", "agent_id": "intern", "tool_id": "shell", "role": "admin"},
}


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": KEYS}))
    with serve(memory_settings(api_keys_file=keys)) as base_url:
        yield base_url


def client(base_url: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S, headers={"Authorization": f"Bearer {key}"})


def _state(admin: httpx.Client) -> tuple[dict[str, str], list[int]]:
    status = admin.get("/v1/status").json()
    digests = {name: value for name, value in status["digests"].items() if name != "outcomes"}
    return digests, [p["end_offset"] for p in status["partitions"]]


def test_a_denied_write_is_logged_rejected_unapplied_and_listed(node: str) -> None:
    with (
        client(node, "admin") as admin,
        client(node, "search-tool") as search,
        client(node, "shell-tool") as shell,
        client(node, "intern") as intern,
        client(node, "other-tenant") as other,
    ):
        barrier = {"agents": ["planner", "operator"], "tools": {"search": ["cache/"]}}
        made = admin.put("/v1/namespaces/tools/barrier", json=barrier)
        assert made.status_code == 200, made.text
        assert_problem(search.put("/v1/namespaces/tools/barrier", json={}), 403, "forbidden")  # writers cannot
        assert search.get("/v1/namespaces/tools/barrier").json() == {
            "namespace": "tools",
            "agents": ["operator", "planner"],
            "tools": {"search": ["cache/"]},
        }

        allowed = search.put("/v1/kv/tools/cache/q1", json={"value": "result"})
        assert allowed.status_code == 200, allowed.text

        before = _state(admin)
        denied = [
            (search.put("/v1/kv/tools/secrets/k", json={"value": 1, "command_id": "deny-1"}), "secrets/k"),
            (shell.put("/v1/kv/tools/cache/q2", json={"value": 1, "command_id": "deny-2"}), "cache/q2"),
            (intern.put("/v1/kv/tools/cache/q3", json={"value": 1, "command_id": "deny-3"}), "cache/q3"),
            (search.delete("/v1/kv/tools", params={"command_id": "deny-4"}), None),  # clear: the whole namespace
        ]
        for response, _ in denied:
            problem = assert_problem(response, 403, "forbidden")
            assert problem["barrier"] == "tools"
            assert "write" in problem  # it is in the log: the problem carries its position
        txn = {
            "writes": [
                {"op": "kv.put", "namespace": "tools", "key": "secrets/t", "value": 1},
                {"op": "kv.put", "key": "free", "value": 1},
            ],
            "namespace": "tools",
            "command_id": "deny-5",
        }
        assert_problem(search.post("/v1/txn", json=txn), 403, "forbidden")
        after = _state(admin)
        assert after[0] == before[0]  # no read model changed
        assert sum(after[1]) == sum(before[1]) + 5  # every denied command is in the log
        assert search.get("/v1/kv/tools/secrets/k").status_code == 404
        assert search.get("/v1/kv/tools/cache/q1").json()["value"] == "result"  # the clear changed nothing

        listed = admin.get("/v1/audit/denials", params={"namespace": "tools"})
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        assert [item["command_id"] for item in items] == ["deny-1", "deny-2", "deny-3", "deny-4", "deny-5"]
        assert [item["keys"] for item in items[:4]] == [["secrets/k"], ["cache/q2"], ["cache/q3"], None]
        assert items[0]["reason"] == "tool 'search' may write only keys starting ['cache/'], not 'secrets/k'"
        assert items[1]["reason"] == "tool 'shell' may not write here"
        assert items[2]["reason"] == "agent 'intern' may not write here"
        assert (items[0]["agent_id"], items[0]["tool_id"], items[0]["type"]) == ("planner", "search", "kv.put")
        logged = admin.get("/v1/log").text.splitlines()
        assert any('"deny-1"' in line for line in logged)  # the raw log holds the denied command
        assert_problem(search.get("/v1/audit/denials"), 403, "forbidden")

        # another tenant's namespace of the same name has no barrier, and sees none of acme's denials
        assert other.put("/v1/kv/tools/secrets/k", json={"value": 1}).status_code == 200
        assert other.get("/v1/audit/denials").json()["items"] == []

        cli = CliRunner().invoke(main, ["audit", "denials", "--url", node, "--api-key", "admin", "--limit", "2"])
        assert cli.exit_code == 0, cli.output
        printed = [json.loads(line) for line in cli.output.splitlines()]
        assert [item["command_id"] for item in printed] == ["deny-4", "deny-5"]
        refused = CliRunner().invoke(main, ["audit", "denials", "--url", node, "--api-key", "search-tool"])
        assert refused.exit_code == 1

        assert admin.put("/v1/namespaces/tools/barrier", json={"agents": None, "tools": None}).status_code == 200
        assert intern.put("/v1/kv/tools/secrets/k", json={"value": 2}).status_code == 200  # barrier removed
