"""`agentlog replay`, `agentlog verify` and `agentlog branch` through click's CliRunner."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result

import projections.timetravel as timetravel
from commands import CommandProducer
from eventlog.file import FileLog
from projections.snapshot import write_snapshot
from projections.timetravel import rebuild
from query_api.cli.main import main
from query_api.cli.timemachine import compare_digests
from tests.projections.workload import random_workload
from tests.query_api.http_node import file_settings, serve

PARTITIONS = 4


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `agentlog` with `args`."""
    return CliRunner().invoke(main, list(args), env=env)


def make_data(root: Path) -> tuple[list[int], dict[str, str], list[int], dict[str, str]]:
    """An embedded log with a workload and a snapshot halfway: (middle cut, its digests, end cut, its digests)."""

    async def build() -> tuple[list[int], dict[str, str], list[int], dict[str, str]]:
        log = await FileLog.open(root, fsync="never")
        await log.create_topic("main", PARTITIONS)
        producer = CommandProducer(log, "main")
        workload = random_workload(1_200, seed=17)
        for start in range(0, 600, 200):
            await producer.submit_many(workload[start : start + 200])
        middle = await log.end_offsets("main")
        state = await rebuild(log, "main", middle)
        write_snapshot(root / "snapshots", "main", state)
        for start in range(600, 1_200, 200):
            await producer.submit_many(workload[start : start + 200])
        end = await log.end_offsets("main")
        final = await rebuild(log, "main", end)
        await log.close()
        return middle, state.digests(), end, final.digests()

    return asyncio.run(build())


def printed_json(result: Result) -> Any:
    """The JSON a successful invocation printed on stdout."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------------------------------- replay


def test_replay_prints_the_digests_at_a_cut_and_at_the_end(tmp_path: Path) -> None:
    middle, middle_digests, end, end_digests = make_data(tmp_path)
    token = ",".join(f"{p}:{o}" for p, o in enumerate(middle))
    at_middle = printed_json(invoke("replay", str(tmp_path), "--until", token))
    assert at_middle == {"topic": "main", "cut": middle, "token": token, "digests": middle_digests}
    at_end = printed_json(invoke("replay", str(tmp_path)))
    assert at_end["cut"] == end
    assert at_end["digests"] == end_digests
    without = printed_json(invoke("replay", str(tmp_path), "--no-snapshots", "--until", token))
    assert without["digests"] == middle_digests
    partial = printed_json(invoke("replay", str(tmp_path), "--until", "1:5"))
    assert partial["cut"] == [0, 5, 0, 0]


def test_replay_until_a_time(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    with serve(settings) as base_url, httpx.Client(base_url=base_url) as client:
        client.put("/v1/kv/n/a", json={"value": 1})
        first = client.put("/v1/kv/n/b", json={"value": 2}).json()
        status = client.get("/v1/status").json()
        time.sleep(0.01)
        client.put("/v1/kv/n/a", json={"value": 3})
        replayed = printed_json(invoke("replay", str(tmp_path), "--until", f"t:{first['timestamp_ms']}"))
        assert replayed["token"] == status["token"]
        assert replayed["digests"] == status["digests"]
        later = printed_json(invoke("replay", str(tmp_path), "--until", "2999-01-01T00:00:00Z"))
        assert later["digests"] == client.get("/v1/status").json()["digests"]


def test_replay_errors(tmp_path: Path) -> None:
    make_data(tmp_path)
    bad = invoke("replay", str(tmp_path), "--until", "whenever")
    assert bad.exit_code == 2
    assert "--until" in bad.output
    beyond = invoke("replay", str(tmp_path), "--until", "0:999999")
    assert beyond.exit_code == 1
    assert "outside" in beyond.output
    missing = invoke("replay", str(tmp_path / "nothing"))
    assert missing.exit_code == 1
    assert "no agentlog data" in missing.output
    no_branch = invoke("replay", str(tmp_path), "--branch", "nope")
    assert no_branch.exit_code == 1
    assert "branch.nope" in no_branch.output


# ------------------------------------------------------------------------------------------- verify


@pytest.fixture
def file_node(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A node on an embedded log under tmp_path, with some state: (base URL, data directory)."""
    data = tmp_path / "data"
    with serve(file_settings(data)) as base_url:
        with httpx.Client(base_url=base_url) as client:
            for index in range(30):
                client.put(f"/v1/kv/ns{index % 3}/k{index % 7}", json={"value": index})
            client.post("/v1/runs", json={"run_id": "r"})
            client.post("/v1/runs/r/events", json={"type": "x"})
            client.post("/v1/state/s/cas", json={"expected_version": 0, "value": 1})
        yield base_url, data


