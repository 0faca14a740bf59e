"""Time travel (`as_of`), branches and run forks over real HTTP, and through the SDK clients."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agentlog import AgentlogClient, AsyncEmbeddedAgentlog, EmbeddedAgentlog, NotFoundError
from query_api.node.branches import AS_OF_STATES, BranchError, parse_as_of, tenant_branch_prefix
from query_api.settings import Settings
from tests.query_api.http_node import HttpNode, assert_problem, memory_settings

pytest_plugins = ("tests.query_api.http_node",)


@pytest.fixture
def http_settings() -> Settings:
    """A throwaway node that gives up waiting for tokens quickly (a wrong token fails fast)."""
    return memory_settings(read_wait_ms_max=1_000)


def put(client: httpx.Client, key: str, value: Any, branch: str | None = None, **body: Any) -> dict[str, Any]:
    """PUT a kv value in namespace `n`; the write body."""
    params = {} if branch is None else {"branch": branch}
    response = client.put(f"/v1/kv/n/{key}", json={"value": value, **body}, params=params)
    assert response.status_code == 200, response.text
    written: dict[str, Any] = response.json()
    return written


def get(client: httpx.Client, key: str, **params: Any) -> httpx.Response:
    """GET a kv value of namespace `n`."""
    return client.get(f"/v1/kv/n/{key}", params=params)


def value(client: httpx.Client, key: str, **params: Any) -> Any:
    """The value at `key` (namespace `n`), or None if absent."""
    response = get(client, key, **params)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()["value"]


def full_token(client: httpx.Client, branch: str = "main") -> str:
    """The branch's applied cut, every partition named."""
    token: str = client.get("/v1/status", params={"branch": branch}).json()["token"]
    return token


