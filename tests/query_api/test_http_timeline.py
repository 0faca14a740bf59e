"""The timeline endpoints over real HTTP: cassettes, run and cut diffs, streamed log reads, run exports; and the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import orjson
from click.testing import CliRunner

from agentlog import AgentlogClient
from agentlog.replay import SyncRecorder, record_run_sync, step_id
from query_api.cli.main import main
from tests.query_api.http_node import HttpNode, assert_problem, file_settings, serve

pytest_plugins = ("tests.query_api.http_node",)


def begin(client: httpx.Client, run_id: str, **headers: str) -> dict[str, Any]:
    """Begin run `run_id`; the write body."""
    response = client.post("/v1/runs", json={"run_id": run_id}, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post(client: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> dict[str, Any]:
    """POST a write `body` to `path`, expecting 200; the write body."""
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def put(client: httpx.Client, namespace: str, key: str, value: Any, **body: Any) -> dict[str, Any]:
    """PUT a kv value; the write body."""
    response = client.put(f"/v1/kv/{namespace}/{key}", json={"value": value, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def ndjson(response: httpx.Response) -> list[dict[str, Any]]:
    """The objects of an NDJSON body."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [orjson.loads(line) for line in response.text.splitlines() if line]


# ------------------------------------------------------------------------------------------- cassette


def test_cassette_lists_the_run_commands_in_order_with_outcomes(http_node: HttpNode) -> None:
    _, client = http_node
    begin(client, "r1")
    event = {"type": "step", "payload": {"n": 1}, "command_id": "ev-1"}
    post(client, "/v1/runs/r1/events", event)
    post(client, "/v1/runs/r1/events", event)  # a retry: logged again, applied once
    put(client, "notes", "plan", {"v": 1}, run_id="r1")
    conflict = client.put("/v1/kv/notes/plan", json={"value": 2, "if_version": 0, "run_id": "r1"})
    assert conflict.status_code == 409
    post(client, "/v1/runs/r1/traces", {"kind": "decision", "data": {"go": True}, "trace_id": "t1"})
    put(client, "notes", "other-run", 1, run_id="r2")
    begin(client, "r1-other-tenant", **{"X-Tenant": "globex"})
    client.put("/v1/kv/notes/x", json={"value": 1, "run_id": "r1"}, headers={"X-Tenant": "globex"})
    ended = post(client, "/v1/runs/r1/end", {"status": "succeeded"})

    response = client.get("/v1/runs/r1/replay", params={"token": ended["token"]})
    assert response.status_code == 200, response.text
    body = response.json()
    items = body["items"]
    assert [(i["type"], i["retry"]) for i in items] == [
        ("run.begin", False),
        ("event.append", False),
        ("event.append", True),
        ("kv.put", False),
        ("kv.put", False),
        ("trace.record", False),
        ("run.end", False),
    ]
    assert body["truncated"] is False
    assert items[1]["event_seq"] == 1
    assert items[1]["command"] == {"type": "event.append", "event_type": "step", "payload": {"n": 1}}
    assert items[1]["outcome"]["status"] == "applied"
    assert items[3]["namespace"] == "notes"
    assert items[3]["outcome"]["result"]["version"] == 1
    assert items[4]["outcome"]["status"] == "rejected"
    assert items[4]["outcome"]["reason"] == "version_conflict"
    stamps = [(i["timestamp_ms"], i["partition"], i["offset"]) for i in items]
    assert stamps == sorted(stamps)

    assert_problem(client.get("/v1/runs/missing/replay"), 404, "not_found")
    other = client.get("/v1/runs/r1/replay", headers={"X-Tenant": "globex"})
    assert_problem(other, 404, "not_found")


def test_run_export_streams_events_or_commands(http_node: HttpNode) -> None:
    _, client = http_node
    begin(client, "r1")
    for n in range(3):
        post(client, "/v1/runs/r1/events", {"type": "step", "payload": {"n": n}})
    events = ndjson(client.get("/v1/runs/r1/export"))
    assert [(e["seq"], e["payload"]) for e in events] == [(1, {"n": 0}), (2, {"n": 1}), (3, {"n": 2})]
    assert events[2]["prev_hash"] == events[1]["hash"]
    commands = ndjson(client.get("/v1/runs/r1/export", params={"commands": "true"}))
    assert [c["type"] for c in commands] == ["run.begin", "event.append", "event.append", "event.append"]
    assert_problem(client.get("/v1/runs/nope/export"), 404, "not_found")


