"""Invariants 6 and 8 over real HTTP: tenant-scoped idempotency keys, roles, tenant-owned branches.

Defect regressions: another tenant's `command_id` never answers for a write; branch administration,
status and metrics need a key and the right role; a tenant never sees another tenant's branches;
as_of rebuilds are bounded per tenant.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import query_api.node.branches as branches_module
from eventlog.partitioner import partition_for
from query_api.settings import Settings
from tests.query_api.http_node import CLIENT_TIMEOUT_S, HttpNode, assert_problem, memory_settings, serve

pytest_plugins = ("tests.query_api.http_node",)

KEYS = {
    "alice-reader": {"tenant": "alice", "agent_id": "a-r", "role": "reader"},
    "alice-writer": {"tenant": "alice", "agent_id": "a-w"},  # no role: writer, as older key files
    "alice-admin": {"tenant": "alice", "agent_id": "a-a", "role": "admin"},
    "bob-writer": {"tenant": "bob", "agent_id": "b-w", "role": "writer"},
    "bob-admin": {"tenant": "bob", "agent_id": "b-a", "role": "admin"},
}


def _bob_namespace_beside(alice_namespace: str, partitions: int = 8) -> str:
    """A namespace of tenant bob on the partition of alice's `alice_namespace`."""
    target = partition_for(f"alice/{alice_namespace}".encode(), partitions)
    return next(f"ns{i}" for i in range(1000) if partition_for(f"bob/ns{i}".encode(), partitions) == target)


# ------------------------------------------------------------------------------------------- idempotency


def test_another_tenants_command_id_never_answers_for_a_write(http_node: HttpNode) -> None:
    alice = http_node.new_client(**{"X-Tenant": "alice"})
    bob = http_node.new_client(**{"X-Tenant": "bob"})
    with alice, bob:
        bob_namespace = _bob_namespace_beside("notes")
        first = alice.put("/v1/kv/notes/k", json={"value": "alice's", "command_id": "cmd-1"})
        assert first.status_code == 200, first.text
        second = bob.put(f"/v1/kv/{bob_namespace}/k", json={"value": "bob's", "command_id": "cmd-1"})
        assert second.status_code == 200, second.text
        assert second.json()["position"]["partition"] == first.json()["position"]["partition"]
        assert second.json()["result"]["version"] == 1
        read = bob.get(f"/v1/kv/{bob_namespace}/k", params={"token": second.json()["token"]})
        assert read.status_code == 200, read.text
        assert read.json()["value"] == "bob's"
        assert alice.get("/v1/kv/notes/k").json()["value"] == "alice's"


def test_the_same_key_for_a_different_command_is_409_and_changes_nothing(http_node: HttpNode) -> None:
    client = http_node.client
    first = client.put("/v1/kv/notes/k", json={"value": 1, "command_id": "cmd-7"})
    assert first.status_code == 200, first.text
    ends_before = [p["end_offset"] for p in client.get("/v1/status").json()["partitions"]]
    reused = client.put("/v1/kv/notes/k", json={"value": 2, "command_id": "cmd-7"})
    body = assert_problem(reused, 409, "idempotency_key_reused")
    assert "cmd-7" in body["detail"]
    elsewhere = client.put("/v1/kv/other/k", json={"value": 1, "command_id": "cmd-7"})  # another partition too
    assert_problem(elsewhere, 409, "idempotency_key_reused")
    assert [p["end_offset"] for p in client.get("/v1/status").json()["partitions"]] == ends_before
    record = client.get("/v1/kv/notes/k").json()
    assert (record["value"], record["version"]) == (1, 1)
    assert client.get("/v1/kv/other/k").status_code == 404
    retry = client.put("/v1/kv/notes/k", json={"value": 1, "command_id": "cmd-7"})
    assert retry.status_code == 200, retry.text
    assert retry.json()["result"] == first.json()["result"]


# ------------------------------------------------------------------------------------------- roles


@pytest.fixture
def keyed(tmp_path: Path) -> Iterator[str]:
    """A node in API-key mode; its base URL."""
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": KEYS}))
    settings: Settings = memory_settings(api_keys_file=keys, read_wait_ms_max=1_000)
    with serve(settings) as base_url:
        yield base_url


def _client(base_url: str, key: str | None) -> httpx.Client:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=base_url, timeout=CLIENT_TIMEOUT_S, headers=headers)