def create(client: httpx.Client, name: str, **body: Any) -> dict[str, Any]:
    """Make a branch; its description."""
    response = client.post("/v1/branches", json={"name": name, **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


# ------------------------------------------------------------------------------------------- as_of


def test_parse_as_of_reads_cuts_millis_and_iso_times() -> None:
    assert parse_as_of("0:12,3:40", 4) == [12, 0, 0, 40]
    assert parse_as_of("t:1700000000123", 4) == 1_700_000_000_123
    assert parse_as_of("2023-11-14T22:13:20.123Z", 1) == 1_700_000_000_123
    assert parse_as_of("2023-11-14T22:13:20.123", 1) == 1_700_000_000_123  # no offset: UTC
    assert parse_as_of("2023-11-14T23:13:20.123+01:00", 1) == 1_700_000_000_123
    for bad in ("", "t:", "t:-1", "yesterday", "0:1,x", "9:1"):
        with pytest.raises(BranchError) as caught:
            parse_as_of(bad, 4)
        assert caught.value.status == 400


def test_kv_as_of_an_earlier_token_or_time_answers_the_old_value(http_node: HttpNode) -> None:
    _, client = http_node
    first = put(client, "k", "v1")
    time.sleep(0.005)
    second = put(client, "k", "v2")
    put(client, "other", 1)
    assert value(client, "k") == "v2"
    assert value(client, "k", as_of=first["token"]) == "v1"
    assert value(client, "k", as_of=second["token"]) == "v2"
    assert value(client, "k", as_of=f"t:{first['timestamp_ms']}") == "v1"
    assert value(client, "k", as_of=f"t:{second['timestamp_ms']}") == "v2"
    iso = datetime.fromtimestamp(first["timestamp_ms"] / 1000, UTC).isoformat(timespec="milliseconds")
    assert value(client, "k", as_of=iso) == "v1"
    assert value(client, "k", as_of=f"t:{first['timestamp_ms'] - 1}") is None
    # Partitions a cut does not name are at 0: the first write's token names only its own partition.
    assert value(client, "other", as_of=first["token"]) is None
    as_of_first = get(client, "k", as_of=first["token"]).json()
    assert as_of_first["version"] == 1
    listed = client.get("/v1/kv/n", params={"as_of": first["token"]}).json()
    assert [item["key"] for item in listed["items"]] == ["k"]
    counts = client.get("/v1/namespaces", params={"as_of": full_token(client)}).json()
    assert counts["namespaces"] == [{"namespace": "n", "keys": 2}]


def test_as_of_reads_of_every_router(http_node: HttpNode) -> None:
    _, client = http_node
    run = client.post("/v1/runs", json={"run_id": "r1"}).json()
    client.post("/v1/runs/r1/events", json={"type": "a"})
    cas = client.post("/v1/state/s/cas", json={"expected_version": 0, "value": 1}).json()
    client.post("/v1/state/s/cas", json={"expected_version": 1, "value": 2})
    client.put("/v1/collections/c", json={"dimension": 2})
    before_vector = full_token(client)
    client.put("/v1/collections/c/vectors/v", json={"embedding": [1.0, 0.0]})
    ended = client.post("/v1/runs/r1/end", json={"status": "succeeded"}).json()
    assert client.get("/v1/runs/r1", params={"as_of": run["token"]}).json()["events"] == 0
    assert client.get("/v1/runs/r1", params={"as_of": ended["token"]}).json()["status"] == "succeeded"
    assert client.get("/v1/state/s", params={"as_of": cas["token"]}).json()["value"] == 1
    assert client.get("/v1/state/s").json()["value"] == 2
    search = {"vector": [1.0, 0.0], "k": 1}
    assert client.post("/v1/collections/c/search", json=search, params={"as_of": before_vector}).json()["hits"] == []
    assert len(client.post("/v1/collections/c/search", json=search).json()["hits"]) == 1
    assert client.get("/v1/runs/r1/verify", params={"as_of": ended["token"]}).json()["ok"] is True


def test_as_of_uses_the_as_of_time_as_the_reader_clock_for_expiry(http_node: HttpNode) -> None:
    _, client = http_node
    written = put(client, "ttl", "short", ttl_s=60)
    expires_at = written["timestamp_ms"] + 60_000
    assert value(client, "ttl", as_of=written["token"]) == "short"  # clock: the newest record's log time
    assert value(client, "ttl", as_of=f"t:{expires_at - 1}") == "short"
    assert value(client, "ttl", as_of=f"t:{expires_at}") is None  # expired by then, though not swept
    assert value(client, "ttl") == "short"


def test_as_of_errors(http_node: HttpNode) -> None:
    _, client = http_node
    written = put(client, "k", 1)
    assert_problem(get(client, "k", as_of="0:999999"), 409, "as_of_not_applied")
    assert_problem(get(client, "k", as_of="nonsense"), 400, "bad_as_of")
    assert_problem(get(client, "k", as_of="99:1"), 400, "bad_as_of")
    refused = client.put("/v1/kv/n/k", json={"value": 2}, params={"as_of": written["token"]})
    assert_problem(refused, 400, "as_of_on_write")
    assert value(client, "k") == 1


def test_as_of_states_are_cached_and_bounded() -> None:
    with EmbeddedAgentlog(memory_settings()) as client:
        tokens = [client.kv_put("n", "k", index).token for index in range(AS_OF_STATES + 2)]
        for index, token in enumerate(tokens):
            assert client.kv_get("n", "k", as_of=token).value == index  # type: ignore[union-attr]
        cache = client.node.branches._as_of
        assert len(cache) == AS_OF_STATES
        cached = next(reversed(cache.values()))
        assert client.kv_get("n", "k", as_of=tokens[-1]).value == len(tokens) - 1  # type: ignore[union-attr]
        assert next(reversed(cache.values())) is cached
        assert client.node.branches.main.state is not cached  # a copy of the live state, never the live one


# ------------------------------------------------------------------------------------------- branches


def test_branch_writes_never_reach_the_parent_and_the_parent_never_reaches_the_branch(http_node: HttpNode) -> None:
    _, client = http_node
    put(client, "shared", "before")
    made = create(client, "b")
    assert made["parent"] == "main"
    assert made["fork_token"] == full_token(client)
    put(client, "shared", "on-b", branch="b")
    put(client, "only-b", 1, branch="b")
    put(client, "only-main", 1)
    assert value(client, "shared") == "before"
    assert value(client, "only-b") is None
    assert value(client, "shared", branch="b") == "on-b"
    assert value(client, "only-main", branch="b") is None
    main_status = client.get("/v1/status").json()
    b_status = client.get("/v1/status", params={"branch": "b"}).json()
    assert b_status["branch"] == "b"
    assert b_status["topic"] == "branch.b"
    assert main_status["digests"]["records"] != b_status["digests"]["records"]


def test_a_branch_of_a_branch_and_every_router_on_a_branch(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "b")
    put(client, "k", "b1", branch="b")
    create(client, "c", **{"from": "b"})
    put(client, "k", "b2", branch="b")
    put(client, "k", "c1", branch="c")
    assert value(client, "k", branch="c") == "c1"
    assert value(client, "k", branch="b") == "b2"
    assert value(client, "k") is None
    on_c = {"branch": "c"}
    assert client.post("/v1/runs", json={"run_id": "rc"}, params=on_c).status_code == 201
    assert client.post("/v1/runs/rc/events", json={"type": "x"}, params=on_c).status_code == 200
    assert client.post("/v1/state/s/cas", json={"expected_version": 0, "value": 1}, params=on_c).status_code == 200
    assert client.put("/v1/collections/v", json={"dimension": 2}, params=on_c).status_code == 200
    assert client.get("/v1/runs/rc", params=on_c).json()["events"] == 1
    assert client.get("/v1/state/s", params=on_c).json()["value"] == 1
    assert client.get("/v1/collections/v", params=on_c).status_code == 200
    for branch in ("b", "main"):
        assert client.get("/v1/runs/rc", params={"branch": branch}).status_code == 404
        assert client.get("/v1/state/s", params={"branch": branch}).status_code == 404
        assert client.get("/v1/collections/v", params={"branch": branch}).status_code == 404
    # as_of works on branches too: c as of its fork cut is b at that cut.
    c_fork = client.get("/v1/branches/c").json()["fork_token"]
    assert value(client, "k", branch="c", as_of=c_fork) == "b1"
    listed = client.get("/v1/branches").json()["items"]
    assert [(item["name"], item["parent"]) for item in listed] == [("main", None), ("b", "main"), ("c", "b")]


def test_create_at_cut_time_and_run_event_and_the_errors(http_node: HttpNode) -> None:
    _, client = http_node
    first = put(client, "k", 1)
    time.sleep(0.005)
    put(client, "k", 2)
    create(client, "at-cut", at={"cut": first["token"]})
    assert value(client, "k", branch="at-cut") == 1
    create(client, "at-time", at={"time_ms": first["timestamp_ms"]})
    assert value(client, "k", branch="at-time") == 1
    create(client, "at-zero", at={"cut": ""})
    assert value(client, "k", branch="at-zero") is None
    assert_problem(client.post("/v1/branches", json={"name": "at-cut"}), 409, "branch_exists")
    assert_problem(client.post("/v1/branches", json={"name": "main"}), 409, "branch_exists")
    assert_problem(client.post("/v1/branches", json={"name": "x/y"}), 422, "invalid")
    assert_problem(client.post("/v1/branches", json={"name": "x", "from": "nope"}), 404, "branch_not_found")
    assert_problem(client.post("/v1/branches", json={"name": "x", "at": {"cut": "0:99999"}}), 422, "invalid")
    assert_problem(client.post("/v1/branches", json={"name": "x", "at": {"run_id": "r", "seq": 1}}), 404, "not_found")
    assert_problem(client.post("/v1/branches", json={"name": "x", "at": {"seq": 1}}), 422, "invalid")
    assert client.get("/v1/branches/x").status_code == 404
    assert_problem(get(client, "k", branch="nope"), 404, "branch_not_found")
    assert_problem(client.put("/v1/kv/n/k", json={"value": 1}, params={"branch": "nope"}), 404, "branch_not_found")
    assert_problem(get(client, "k", branch="a/b"), 422, "invalid")


def test_delete_is_refused_while_a_branch_of_it_exists(http_node: HttpNode) -> None:
    _, client = http_node
    create(client, "parent")
    put(client, "k", "p", branch="parent")
    create(client, "child", **{"from": "parent"})
    body = assert_problem(client.delete("/v1/branches/parent"), 409, "branch_in_use")
    assert body["children"] == ["child"]
    assert value(client, "k", branch="parent") == "p"
    assert_problem(client.delete("/v1/branches/main"), 400, "bad_branch")
    assert client.delete("/v1/branches/child").json() == {"name": "child", "deleted": True}
    assert client.delete("/v1/branches/parent").status_code == 200
    assert_problem(client.delete("/v1/branches/parent"), 404, "branch_not_found")
    assert_problem(get(client, "k", branch="parent"), 404, "branch_not_found")
    create(client, "parent")  # the name is free again, and the branch starts afresh
    assert value(client, "k", branch="parent") is None


def test_fork_run_continues_the_run_on_a_new_branch(http_node: HttpNode) -> None:
    _, client = http_node
    assert client.post("/v1/runs", json={"run_id": "r"}).status_code == 201
    client.put("/v1/kv/n/noise", json={"value": 0})
    for step in range(1, 4):
        assert client.post("/v1/runs/r/events", json={"type": "step", "payload": step}).status_code == 200
        put(client, f"after-{step}", step)
    response = client.post("/v1/runs/r/fork", json={"at_seq": 2, "new_run_id": "r-retry"})
    assert response.status_code == 201, response.text
    fork = response.json()
    branch = fork["branch"]
    assert branch.startswith("r.fork-2-")
    assert fork["begin"]["outcome"] == "applied"
    on_fork = {"branch": branch}
    events = client.get("/v1/runs/r/events", params=on_fork).json()["items"]
    assert [event["payload"] for event in events] == [1, 2]
    # The partition of the run is cut just after event 2; the others at its log time.
    assert value(client, "after-1", branch=branch) == 1
    assert value(client, "after-2", branch=branch) is None
    appended = client.post("/v1/runs/r/events", json={"type": "step", "payload": "other"}, params=on_fork)
    assert appended.json()["result"]["seq"] == 3
    assert client.get("/v1/runs/r/verify", params=on_fork).json()["ok"] is True
    assert [e["payload"] for e in client.get("/v1/runs/r/events").json()["items"]] == [1, 2, 3]
    retry = client.get("/v1/runs/r-retry", params=on_fork).json()
    assert retry["parent_run_id"] == "r"
    assert retry["metadata"] == {"forked_from": {"branch": "main", "run_id": "r", "seq": 2}}
    assert client.get("/v1/runs/r-retry").status_code == 404
    named = client.post("/v1/runs/r/fork", json={"at_seq": 3, "branch": "again"}, params=on_fork).json()
    assert named["branch"] == "again"
    assert named["from"] == branch
    again = client.get("/v1/runs/r/events", params={"branch": "again"}).json()["items"]
    assert [event["payload"] for event in again] == [1, 2, "other"]
    assert_problem(client.post("/v1/runs/r/fork", json={"at_seq": 9}), 404, "not_found")
    assert_problem(client.post("/v1/runs/nope/fork", json={"at_seq": 1}), 404, "not_found")
    taken = client.post("/v1/runs/r/fork", json={"at_seq": 1, "branch": "again"})
    assert_problem(taken, 409, "branch_exists")


def test_fork_with_a_run_id_taken_on_the_branch_leaves_no_branch(http_node: HttpNode) -> None:
    _, client = http_node
    client.post("/v1/runs", json={"run_id": "r"})
    client.post("/v1/runs/r/events", json={"type": "x"})
    refused = client.post("/v1/runs/r/fork", json={"at_seq": 1, "new_run_id": "r", "branch": "f"})
    assert_problem(refused, 409, "already_exists")
    assert client.get("/v1/branches/f").status_code == 404


# ------------------------------------------------------------------------------------------- SDK


@pytest.fixture
def sdk_client(http_node: HttpNode) -> Iterator[AgentlogClient]:
    with AgentlogClient(http_node.base_url, tenant="t", agent_id="sdk") as client:
        yield client


def test_sdk_branches_fork_and_per_branch_tokens(sdk_client: AgentlogClient) -> None:
    client = sdk_client
    first = client.kv_put("n", "k", 1)
    made = client.create_branch("b")
    assert made.parent == "main"
    assert made.fork_token is not None
    for index in range(5):  # the branch's offsets run ahead of main's
        client.kv_put("n", f"b{index}", index, branch="b")
    assert client.session.token_for("b") != client.token
    assert client.kv_get("n", "b0") is None  # main, with main's token: no wait on the branch's offsets
    assert client.kv_get("n", "b4", branch="b").value == 4  # type: ignore[union-attr]
    client.kv_put("n", "k", 2)
    assert client.kv_get("n", "k", as_of=first.token).value == 1  # type: ignore[union-attr]
    assert client.kv_get("n", "k", branch="b").value == 1  # type: ignore[union-attr]
    assert [b.name for b in client.list_branches()] == ["main", "b"]
    assert client.get_branch("nope") is None
    client.begin_run("r")
    client.append_event("r", "step", 1)
    client.append_event("r", "step", 2)
    fork = client.fork_run("r", 1, new_branch="f")
    assert (fork.branch, fork.at_seq, fork.new_run_id) == ("f", 1, None)
    client.append_event("r", "step", "f2", branch="f")
    assert [e.payload for e in client.events("r", branch="f").items] == [1, "f2"]
    assert client.status(branch="f")["topic"] == tenant_branch_prefix("t") + "f"  # tenant t's branch topic
    child = client.create_branch("f2", "f", run_id="r", seq=2)
    assert child.parent == "f"
    assert client.events("r", branch="f2").items[-1].payload == "f2"
    assert client.delete_branch("f2") == {"name": "f2", "deleted": True}
    with pytest.raises(NotFoundError):
        client.delete_branch("f2")


@pytest.mark.anyio
async def test_async_embedded_state_at_and_fork() -> None:
    async with AsyncEmbeddedAgentlog(memory_settings()) as client:
        await client.begin_run("r")
        first = await client.append_event("r", "step", 1)
        await client.append_event("r", "step", 2)
        node = client.node
        state = await node.state_at(first.token)
        assert state.applied[first.position.partition] == first.position.offset + 1
        assert state is not node.state
        fork = await client.fork_run("r", 1, new_run_id="r2")
        assert fork.begin is not None
        assert (await client.get_run("r2", branch=fork.branch)).parent_run_id == "r"  # type: ignore[union-attr]
        assert await client.get_run("r2") is None
        assert [b.name for b in await client.list_branches()] == ["main", fork.branch]