# ------------------------------------------------------------------------------------------- diffs


def trip_agent(route: str) -> Any:
    """A small sync agent recorded twice with different tool args."""

    def agent(rec: SyncRecorder) -> None:
        rec.event("task", {"goal": "trip"})
        quote = rec.tool_call("price", {"route": route}, lambda args: {"eur": 10 * len(args["route"])})
        rec.event("decision", {"route": route, "eur": quote["eur"]})
        rec.put("plans", f"trip-{route}", {"eur": quote["eur"]})
        rec.put("plans", "latest", route)

    return agent


def test_run_diff_shows_the_first_divergence_and_differing_writes(http_node: HttpNode) -> None:
    base_url, client = http_node
    with AgentlogClient(base_url) as sdk:
        record_run_sync(sdk, trip_agent("LIS"), run_id="run-a")
        record_run_sync(sdk, trip_agent("PORTO"), run_id="run-b")
    response = client.get("/v1/diff", params={"run_a": "run-a", "run_b": "run-b"})
    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["identical"] is False
    assert (diff["events_a"], diff["events_b"], diff["common_prefix"]) == (2, 2, 1)
    first = diff["first_divergence"]
    assert (first["seq"], first["status"], first["fields"]) == (2, "changed", ["payload"])
    assert first["a"]["payload"] == {"route": "LIS", "eur": 30}
    assert first["b"]["payload"] == {"route": "PORTO", "eur": 50}
    writes = {(w["kind"], w["namespace"], w["key"]): w for w in diff["writes"]}
    assert writes[("kv", "plans", "latest")]["a"]["value"] == "LIS"
    assert writes[("kv", "plans", "latest")]["b"]["value"] == "PORTO"
    assert writes[("kv", "plans", "trip-LIS")]["status"] == "only_a"
    assert writes[("kv", "plans", "trip-PORTO")]["status"] == "only_b"
    same = client.get("/v1/diff", params={"run_a": "run-a", "run_b": "run-a"}).json()
    assert same["identical"] is True
    assert same["first_divergence"] is None


def test_a_run_diffs_against_its_fork_on_another_branch(http_node: HttpNode) -> None:
    _, client = http_node
    begin(client, "r")
    for n in (1, 2, 3):
        written = post(client, "/v1/runs/r/events", {"type": "step", "payload": n})
    fork = client.post("/v1/runs/r/fork", json={"at_seq": 1, "branch": "whatif"}, params={"token": written["token"]})
    assert fork.status_code == 201, fork.text
    post(client, "/v1/runs/r/events?branch=whatif", {"type": "step", "payload": 20})
    diff = client.get("/v1/diff", params={"run_a": "r", "run_b": "r", "branch_b": "whatif"}).json()
    assert (diff["branch_a"], diff["branch_b"]) == ("main", "whatif")
    assert (diff["events_a"], diff["events_b"], diff["common_prefix"]) == (3, 2, 1)
    assert [(e["seq"], e["status"]) for e in diff["events"]] == [(2, "changed"), (3, "only_a")]


