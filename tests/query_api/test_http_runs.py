"""Runs, hash-chained events, verification and traces over real HTTP (uvicorn in a thread, httpx)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx

from commands import canonical_json
from tests.query_api.http_node import HttpNode, assert_problem, assert_same_outcome, file_settings, serve

pytest_plugins = ("tests.query_api.http_node",)

GENESIS = "0" * 64


def begin(client: httpx.Client, **body: Any) -> str:
    """Begin a run; its id."""
    response = client.post("/v1/runs", json=body)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["result"]["run_id"]
    return run_id


def append(client: httpx.Client, run_id: str, event_type: str, payload: Any = None, **extra: Any) -> httpx.Response:
    """POST an event."""
    return client.post(f"/v1/runs/{run_id}/events", json={"type": event_type, "payload": payload, **extra})


# ------------------------------------------------------------------------------------------- runs


def test_begin_run_answers_201_and_reads_back_with_token(http_node: HttpNode) -> None:
    _, client = http_node
    response = client.post(
        "/v1/runs", json={"name": "plan-trip", "metadata": {"user": "u1"}}, headers={"X-Agent-Id": "planner"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    run_id = body["result"]["run_id"]
    assert body["result"]["status"] == "running"
    run = client.get(f"/v1/runs/{run_id}", params={"token": body["token"], "wait_ms": 5_000})
    assert run.status_code == 200, run.text
    view = run.json()
    assert view["run_id"] == run_id
    assert view["name"] == "plan-trip"
    assert view["metadata"] == {"user": "u1"}
    assert view["agent_id"] == "planner"
    assert view["status"] == "running"
    assert view["events"] == 0
    assert view["last_hash"] == GENESIS


def test_begin_with_explicit_id_twice_is_409_already_exists(http_node: HttpNode) -> None:
    _, client = http_node
    assert begin(client, run_id="run-a", parent_run_id="run-0") == "run-a"
    assert_problem(client.post("/v1/runs", json={"run_id": "run-a"}), 409, "already_exists")
    assert client.get("/v1/runs/run-a").json()["parent_run_id"] == "run-0"


def test_begin_retry_with_same_command_id_is_one_run(http_node: HttpNode) -> None:
    _, client = http_node
    first = client.post("/v1/runs", json={"name": "once", "command_id": "begin-1"})
    retry = client.post("/v1/runs", json={"name": "once", "command_id": "begin-1"})
    assert first.status_code == 201, first.text
    assert_same_outcome(first, retry)
    listed = client.get("/v1/runs", params={"token": retry.json()["token"]}).json()
    assert [run["run_id"] for run in listed["items"]] == [first.json()["result"]["run_id"]]


def test_end_run_and_closed_run_rejections(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    append(client, run_id, "step")
    ended = client.post(f"/v1/runs/{run_id}/end", json={"status": "succeeded", "result": {"answer": 42}})
    assert ended.status_code == 200, ended.text
    assert ended.json()["result"]["events"] == 1
    view = client.get(f"/v1/runs/{run_id}", params={"token": ended.json()["token"]}).json()
    assert view["status"] == "succeeded"
    assert view["result"] == {"answer": 42}
    assert view["ended_at_ms"] is not None

    assert_problem(client.post(f"/v1/runs/{run_id}/end", json={"status": "failed"}), 409, "run_closed")
    assert_problem(append(client, run_id, "late"), 409, "run_closed")
    trace = client.post(f"/v1/runs/{run_id}/traces", json={"kind": "decision", "data": "late"})
    assert_problem(trace, 409, "run_closed")
    assert client.get(f"/v1/runs/{run_id}").json()["events"] == 1


def test_unknown_runs_are_404(http_node: HttpNode) -> None:
    _, client = http_node
    assert_problem(client.get("/v1/runs/ghost"), 404, "not_found")
    assert_problem(client.post("/v1/runs/ghost/end", json={"status": "failed"}), 404, "not_found")
    assert_problem(append(client, "ghost", "x"), 404, "not_found")
    assert_problem(client.get("/v1/runs/ghost/events"), 404, "not_found")
    assert_problem(client.get("/v1/runs/ghost/verify"), 404, "not_found")
    assert_problem(client.get("/v1/runs/ghost/traces"), 404, "not_found")
    assert_problem(client.get("/v1/runs/ghost/traces/t1"), 404, "not_found")
    assert_problem(client.post("/v1/runs/ghost/traces", json={"kind": "decision"}), 404, "not_found")


def test_default_run_takes_events_but_cannot_end(http_node: HttpNode) -> None:
    _, client = http_node
    assert client.get("/v1/runs/default/events").json()["items"] == []
    appended = append(client, "default", "note", "hi")
    assert appended.status_code == 200, appended.text
    assert appended.json()["result"]["seq"] == 1
    assert_problem(client.post("/v1/runs/default/end", json={"status": "succeeded"}), 403, "forbidden")
    assert_problem(client.post("/v1/runs", json={"run_id": "default"}), 409, "already_exists")


def test_list_runs_filters_by_status_and_pages(http_node: HttpNode) -> None:
    _, client = http_node
    ids = [begin(client, run_id=f"r{index}") for index in range(5)]
    ended = client.post("/v1/runs/r1/end", json={"status": "failed"})
    token = ended.json()["token"]
    first = client.get("/v1/runs", params={"limit": 2, "token": token}).json()
    assert [run["run_id"] for run in first["items"]] == ids[:2]
    assert first["next_cursor"] == ids[1]
    rest = client.get("/v1/runs", params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [run["run_id"] for run in rest["items"]] == ids[2:]
    assert rest["next_cursor"] is None
    failed = client.get("/v1/runs", params={"status": "failed"}).json()["items"]
    assert [run["run_id"] for run in failed] == ["r1"]
    running = client.get("/v1/runs", params={"status": "running"}).json()["items"]
    assert [run["run_id"] for run in running] == ["r0", "r2", "r3", "r4"]
    assert_problem(client.get("/v1/runs", params={"cursor": "no-such-run"}), 400, "bad_cursor")
    assert_problem(client.get("/v1/runs", params={"status": "sleeping"}), 422, "invalid")
    assert_problem(client.get("/v1/runs", params={"limit": 0}), 422, "invalid")


def test_bad_run_bodies_are_422(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    begin_bodies: list[dict[str, Any]] = [
        {"run_id": "has space"},
        {"metadata": [1, 2]},
        {"tenant": "x"},
        {"agent_id": "x"},
    ]
    for body in begin_bodies:
        assert_problem(client.post("/v1/runs", json=body), 422, "invalid")
    end_bodies: list[dict[str, Any]] = [{}, {"status": "done"}, {"status": "failed", "extra": 1}]
    for body in end_bodies:
        assert_problem(client.post(f"/v1/runs/{run_id}/end", json=body), 422, "invalid")
    event_bodies: list[dict[str, Any]] = [
        {},
        {"type": "a b"},
        {"type": "x", "expected_seq": -1},
        {"type": "x", "expected_seq": "1"},
        {"type": "x", "seq": 3},
    ]
    for body in event_bodies:
        assert_problem(client.post(f"/v1/runs/{run_id}/events", json=body), 422, "invalid")
    assert_problem(client.get("/v1/runs/bad%20id"), 422, "invalid")


# ------------------------------------------------------------------------------------------- events


def test_events_form_a_hash_chain_that_verifies(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    results = []
    for index in range(4):
        response = append(client, run_id, "step", {"i": index, "text": "héllo"}, thread_id=f"t{index % 2}")
        assert response.status_code == 200, response.text
        results.append(response.json()["result"])
    assert [result["seq"] for result in results] == [1, 2, 3, 4]
    token = response.json()["token"]

    events = client.get(f"/v1/runs/{run_id}/events", params={"token": token}).json()["items"]
    assert [event["seq"] for event in events] == [1, 2, 3, 4]
    prev = GENESIS
    for event, result in zip(events, results, strict=True):
        assert event["hash"] == result["hash"]
        assert event["event_id"] == result["event_id"]
        assert event["prev_hash"] == prev
        fields = {key: value for key, value in event.items() if key != "hash"}
        assert hashlib.sha256(bytes.fromhex(prev) + canonical_json(fields)).hexdigest() == event["hash"]
        prev = event["hash"]
    assert client.get(f"/v1/runs/{run_id}").json()["last_hash"] == prev

    verified = client.get(f"/v1/runs/{run_id}/verify", params={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json() == {"run_id": run_id, "ok": True, "events": 4, "first_bad_seq": None, "reason": None}


def test_chain_survives_a_restart_on_a_file_log(tmp_path: Path) -> None:
    settings = file_settings(tmp_path)
    with serve(settings) as base_url, httpx.Client(base_url=base_url) as client:
        run_id = begin(client, run_id="durable")
        for index in range(3):
            append(client, run_id, "step", index)
        before = client.get(f"/v1/runs/{run_id}").json()
    with serve(settings) as base_url, httpx.Client(base_url=base_url) as client:
        after = client.get(f"/v1/runs/{run_id}").json()
        assert after == before
        verified = client.get(f"/v1/runs/{run_id}/verify").json()
        assert (verified["ok"], verified["events"]) == (True, 3)
        assert append(client, run_id, "step", 3).json()["result"]["seq"] == 4


def test_event_filters_and_paging(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    with http_node.new_client(**{"X-Agent-Id": "critic"}) as critic:
        for index in range(6):
            writer = critic if index % 3 == 0 else client
            response = append(writer, run_id, "tool" if index % 2 else "thought", index, thread_id=f"t{index % 2}")
            assert response.status_code == 200, response.text
    token = response.json()["token"]
    url = f"/v1/runs/{run_id}/events"

    page = client.get(url, params={"limit": 4, "token": token}).json()
    assert [event["seq"] for event in page["items"]] == [1, 2, 3, 4]
    assert page["next_from_seq"] == 5
    rest = client.get(url, params={"from_seq": page["next_from_seq"], "limit": 4}).json()
    assert [event["seq"] for event in rest["items"]] == [5, 6]
    assert rest["next_from_seq"] is None

    assert [e["payload"] for e in client.get(url, params={"type": "tool"}).json()["items"]] == [1, 3, 5]
    assert [e["payload"] for e in client.get(url, params={"thread_id": "t0"}).json()["items"]] == [0, 2, 4]
    assert [e["payload"] for e in client.get(url, params={"agent_id": "critic"}).json()["items"]] == [0, 3]
    assert_problem(client.get(url, params={"from_seq": 0}), 422, "invalid")


def test_expected_seq_conflict_is_409_with_current_seq(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    assert append(client, run_id, "a", expected_seq=0).json()["result"]["seq"] == 1
    conflict = assert_problem(append(client, run_id, "b", expected_seq=0), 409, "version_conflict")
    assert conflict["current_seq"] == 1
    assert append(client, run_id, "b", expected_seq=1).json()["result"]["seq"] == 2


def test_event_retry_with_same_command_id_appends_once(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    first = append(client, run_id, "tool_result", {"ok": True}, command_id="evt-1")
    retry = append(client, run_id, "tool_result", {"ok": True}, command_id="evt-1")
    assert first.status_code == 200, first.text
    assert_same_outcome(first, retry)
    assert first.json()["result"]["event_id"] == "evt-1"
    events = client.get(f"/v1/runs/{run_id}/events", params={"token": retry.json()["token"]}).json()["items"]
    assert len(events) == 1


def test_runs_and_events_are_tenant_isolated(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "acme"}) as acme, http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        run_id = begin(acme, run_id="shared-name")
        token = append(acme, run_id, "secret", "acme data").json()["token"]
        assert_problem(globex.get(f"/v1/runs/{run_id}", params={"token": token}), 404, "not_found")
        assert_problem(globex.get(f"/v1/runs/{run_id}/events"), 404, "not_found")
        assert_problem(globex.get(f"/v1/runs/{run_id}/verify"), 404, "not_found")
        assert_problem(append(globex, run_id, "intrude"), 404, "not_found")
        assert_problem(globex.post(f"/v1/runs/{run_id}/end", json={"status": "failed"}), 404, "not_found")
        assert globex.get("/v1/runs").json()["items"] == []
        # The same run id is free in another tenant.
        assert begin(globex, run_id="shared-name") == "shared-name"
        assert acme.get(f"/v1/runs/{run_id}").json()["events"] == 1
        assert globex.get(f"/v1/runs/{run_id}").json()["events"] == 0


# ------------------------------------------------------------------------------------------- traces


def test_traces_link_events_and_form_a_tree(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    event = append(client, run_id, "tool_call", {"tool": "search"}).json()["result"]
    url = f"/v1/runs/{run_id}/traces"

    root = client.post(url, json={"trace_id": "call-1", "kind": "tool_call", "data": {"q": "x"}, "seq": 1})
    assert root.status_code == 200, root.text
    assert root.json()["result"] == {"run_id": run_id, "trace_id": "call-1", "position": 1}
    minted = client.post(url, json={"kind": "model_output", "data": "y", "parent_id": "call-1"})
    minted_id = minted.json()["result"]["trace_id"]
    assert minted_id == minted.json()["command_id"]
    leaf = client.post(url, json={"trace_id": "cite", "kind": "citation", "parent_id": minted_id})
    other = client.post(url, json={"trace_id": "why", "kind": "decision", "event_id": event["event_id"]})
    token = other.json()["token"]
    assert leaf.status_code == other.status_code == 200

    flat = client.get(url, params={"token": token}).json()["items"]
    assert [trace["trace_id"] for trace in flat] == ["call-1", minted_id, "cite", "why"]
    assert flat[0]["event_id"] == event["event_id"]
    assert flat[3]["seq"] == 1
    kinds = client.get(url, params={"kind": "citation"}).json()["items"]
    assert [trace["trace_id"] for trace in kinds] == ["cite"]

    tree = client.get(url, params={"tree": "true"}).json()["items"]
    assert [node["trace_id"] for node in tree] == ["call-1", "why"]
    assert [node["trace_id"] for node in tree[0]["children"]] == [minted_id]
    assert [node["trace_id"] for node in tree[0]["children"][0]["children"]] == ["cite"]
    assert tree[1]["children"] == []

    single = client.get(f"{url}/cite")
    assert single.json()["parent_id"] == minted_id
    assert_problem(client.get(f"{url}/nope"), 404, "not_found")


def test_trace_rejections(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    event = append(client, run_id, "e").json()["result"]
    url = f"/v1/runs/{run_id}/traces"
    assert client.post(url, json={"trace_id": "t", "kind": "assumption"}).status_code == 200
    assert_problem(client.post(url, json={"trace_id": "t", "kind": "assumption"}), 409, "already_exists")
    assert_problem(client.post(url, json={"kind": "decision", "parent_id": "missing"}), 404, "not_found")
    assert_problem(client.post(url, json={"kind": "decision", "seq": 9}), 404, "not_found")
    assert_problem(client.post(url, json={"kind": "decision", "event_id": "nope"}), 404, "not_found")
    mismatch = {"kind": "decision", "event_id": event["event_id"], "seq": 2}
    assert_problem(client.post(url, json=mismatch), 422, "invalid")
    for body in ({}, {"kind": "opinion"}, {"kind": "decision", "seq": 0}, {"kind": "decision", "run_id": "x"}):
        assert_problem(client.post(url, json=body), 422, "invalid")
    assert_problem(client.get(url, params={"kind": "opinion"}), 422, "invalid")


def test_trace_retry_without_trace_id_records_one_trace(http_node: HttpNode) -> None:
    _, client = http_node
    run_id = begin(client)
    url = f"/v1/runs/{run_id}/traces"
    first = client.post(url, json={"kind": "confidence", "data": 0.9, "command_id": "trace-cmd-1"})
    retry = client.post(url, json={"kind": "confidence", "data": 0.9, "command_id": "trace-cmd-1"})
    assert first.status_code == 200, first.text
    assert_same_outcome(first, retry)
    traces = client.get(url, params={"token": retry.json()["token"]}).json()["items"]
    assert [trace["trace_id"] for trace in traces] == ["trace-cmd-1"]


def test_traces_are_tenant_isolated(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "acme"}) as acme, http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        run_id = begin(acme)
        token = acme.post(f"/v1/runs/{run_id}/traces", json={"trace_id": "t", "kind": "decision"}).json()["token"]
        assert_problem(globex.get(f"/v1/runs/{run_id}/traces", params={"token": token}), 404, "not_found")
        assert_problem(globex.get(f"/v1/runs/{run_id}/traces/t"), 404, "not_found")
        assert acme.get(f"/v1/runs/{run_id}/traces/t").status_code == 200
