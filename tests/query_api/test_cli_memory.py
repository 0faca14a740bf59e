"""`agentlog memory` verbs through click's CliRunner against a live node over real HTTP."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from query_api.cli.main import main
from query_api.cli.memory import register
from tests.query_api.http_node import memory_settings, serve


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    with serve(memory_settings()) as base_url:
        yield base_url


@pytest.fixture
def cli() -> click.Group:
    group = click.Group("agentlog")
    register(group)
    return group


@pytest.fixture
def env(node_url: str) -> dict[str, str]:
    return {"AGENTLOG_URL": node_url, "AGENTLOG_TENANT": f"t-{uuid.uuid4().hex[:12]}", "AGENTLOG_AGENT_ID": "cli"}


def ok_json(cli: click.Group, env: dict[str, str], *args: str) -> Any:
    result: Result = CliRunner().invoke(cli, list(args), env=env)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_real_command_has_the_memory_group() -> None:
    assert sorted(main.commands["memory"].commands) == ["add", "forget", "history", "index", "list", "search", "show"]  # type: ignore[attr-defined]
    assert "--embedder" in [option for param in main.commands["serve"].params for option in param.opts]


def test_add_search_show_history_forget(cli: click.Group, env: dict[str, str]) -> None:
    added = ok_json(
        cli,
        env,
        "memory",
        "add",
        "User prefers dark mode",
        "--user",
        "ludde",
        "--tag",
        "ui",
        "--metadata",
        '{"source": "chat"}',
    )
    assert added["result"] == {"id": 1, "version": 1, "created": True}
    ok_json(cli, env, "memory", "add", "The deploy runs on Fridays", "--type", "procedural")
    found = ok_json(cli, env, "memory", "search", "dark mode", "--user", "ludde")
    assert [hit["memory"]["id"] for hit in found["hits"]] == [1]
    assert found["hits"][0]["lexical"]["rank"] == 1
    shown = ok_json(cli, env, "memory", "show", "1")
    assert (shown["content"], shown["tags"], shown["metadata"]) == (
        "User prefers dark mode",
        ["ui"],
        {"source": "chat"},
    )
    forgot = ok_json(cli, env, "memory", "forget", "1", "--reason", "outdated preference")
    assert forgot["result"]["invalidated"] is True
    history = ok_json(cli, env, "memory", "history", "1")
    assert [(h["operation"], h["reason"], h["changed_by"]) for h in history["items"]] == [
        ("add", None, "cli"),
        ("invalidate", "outdated preference", "cli"),
    ]
    assert ok_json(cli, env, "memory", "search", "dark mode", "--mode", "lexical")["hits"] == []
    before = ok_json(cli, env, "memory", "search", "dark mode", "--as-of", added["token"])
    assert [hit["memory"]["id"] for hit in before["hits"]][:1] == [1]
    assert [m["id"] for m in ok_json(cli, env, "memory", "list")["items"]] == [2]
    assert [m["id"] for m in ok_json(cli, env, "memory", "list", "--all", "--tag", "ui")["items"]] == [1]
    assert ok_json(cli, env, "memory", "index", "--lists", "2")["result"]["lists"] == 2


def test_failures_exit_1_with_the_problem(cli: click.Group, env: dict[str, str]) -> None:
    result = CliRunner().invoke(cli, ["memory", "show", "42"], env=env)
    assert result.exit_code == 1
    assert "not_found, HTTP 404" in result.output
    result = CliRunner().invoke(cli, ["memory", "add", "x", "--metadata", "[1]"], env=env)
    assert result.exit_code == 2