def test_cut_diff_between_two_tokens_and_against_the_live_state(http_node: HttpNode) -> None:
    _, client = http_node
    put(client, "notes", "keep", 1)
    put(client, "notes", "change", "old")
    first = put(client, "notes", "drop", True)
    cut_a = client.get("/v1/status").json()["token"]
    put(client, "notes", "change", "new")
    client.delete("/v1/kv/notes/drop")
    second = put(client, "notes", "new", [1, 2])
    client.put("/v1/kv/notes/theirs", json={"value": 1}, headers={"X-Tenant": "globex"})
    cut_b = client.get("/v1/status", params={"token": second["token"]}).json()["token"]

    response = client.get("/v1/diff", params={"cut_a": cut_a, "cut_b": cut_b})
    assert response.status_code == 200, response.text
    diff = response.json()
    assert diff["counts"] == {"added": 1, "changed": 1, "removed": 1}
    assert [(c["kind"], c["key"], c["status"]) for c in diff["changes"]] == [
        ("record", "change", "changed"),
        ("record", "drop", "removed"),
        ("record", "new", "added"),
    ]
    change = diff["changes"][0]
    assert (change["a"]["value"], change["b"]["value"]) == ("old", "new")
    assert diff["cut_b"] == cut_b

    live = client.get("/v1/diff", params={"cut_a": cut_a, "token": second["token"]}).json()
    assert live["counts"] == diff["counts"]
    empty = client.get("/v1/diff", params={"cut_a": first["token"], "cut_b": first["token"]}).json()
    assert empty["changes"] == []
    assert client.get("/v1/diff", params={"cut_a": cut_a, "limit": 1}).json()["truncated"] is True

    assert_problem(client.get("/v1/diff"), 400, "invalid")
    assert_problem(client.get("/v1/diff", params={"cut_a": cut_a, "run_a": "r"}), 400, "invalid")
    assert_problem(client.get("/v1/diff", params={"run_a": "r"}), 400, "invalid")
    assert_problem(client.get("/v1/diff", params={"cut_b": cut_b}), 400, "invalid")
    assert client.get("/v1/diff", params={"cut_a": "nonsense"}).status_code == 400
    assert client.get("/v1/diff", params={"cut_a": "0:999999"}).status_code == 409


# ------------------------------------------------------------------------------------------- log


