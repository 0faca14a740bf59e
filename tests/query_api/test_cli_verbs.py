"""`agentlog kv|runs|events` through click's CliRunner against a live node over real HTTP."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from query_api.cli.verbs import register
from tests.query_api.http_node import memory_settings, serve


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    """One node for the module; tests keep apart by tenant."""
    with serve(memory_settings()) as base_url:
        yield base_url


@pytest.fixture
def cli() -> click.Group:
    """A fresh `agentlog`-like group with the verbs registered (the real one is left alone)."""
    group = click.Group("agentlog")
    register(group)
    return group


@pytest.fixture
def env(node_url: str) -> dict[str, str]:
    """The environment of one test: the node's URL and a tenant of its own."""
    return {"AGENTLOG_URL": node_url, "AGENTLOG_TENANT": f"t-{uuid.uuid4().hex[:12]}", "AGENTLOG_AGENT_ID": "cli"}


def invoke(cli: click.Group, env: dict[str, str], *args: str, stdin: str | None = None) -> Result:
    """Run the CLI with `args`."""
    return CliRunner().invoke(cli, list(args), env=env, input=stdin)


def ok_json(result: Result) -> Any:
    """The JSON a successful invocation printed."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_register_adds_the_three_groups(cli: click.Group) -> None:
    assert sorted(cli.commands) == ["events", "kv", "runs"]
    assert sorted(cli.commands["runs"].commands) == ["begin", "end", "list", "show", "verify"]  # type: ignore[attr-defined]


def test_kv_put_get_list_delete(cli: click.Group, env: dict[str, str]) -> None:
    written = ok_json(
        invoke(cli, env, "kv", "put", "notes", "a/b", '{"x": 1}', "--ttl-s", "60", "--metadata", '{"t": 1}')
    )
    assert written["outcome"] == "applied"
    assert written["result"]["version"] == 1
    assert written["result"]["expires_at_ms"] is not None
    record = ok_json(invoke(cli, env, "kv", "get", "notes", "a/b"))
    assert (record["value"], record["metadata"], record["created_by"]) == ({"x": 1}, {"t": 1}, "cli")
    ok_json(invoke(cli, env, "kv", "put", "notes", "c", "-", stdin='"from stdin"'))
    page = ok_json(invoke(cli, env, "kv", "list", "notes"))
    assert [item["key"] for item in page["items"]] == ["a/b", "c"]
    assert page["next_cursor"] is None
    assert [item["key"] for item in ok_json(invoke(cli, env, "kv", "list", "notes", "--prefix", "c"))["items"]] == ["c"]
    first = ok_json(invoke(cli, env, "kv", "list", "notes", "--limit", "1"))
    assert first["next_cursor"] == "a/b"
    deleted = ok_json(invoke(cli, env, "kv", "delete", "notes", "a/b"))
    assert deleted["result"]["deleted"] is True


def test_kv_errors_print_the_problem_and_exit_1(cli: click.Group, env: dict[str, str]) -> None:
    missing = invoke(cli, env, "kv", "get", "notes", "nope")
    assert missing.exit_code == 1
    assert "no key 'nope'" in missing.stderr
    ok_json(invoke(cli, env, "kv", "put", "notes", "k", "1"))
    conflict = invoke(cli, env, "kv", "put", "notes", "k", "2", "--if-version", "0")
    assert conflict.exit_code == 1
    assert "version_conflict, HTTP 409" in conflict.stderr
    assert '"current_version": 1' in conflict.stderr
    invalid = invoke(cli, env, "kv", "put", "bad namespace!", "k", "1")
    assert invalid.exit_code == 1
    assert "namespace" in invalid.stderr


def test_malformed_json_is_a_usage_error(cli: click.Group, env: dict[str, str]) -> None:
    result = invoke(cli, env, "kv", "put", "notes", "k", "{not json")
    assert result.exit_code == 2
    assert "not JSON" in result.stderr
    result = invoke(cli, env, "runs", "begin", "--metadata", "[1]")
    assert result.exit_code == 2
    assert "JSON object" in result.stderr


def test_runs_begin_show_list_end_verify(cli: click.Group, env: dict[str, str]) -> None:
    begun = ok_json(invoke(cli, env, "runs", "begin", "--name", "plan", "--metadata", '{"user": "u1"}'))
    run_id = begun["result"]["run_id"]
    named = ok_json(invoke(cli, env, "runs", "begin", "--run-id", "run-2"))
    assert named["result"]["run_id"] == "run-2"
    shown = ok_json(invoke(cli, env, "runs", "show", run_id))
    assert (shown["name"], shown["metadata"], shown["status"]) == ("plan", {"user": "u1"}, "running")
    listed = ok_json(invoke(cli, env, "runs", "list"))
    assert [run["run_id"] for run in listed["items"]] == [run_id, "run-2"]
    ended = ok_json(invoke(cli, env, "runs", "end", run_id, "--status", "succeeded", "--result", '{"answer": 42}'))
    assert ended["result"]["status"] == "succeeded"
    assert [r["run_id"] for r in ok_json(invoke(cli, env, "runs", "list", "--status", "succeeded"))["items"]] == [
        run_id
    ]
    again = invoke(cli, env, "runs", "end", run_id, "--status", "failed")
    assert again.exit_code == 1
    assert "run_closed, HTTP 409" in again.stderr
    check = ok_json(invoke(cli, env, "runs", "verify", run_id))
    assert check == {"ok": True, "events": 0, "first_bad_seq": None, "reason": None}
    absent = invoke(cli, env, "runs", "show", "nope")
    assert absent.exit_code == 1
    assert "no run 'nope'" in absent.stderr
    assert invoke(cli, env, "runs", "verify", "nope").exit_code == 1
    assert invoke(cli, env, "runs", "end", run_id).exit_code == 2  # --status is required


def test_events_append_and_list(cli: click.Group, env: dict[str, str]) -> None:
    run_id = ok_json(invoke(cli, env, "runs", "begin"))["result"]["run_id"]
    first = ok_json(invoke(cli, env, "events", "append", run_id, "step", '{"n": 1}', "--thread-id", "main"))
    assert first["result"]["seq"] == 1
    ok_json(invoke(cli, env, "events", "append", run_id, "tool", "-", "--expected-seq", "1", stdin="[1, 2]"))
    stale = invoke(cli, env, "events", "append", run_id, "step", "null", "--expected-seq", "1")
    assert stale.exit_code == 1
    assert "version_conflict" in stale.stderr
    page = ok_json(invoke(cli, env, "events", "list", run_id))
    assert [(e["seq"], e["type"], e["payload"]) for e in page["items"]] == [(1, "step", {"n": 1}), (2, "tool", [1, 2])]
    assert page["items"][1]["prev_hash"] == first["result"]["hash"]
    assert [e["seq"] for e in ok_json(invoke(cli, env, "events", "list", run_id, "--type", "tool"))["items"]] == [2]
    assert [e["seq"] for e in ok_json(invoke(cli, env, "events", "list", run_id, "--thread-id", "main"))["items"]] == [
        1
    ]
    paged = ok_json(invoke(cli, env, "events", "list", run_id, "--limit", "1", "--from-seq", "2"))
    assert [e["seq"] for e in paged["items"]] == [2]
    assert paged["next_from_seq"] == 3
    assert ok_json(invoke(cli, env, "runs", "verify", run_id))["events"] == 2
    missing = invoke(cli, env, "events", "append", "nope", "step", "1")
    assert missing.exit_code == 1
    assert "not_found, HTTP 404" in missing.stderr


def test_url_and_tenant_options_override_the_environment(cli: click.Group, env: dict[str, str]) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    args = ("--url", env["AGENTLOG_URL"], "--tenant", tenant)
    ok_json(CliRunner().invoke(cli, ["kv", "put", "ns", "k", "1", *args]))
    assert invoke(cli, env, "kv", "get", "ns", "k").exit_code == 1  # another tenant
    assert ok_json(CliRunner().invoke(cli, ["kv", "get", "ns", "k", *args]))["value"] == 1


def test_an_unreachable_node_exits_1(cli: click.Group, env: dict[str, str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = invoke(cli, {**env, "AGENTLOG_URL": f"http://127.0.0.1:{port}"}, "runs", "list")
    assert result.exit_code == 1
    assert "transport, no answer" in result.stderr