def _request(client: httpx.Client, method: str, path: str, body: Any = None) -> httpx.Response:
    return client.request(method, path, json=body)


#: Admin routes: (method, path, body). Each must answer 401 without a key and 403 for a writer.
ADMIN_ROUTES: list[tuple[str, str, Any]] = [
    ("DELETE", "/v1/branches/exp", None),
    ("GET", "/metrics", None),
    ("GET", "/v1/log", None),
]
#: Routes of the reader role and above: 401 without a key.
READER_ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/v1/branches", None),
    ("GET", "/v1/branches/exp", None),
    ("GET", "/v1/status", None),
    ("GET", "/v1/status?branch=exp", None),
    ("GET", "/v1/diff?cut_a=0:0", None),
    ("GET", "/v1/kv/notes/k", None),
]
#: Routes of the writer role and above: 401 without a key, 403 for a reader.
WRITER_ROUTES: list[tuple[str, str, Any]] = [
    ("POST", "/v1/branches", {"name": "new"}),
    ("POST", "/v1/runs/r1/fork", {"at_seq": 1}),
    ("PUT", "/v1/kv/notes/k", {"value": 1}),
]


def test_every_admin_route_refuses_a_missing_key_and_a_weaker_role(keyed: str) -> None:
    with _client(keyed, None) as anonymous, _client(keyed, "alice-writer") as writer:
        for client in (_client(keyed, "alice-admin"),):
            with client:
                made = client.post("/v1/branches", json={"name": "exp"})
                assert made.status_code == 201, made.text
        for method, path, body in ADMIN_ROUTES + READER_ROUTES + WRITER_ROUTES:
            assert_problem(_request(anonymous, method, path, body), 401, "unauthorized")
        with _client(keyed, "unknown") as unknown:
            for method, path, body in ADMIN_ROUTES:
                assert_problem(_request(unknown, method, path, body), 401, "unauthorized")
        for method, path, body in ADMIN_ROUTES:
            problem = assert_problem(_request(writer, method, path, body), 403, "forbidden")
            assert problem["role"] == "writer"
        with _client(keyed, "alice-reader") as reader:
            for method, path, body in ADMIN_ROUTES + WRITER_ROUTES:
                assert_problem(_request(reader, method, path, body), 403, "forbidden")
            for method, path, _ in READER_ROUTES:
                assert _request(reader, method, path).status_code in (200, 404), path
        assert writer.get("/v1/branches/exp").status_code == 200  # the admin-only delete never ran
        with _client(keyed, "alice-admin") as admin:
            assert admin.get("/metrics").status_code == 200
            assert admin.get("/v1/log").status_code == 200
            assert admin.delete("/v1/branches/exp").status_code == 200


def test_status_shows_node_wide_detail_to_admins_only(keyed: str) -> None:
    with _client(keyed, "alice-writer") as writer, _client(keyed, "alice-admin") as admin:
        assert writer.put("/v1/kv/notes/k", json={"value": 1}).status_code == 200
        tenant_view = writer.get("/v1/status")
        assert tenant_view.status_code == 200, tenant_view.text
        assert set(tenant_view.json()) == {"branch", "token", "status"}
        full = admin.get("/v1/status").json()
        assert {"partitions", "digests", "snapshot", "topic"} <= set(full)
        assert sum(p["end_offset"] for p in full["partitions"]) == 1