def test_log_streams_raw_records_over_http(http_node: HttpNode) -> None:
    base_url, client = http_node
    for n in range(30):
        put(client, f"ns{n % 5}", f"k{n}", n)
    client.put("/v1/kv/ns0/secret", json={"value": "globex only"}, headers={"X-Tenant": "globex"})
    status = client.get("/v1/status").json()
    ends = [p["end_offset"] for p in status["partitions"]]

    with (
        httpx.Client(base_url=base_url, timeout=30) as streaming,
        streaming.stream("GET", "/v1/log", params={"header": "true"}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [orjson.loads(line) for line in response.iter_lines() if line]
    header, records = lines[0], lines[1:]
    assert (header["agentlog_export"], header["partitions"], header["to"]) == (1, len(ends), ends)
    assert len(records) == 30  # globex's record is not the default tenant's
    assert {r["command"]["tenant"] for r in records} == {"default"}
    assert all(r["headers"][0] == ["v", "1"] for r in records)
    positions = [(r["partition"], r["offset"]) for r in records]
    assert positions == sorted(positions)

    busy = max(range(len(ends)), key=lambda p: ends[p])
    one = ndjson(client.get("/v1/log", params={"partition": busy, "from": 1, "to": 3}))
    assert [(r["partition"], r["offset"]) for r in one] == [(busy, 1), (busy, 2)]
    limited = ndjson(client.get("/v1/log", params={"limit": 4}))
    assert len(limited) == 5
    assert limited[-1]["truncated"] is True
    rest = ndjson(client.get("/v1/log", params={"from": limited[-1]["next_from"]}))
    assert limited[:4] + rest == records  # paging on from `next_from` loses and repeats nothing
    ranged = ndjson(client.get("/v1/log", params={"from": f"{busy}:2", "to": f"{busy}:3"}))
    assert [(r["partition"], r["offset"]) for r in ranged] == [(busy, 2)]  # unnamed partitions: 0 to 0
    theirs = ndjson(client.get("/v1/log", headers={"X-Tenant": "globex"}))
    assert [r["command"]["command"]["value"] for r in theirs] == ["globex only"]

    assert_problem(client.get("/v1/log", params={"partition": 99}), 400, "invalid")
    assert_problem(client.get("/v1/log", params={"partition": 0, "from": "0:1"}), 400, "invalid")
    assert client.get("/v1/log", params={"from": "x"}).status_code == 400


# ------------------------------------------------------------------------------------------- CLI


def cli_agent(rec: SyncRecorder) -> str:
    """The agent the CLI replays (importable as tests.query_api.test_http_timeline:cli_agent)."""
    found = rec.tool_call("lookup", {"q": "capital of France"}, lambda args: "Paris")
    rec.event("answer", {"text": found})
    return str(found)


def cli_agent_changed(rec: SyncRecorder) -> str:
    """The same agent asking another question."""
    found = rec.tool_call("lookup", {"q": "capital of Spain"}, lambda args: "Madrid")
    rec.event("answer", {"text": found})
    return str(found)


def test_cli_cassette_harness_diff_export_and_import(tmp_path: Path) -> None:
    runner = CliRunner()
    with serve(file_settings(tmp_path / "node", processors="off")) as base_url:
        with AgentlogClient(base_url) as sdk:
            record_run_sync(sdk, cli_agent, run_id="cli-run")
        env = {"AGENTLOG_URL": base_url}

        shown = runner.invoke(main, ["cassette", "cli-run"], env=env)
        assert shown.exit_code == 0, shown.output
        assert step_id("cli-run", 1) in shown.stdout

        good = runner.invoke(
            main, ["harness", "cli-run", "--agent", "tests.query_api.test_http_timeline:cli_agent"], env=env
        )
        assert good.exit_code == 0, good.output
        assert "2/2 steps matched, no divergence" in good.stdout

        bad = runner.invoke(
            main,
            ["harness", "cli-run", "--agent", "tests.query_api.test_http_timeline:cli_agent_changed", "--json"],
            env=env,
        )
        assert bad.exit_code == 1, bad.output
        report = json.loads(bad.stdout)
        assert (report["ok"], report["divergence"]["seq"], report["divergence"]["kind"]) == (False, 1, "mismatch")
        assert "capital of Spain" in report["divergence"]["diff"]
        assert runner.invoke(main, ["harness", "cli-run", "--agent", "nowhere"], env=env).exit_code == 2

        diffed = runner.invoke(main, ["diff", "--run-a", "cli-run", "--run-b", "cli-run"], env=env)
        assert diffed.exit_code == 0, diffed.output
        assert json.loads(diffed.stdout)["identical"] is True

        exported = tmp_path / "export.jsonl"
        result = runner.invoke(main, ["export", str(tmp_path / "node"), "-o", str(exported)])
        assert result.exit_code == 0, result.output
        over_http = tmp_path / "http.jsonl"
        result = runner.invoke(main, ["export", "--url", base_url, "-o", str(over_http)])
        assert result.exit_code == 0, result.output
        assert runner.invoke(main, ["export", "--format", "parquet", str(tmp_path / "node")]).exit_code == 2
        assert runner.invoke(main, ["export"]).exit_code == 2

    local_lines, http_lines = exported.read_bytes().splitlines(), over_http.read_bytes().splitlines()
    assert local_lines[1:] == http_lines[1:]  # one tenant: the HTTP export holds the same records
    assert (json.loads(local_lines[0])["tenant"], json.loads(http_lines[0])["tenant"]) == (None, "default")
    imported = runner.invoke(main, ["import", str(exported), "--data", str(tmp_path / "copy")])
    assert imported.exit_code == 0, imported.output
    assert json.loads(imported.stdout)["offsets_preserved"] is True
    again = runner.invoke(main, ["import", str(exported), "--data", str(tmp_path / "copy")])
    assert again.exit_code == 1
    assert "already holds records" in again.output
    original = runner.invoke(main, ["replay", str(tmp_path / "node"), "--no-snapshots"])
    rebuilt = runner.invoke(main, ["replay", str(tmp_path / "copy"), "--no-snapshots"])
    assert original.exit_code == 0, original.output
    assert rebuilt.exit_code == 0, rebuilt.output
    assert json.loads(rebuilt.stdout)["digests"] == json.loads(original.stdout)["digests"]


def test_cli_export_to_stdout_with_a_range(tmp_path: Path) -> None:
    with (
        serve(file_settings(tmp_path / "node", processors="off")) as base_url,
        httpx.Client(base_url=base_url) as client,
    ):
        for n in range(6):
            put(client, "notes", f"k{n}", n)
        token = client.get("/v1/status").json()["token"]
    result = CliRunner().invoke(main, ["export", str(tmp_path / "node"), "--from", token])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1  # only the header: the range starts at the end
    bad = CliRunner().invoke(main, ["export", str(tmp_path / "node"), "--from", "x:y"])
    assert bad.exit_code == 2