def test_verify_says_equal_on_a_healthy_node(file_node: tuple[str, Path]) -> None:
    base_url, data = file_node
    result = invoke("verify", "--url", base_url, "--data", str(data))
    assert result.exit_code == 0, result.output
    lines = dict(line.split() for line in result.stdout.splitlines())
    assert set(lines) == {
        *("records", "state", "txn", "runs", "traces", "vectors", "barriers", "memories", "outcomes"),
        *("tasks", "channels", "agents", "proposals"),
    }
    assert set(lines.values()) == {"equal"}
    by_url = invoke("verify", "--url", base_url, "--log", f"file://{data}")
    assert by_url.exit_code == 0, by_url.output


def test_verify_a_branch(file_node: tuple[str, Path]) -> None:
    base_url, data = file_node
    with httpx.Client(base_url=base_url) as client:
        assert client.post("/v1/branches", json={"name": "b"}).status_code == 201
        client.put("/v1/kv/n/on-b", json={"value": 1}, params={"branch": "b"})
    result = invoke("verify", "--url", base_url, "--data", str(data), "--branch", "b")
    assert result.exit_code == 0, result.output
    assert "DIFFERENT" not in result.stdout


def test_verify_needs_a_log_and_a_node(tmp_path: Path) -> None:
    assert invoke("verify", "--url", "http://127.0.0.1:9").exit_code == 2
    unreachable = invoke("verify", "--url", "http://127.0.0.1:9", "--data", str(tmp_path))
    assert unreachable.exit_code == 1


def test_compare_digests_flags_every_difference() -> None:
    live = {"records": "a", "runs": "b", "state": "c", "outcomes": "d"}
    assert compare_digests(live, dict(live)) == [("outcomes", True), ("records", True), ("runs", True), ("state", True)]
    rebuilt = {"records": "a", "runs": "B", "vectors": "e", "outcomes": "d"}
    assert compare_digests(live, rebuilt) == [
        ("outcomes", True),
        ("records", True),
        ("runs", False),
        ("state", False),
        ("vectors", False),
    ]


# ------------------------------------------------------------------------------------------- branch


def test_branch_create_list_show_fork_delete(file_node: tuple[str, Path]) -> None:
    base_url, _ = file_node
    env = {"AGENTLOG_URL": base_url}
    made = printed_json(invoke("branch", "create", "b", env=env))
    assert made["parent"] == "main"
    child = printed_json(invoke("branch", "create", "c", "--from", "b", "--cut", "0:0", env=env))
    assert child["fork_cut"] == [0] * 8
    timed = printed_json(invoke("branch", "create", "t", "--time", "0", env=env))
    assert timed["fork_cut"] == [0] * 8
    listed = printed_json(invoke("branch", "list", env=env))
    assert [item["name"] for item in listed] == ["main", "b", "c", "t"]
    assert printed_json(invoke("branch", "show", "c", env=env))["parent"] == "b"
    assert invoke("branch", "show", "nope", env=env).exit_code == 1
    fork = printed_json(invoke("branch", "fork", "r", "1", "--name", "f", env=env))
    assert (fork["branch"], fork["at_seq"]) == ("f", 1)
    at_run = printed_json(invoke("branch", "create", "g", "--run", "r", "--seq", "1", env=env))
    assert at_run["fork_cut"] == fork["fork_cut"]
    refused = invoke("branch", "delete", "b", env=env)
    assert refused.exit_code == 1
    assert "branch_in_use" in refused.output
    assert invoke("branch", "create", "x", "--cut", "0:0", "--time", "0", env=env).exit_code == 2
    assert invoke("branch", "create", "x", "--run", "r", env=env).exit_code == 2
    for name in ("c", "b"):
        assert printed_json(invoke("branch", "delete", name, env=env)) == {"name": name, "deleted": True}


def test_replay_loads_no_snapshot_from_the_directory_unless_trusted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    *_, end_digests = make_data(tmp_path)
    loaded: list[Path] = []
    real_load = timetravel.load_snapshot

    def recording_load(info: Any, **kwargs: Any) -> Any:
        loaded.append(info.path)
        return real_load(info, **kwargs)

    monkeypatch.setattr(timetravel, "load_snapshot", recording_load)
    untrusted = printed_json(invoke("replay", str(tmp_path)))
    assert untrusted["digests"] == end_digests
    assert loaded == []  # rebuilt from the log alone
    trusted = printed_json(invoke("replay", str(tmp_path), "--trust-snapshots"))
    assert trusted["digests"] == end_digests
    assert len(loaded) == 1
    assert loaded[0].is_relative_to(tmp_path / "snapshots")
    contradiction = invoke("replay", str(tmp_path), "--trust-snapshots", "--no-snapshots")
    assert contradiction.exit_code == 2