def test_a_tenant_never_sees_reads_or_deletes_another_tenants_branch(keyed: str) -> None:
    with (
        _client(keyed, "alice-admin") as alice,
        _client(keyed, "bob-writer") as bob,
        _client(keyed, "bob-admin") as bob_admin,
    ):
        assert alice.post("/v1/runs", json={"run_id": "alice-secret-run"}).status_code == 201
        event = alice.post("/v1/runs/alice-secret-run/events", json={"type": "step", "payload": 1})
        assert event.status_code == 200, event.text
        assert alice.put("/v1/kv/notes/k", json={"value": "a"}, params={"branch": "main"}).status_code == 200
        assert alice.post("/v1/branches", json={"name": "exp"}).status_code == 201
        fork = alice.post("/v1/runs/alice-secret-run/fork", json={"at_seq": 1})
        assert fork.status_code == 201, fork.text
        fork_name = fork.json()["branch"]
        assert alice.put("/v1/kv/notes/k", json={"value": "on exp"}, params={"branch": "exp"}).status_code == 200

        listed = bob.get("/v1/branches").json()["items"]
        assert [item["name"] for item in listed] == ["main"]
        assert "alice-secret-run" not in json.dumps(listed)
        for name in ("exp", fork_name):
            assert_problem(bob.get(f"/v1/branches/{name}"), 404, "branch_not_found")
            assert_problem(bob.get("/v1/kv/notes/k", params={"branch": name}), 404, "branch_not_found")
            assert_problem(
                bob.put("/v1/kv/notes/k", json={"value": 1}, params={"branch": name}), 404, "branch_not_found"
            )
            assert_problem(bob.get("/v1/status", params={"branch": name}), 404, "branch_not_found")
            assert_problem(bob_admin.delete(f"/v1/branches/{name}"), 404, "branch_not_found")
        assert_problem(bob.get("/v1/diff", params={"cut_a": "0:0", "branch_b": "exp"}), 404, "branch_not_found")

        assert bob.post("/v1/branches", json={"name": "exp"}).status_code == 201  # bob's own, same name
        assert bob.get("/v1/kv/notes/k", params={"branch": "exp"}).status_code == 404
        alice_names = [item["name"] for item in alice.get("/v1/branches").json()["items"]]
        assert alice_names == ["main", *sorted(["exp", fork_name])]
        assert alice.get("/v1/kv/notes/k", params={"branch": "exp"}).json()["value"] == "on exp"


def test_a_reserved_branch_name_is_refused(http_node: HttpNode) -> None:
    made = http_node.client.post("/v1/branches", json={"name": "t0123456789abcdef.x"})
    assert_problem(made, 400, "bad_branch")


def test_as_of_rebuilds_past_the_tenant_bound_answer_429_with_retry_after(
    http_node: HttpNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = http_node.client
    first = client.put("/v1/kv/n/k", json={"value": 1}).json()
    client.put("/v1/kv/n/k", json={"value": 2})
    monkeypatch.setattr(branches_module, "AS_OF_REBUILDS_PER_TENANT_MAX", 0)
    refused = client.get("/v1/kv/n/k", params={"as_of": first["token"]})
    assert_problem(refused, 429, "too_many_rebuilds")
    assert refused.headers["Retry-After"] == "1"
    monkeypatch.setattr(branches_module, "AS_OF_REBUILDS_PER_TENANT_MAX", 2)
    answered = client.get("/v1/kv/n/k", params={"as_of": first["token"]})
    assert answered.status_code == 200, answered.text
    assert answered.json()["value"] == 1


async def _bounded_rebuilds(monkeypatch: pytest.MonkeyPatch) -> None:
    from commands import Caller, CommandProducer, KvPut, stamp
    from eventlog.memory import MemoryLog
    from projections.catalog import new_state
    from projections.engine import Engine
    from query_api.node.branches import BranchError, Branches

    log = MemoryLog()
    await log.create_topic("main", 1)
    producer = CommandProducer(log, "main")
    for index in range(6):
        await producer.submit(stamp(KvPut(key="k", value=index), Caller("a"), namespace="n"))
    engine = Engine(log, "main", new_state(1))
    await engine.catch_up()
    branches = Branches(log, "main", engine, producer)
    release = asyncio.Event()
    real_rebuild = branches_module.rebuild

    async def slow_rebuild(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await real_rebuild(*args, **kwargs)

    monkeypatch.setattr(branches_module, "rebuild", slow_rebuild)
    first = asyncio.create_task(branches.state_at(branches.main, [1], "a"))
    second = asyncio.create_task(branches.state_at(branches.main, [2], "a"))
    other_tenant = asyncio.create_task(branches.state_at(branches.main, [3], "b"))
    await asyncio.sleep(0)
    with pytest.raises(BranchError) as refused:
        await branches.state_at(branches.main, [4], "a")
    assert (refused.value.status, refused.value.code, refused.value.retry_after_s) == (429, "too_many_rebuilds", 1)
    release.set()
    states = await asyncio.gather(first, second, other_tenant)
    assert [state.applied for state in states] == [[1], [2], [3]]
    assert (await branches.state_at(branches.main, [4], "a")).applied == [4]  # a slot is free again


def test_a_tenant_past_its_rebuild_bound_is_refused_while_others_go_on(monkeypatch: pytest.MonkeyPatch) -> None:
    asyncio.run(_bounded_rebuilds(monkeypatch))
