"""State CAS, locks and transactions over real HTTP (uvicorn in a thread, httpx clients)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from eventlog.partitioner import partition_for
from tests.query_api.http_node import HttpNode, assert_problem, assert_same_outcome

pytest_plugins = ("tests.query_api.http_node",)

#: Partitions of the test node's topic (the Settings default).
PARTITIONS = 8


def cas(client: httpx.Client, name: str, expected: int, value: Any, **extra: Any) -> httpx.Response:
    """POST a compare-and-swap."""
    return client.post(f"/v1/state/{name}/cas", json={"expected_version": expected, "value": value, **extra})


def namespaces_by_partition(tenant: str, count: int = 64) -> dict[int, list[str]]:
    """Namespaces `ns-0 ...` of `tenant` grouped by the partition they route to."""
    groups: dict[int, list[str]] = {}
    for index in range(count):
        namespace = f"ns-{index}"
        groups.setdefault(partition_for(f"{tenant}/{namespace}".encode(), PARTITIONS), []).append(namespace)
    return groups


# ------------------------------------------------------------------------------------------- state


def test_cas_creates_updates_and_reads_back_with_token(http_node: HttpNode) -> None:
    _, client = http_node
    created = cas(client, "counter", 0, {"n": 1})
    assert created.status_code == 200, created.text
    body = created.json()
    assert body["outcome"] == "applied"
    assert body["result"] == {"name": "counter", "version": 1}
    assert set(body) >= {"command_id", "position", "token", "timestamp_ms"}

    read = client.get("/v1/state/counter", params={"token": body["token"], "wait_ms": 5_000})
    assert read.status_code == 200, read.text
    assert read.json()["value"] == {"n": 1}
    assert read.json()["version"] == 1
    assert read.json()["namespace"] == "default"

    updated = cas(client, "counter", 1, {"n": 2})
    assert updated.json()["result"]["version"] == 2
    read = client.get("/v1/state/counter", params={"token": updated.json()["token"]})
    assert read.json()["value"] == {"n": 2}
    assert read.json()["version"] == 2


def test_cas_conflict_is_409_with_current_version_and_changes_nothing(http_node: HttpNode) -> None:
    _, client = http_node
    cas(client, "x", 0, "first")
    conflict = assert_problem(cas(client, "x", 0, "second"), 409, "version_conflict")
    assert conflict["current_version"] == 1
    assert conflict["write"]["outcome"] == "rejected"
    stale = assert_problem(cas(client, "x", 7, "third"), 409, "version_conflict")
    assert stale["current_version"] == 1
    read = client.get("/v1/state/x", params={"token": stale["write"]["token"]})
    assert read.json()["value"] == "first"
    assert read.json()["version"] == 1


def test_read_with_unapplied_or_bad_token_fails_clearly(http_node: HttpNode) -> None:
    _, client = http_node
    ahead = client.get("/v1/state/x", params={"token": "0:1000000", "wait_ms": 50})
    assert "0:1000000" in assert_problem(ahead, 409, "token_ahead")["detail"]
    assert_problem(client.get("/v1/state/x", params={"token": "not-a-token"}), 400, "bad_token")
    assert_problem(client.get("/v1/state/x", params={"token": "0:1", "wait_ms": -1}), 422, "invalid")


def test_absent_state_is_404(http_node: HttpNode) -> None:
    _, client = http_node
    missing = assert_problem(client.get("/v1/state/nothing-here"), 404, "not_found")
    assert missing["current_version"] == 0


def test_state_names_may_contain_slashes_and_namespaces_are_separate(http_node: HttpNode) -> None:
    _, client = http_node
    written = cas(client, "jobs/42/status", 0, "queued", namespace="team-a")
    assert written.status_code == 200, written.text
    token = written.json()["token"]
    read = client.get("/v1/state/jobs/42/status", params={"namespace": "team-a", "token": token})
    assert read.json()["value"] == "queued"
    assert_problem(client.get("/v1/state/jobs/42/status", params={"token": token}), 404, "not_found")


def test_list_state_pages_by_name(http_node: HttpNode) -> None:
    _, client = http_node
    token = ""
    for name in ("b", "a", "c", "other"):
        token = cas(client, f"p/{name}", 0, name).json()["token"]
    cas(client, "zzz", 0, 1)
    first = client.get("/v1/state", params={"prefix": "p/", "limit": 2, "token": token}).json()
    assert [item["name"] for item in first["items"]] == ["p/a", "p/b"]
    assert first["next_cursor"] == "p/b"
    rest = client.get("/v1/state", params={"prefix": "p/", "limit": 2, "cursor": first["next_cursor"]}).json()
    assert [item["name"] for item in rest["items"]] == ["p/c", "p/other"]


def test_bad_cas_bodies_are_422(http_node: HttpNode) -> None:
    _, client = http_node
    bad_bodies: list[dict[str, Any]] = [
        {"value": 1},
        {"expected_version": -1, "value": 1},
        {"expected_version": "one", "value": 1},
        {"expected_version": "0", "value": 1},
        {"expected_version": 0.5, "value": 1},
        {"expected_version": 0},
        {"expected_version": 0, "value": 1, "tenant": "someone-else"},
        {"expected_version": 0, "value": 1, "namespace": "no spaces"},
    ]
    for body in bad_bodies:
        assert_problem(client.post("/v1/state/k/cas", json=body), 422, "invalid")
    garbage = client.post("/v1/state/k/cas", content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(garbage, 422, "invalid")
    assert_problem(cas(client, "bad%01name", 0, 1), 422, "invalid")
    assert_problem(client.get("/v1/state/k", params={"namespace": "../etc"}), 422, "invalid")
    assert_problem(client.get("/v1/state/k"), 404, "not_found")


def test_tenants_never_see_each_others_state(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "acme"}) as acme, http_node.new_client(**{"X-Tenant": "globex"}) as globex:
        written = cas(acme, "secret", 0, "acme-only")
        token = written.json()["token"]
        assert acme.get("/v1/state/secret", params={"token": token}).json()["value"] == "acme-only"
        assert_problem(globex.get("/v1/state/secret", params={"token": token}), 404, "not_found")
        assert globex.get("/v1/state", params={"token": token}).json()["items"] == []
        # Same name, separate version space: globex creates its own record at version 1.
        own = cas(globex, "secret", 0, "globex-only")
        assert own.json()["result"]["version"] == 1
        assert acme.get("/v1/state/secret", params={"token": own.json()["token"]}).json()["value"] == "acme-only"
        # A tenant named in the body is refused, never trusted.
        assert_problem(cas(globex, "secret", 1, "x", tenant="acme"), 422, "invalid")
        assert_problem(globex.get("/v1/state/secret", headers={"X-Tenant": "bad tenant"}), 400, "invalid")


def test_retried_command_id_applies_once_and_answers_the_first_outcome(http_node: HttpNode) -> None:
    _, client = http_node
    first = cas(client, "once", 0, "a", command_id="cas-once-1")
    second = cas(client, "once", 0, "a", command_id="cas-once-1")
    assert first.status_code == 200, first.text
    assert_same_outcome(first, second)
    read = client.get("/v1/state/once", params={"token": second.json()["token"]})
    assert read.json()["version"] == 1

    # A retry of a rejected command answers the same rejection, even after the state moved on.
    rejected = cas(client, "once", 0, "b", command_id="cas-once-2")
    assert_problem(rejected, 409, "version_conflict")
    cas(client, "once", 1, "c")
    retried = cas(client, "once", 0, "b", command_id="cas-once-2")
    assert_same_outcome(rejected, retried)
    assert client.get("/v1/state/once", params={"token": retried.json()["write"]["token"]}).json()["version"] == 2


def test_concurrent_cas_increments_never_grant_a_version_twice(http_node: HttpNode) -> None:
    threads, increments = 8, 25
    start = threading.Barrier(threads)

    def worker(index: int) -> list[int]:
        granted: list[int] = []
        with http_node.new_client(**{"X-Agent-Id": f"worker-{index}"}) as client:
            start.wait()
            while len(granted) < increments:
                read = client.get("/v1/state/shared-counter")
                if read.status_code == 404:
                    version, value = 0, 0
                else:
                    assert read.status_code == 200, read.text
                    version, value = read.json()["version"], read.json()["value"]
                written = cas(client, "shared-counter", version, value + 1)
                if written.status_code == 409:
                    assert_problem(written, 409, "version_conflict")
                    continue
                assert written.status_code == 200, written.text
                assert written.json()["result"]["version"] == version + 1
                granted.append(version + 1)
        return granted

    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = [future.result() for future in [pool.submit(worker, i) for i in range(threads)]]

    granted = [version for result in results for version in result]
    assert len(granted) == threads * increments
    assert sorted(granted) == list(range(1, threads * increments + 1))  # no version granted twice
    final = http_node.client.get("/v1/state/shared-counter").json()
    assert final["version"] == threads * increments
    assert final["value"] == threads * increments


# ------------------------------------------------------------------------------------------- locks


def test_lock_lifecycle_with_fencing_tokens(http_node: HttpNode) -> None:
    _, client = http_node
    taken = client.post("/v1/locks/build/acquire", json={"holder": "ci-1", "ttl_s": 60})
    assert taken.status_code == 200, taken.text
    token = taken.json()["result"]["fencing_token"]
    assert token == 1

    other = client.post("/v1/locks/build/acquire", json={"holder": "ci-2", "ttl_s": 60})
    held = assert_problem(other, 409, "lock_held")
    assert held["holder"] == "ci-1"
    assert held["expires_at_ms"] == taken.json()["result"]["expires_at_ms"]

    view = client.get("/v1/locks/build", params={"token": held["write"]["token"]}).json()
    assert view["holder"] == "ci-1"
    assert view["held"] is True
    assert view["fencing_token"] == token

    renewed = client.post("/v1/locks/build/renew", json={"holder": "ci-1", "fencing_token": token, "ttl_s": 120})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["result"]["fencing_token"] == token

    stale = client.post("/v1/locks/build/renew", json={"holder": "ci-1", "fencing_token": token + 5, "ttl_s": 1})
    assert assert_problem(stale, 409, "version_conflict")["current_version"] == token
    stranger = client.post("/v1/locks/build/release", json={"holder": "ci-2", "fencing_token": token})
    assert_problem(stranger, 403, "forbidden")

    released = client.post("/v1/locks/build/release", json={"holder": "ci-1", "fencing_token": token})
    assert released.status_code == 200, released.text
    view = client.get("/v1/locks/build", params={"token": released.json()["token"]}).json()
    assert view["held"] is False
    assert view["holder"] is None

    again = client.post("/v1/locks/build/acquire", json={"holder": "ci-2", "ttl_s": 60})
    assert again.json()["result"]["fencing_token"] > token


def test_lock_rejections(http_node: HttpNode) -> None:
    _, client = http_node
    missing = client.post("/v1/locks/none/renew", json={"holder": "a", "fencing_token": 1, "ttl_s": 5})
    assert_problem(missing, 404, "not_found")
    assert_problem(client.post("/v1/locks/none/release", json={"holder": "a", "fencing_token": 1}), 404, "not_found")
    assert_problem(client.get("/v1/locks/none"), 404, "not_found")
    for body in ({"holder": "a"}, {"holder": "a", "ttl_s": 0}, {"ttl_s": 5}, {"holder": "a b", "ttl_s": 5}):
        assert_problem(client.post("/v1/locks/L/acquire", json=body), 422, "invalid")
    assert_problem(client.post("/v1/locks/L/renew", json={"holder": "a", "ttl_s": 5}), 422, "invalid")
    assert_problem(client.post("/v1/locks/L/release", json={"holder": "a", "fencing_token": 0}), 422, "invalid")
    # A plain state record is not a lock.
    cas(client, "plain", 0, 1)
    assert_problem(client.post("/v1/locks/plain/acquire", json={"holder": "a", "ttl_s": 5}), 422, "invalid")


def test_expired_lock_can_be_taken_by_another_holder(http_node: HttpNode) -> None:
    _, client = http_node
    first = client.post("/v1/locks/lease/acquire", json={"holder": "slow", "ttl_s": 1}).json()["result"]
    while time.time() * 1000 <= first["expires_at_ms"] + 50:
        time.sleep(0.05)
    taken = client.post("/v1/locks/lease/acquire", json={"holder": "fast", "ttl_s": 30})
    assert taken.status_code == 200, taken.text
    assert taken.json()["result"]["fencing_token"] == first["fencing_token"] + 1
    expired = client.post("/v1/locks/lease/renew", json={"holder": "slow", "fencing_token": 1, "ttl_s": 30})
    assert_problem(expired, 409, "version_conflict")


def test_lock_tenants_are_isolated(http_node: HttpNode) -> None:
    with http_node.new_client(**{"X-Tenant": "t1"}) as one, http_node.new_client(**{"X-Tenant": "t2"}) as two:
        assert one.post("/v1/locks/shared/acquire", json={"holder": "h", "ttl_s": 60}).status_code == 200
        taken = two.post("/v1/locks/shared/acquire", json={"holder": "other", "ttl_s": 60})
        assert taken.status_code == 200, taken.text
        assert taken.json()["result"]["fencing_token"] == 1


# ------------------------------------------------------------------------------------------- txn


def test_txn_commits_kv_and_state_writes_together(http_node: HttpNode) -> None:
    _, client = http_node
    base = cas(client, "balance", 0, 100).json()
    committed = client.post(
        "/v1/txn",
        json={
            "reads": [{"kind": "state", "key": "balance", "version": 1}],
            "preconditions": [{"kind": "kv", "key": "receipt", "exists": False}],
            "writes": [
                {"op": "state.set", "key": "balance", "value": 60},
                {"op": "kv.put", "key": "receipt", "value": {"paid": 40}},
            ],
        },
        params={"token": base["token"]},
    )
    assert committed.status_code == 200, committed.text
    result = committed.json()["result"]
    assert result["committed"] is True
    assert [write["op"] for write in result["writes"]] == ["state.set", "kv.put"]
    token = committed.json()["token"]
    balance = client.get("/v1/state/balance", params={"token": token}).json()
    assert (balance["value"], balance["version"]) == (60, 2)
    assert client.get("/v1/kv/default/receipt", params={"token": token}).json()["value"] == {"paid": 40}


def test_txn_stale_read_or_false_precondition_writes_nothing(http_node: HttpNode) -> None:
    _, client = http_node
    cas(client, "stock", 0, 5)
    stale = client.post(
        "/v1/txn",
        json={
            "reads": [{"kind": "state", "key": "stock", "version": 0}],
            "writes": [{"op": "state.set", "key": "stock", "value": 4}, {"op": "kv.put", "key": "order", "value": 1}],
        },
    )
    problem = assert_problem(stale, 409, "version_conflict")
    assert problem["conflicts"] == [
        {"kind": "state", "namespace": "default", "key": "stock", "expected_version": 0, "current_version": 1}
    ]
    failed = client.post(
        "/v1/txn",
        json={
            "preconditions": [{"kind": "kv", "key": "order", "exists": True}],
            "writes": [{"op": "state.set", "key": "stock", "value": 4}],
        },
    )
    problem = assert_problem(failed, 409, "precondition_failed")
    assert problem["failed"][0]["key"] == "order"
    token = problem["write"]["token"]
    assert client.get("/v1/state/stock", params={"token": token}).json()["value"] == 5
    assert_problem(client.get("/v1/kv/default/order", params={"token": token}), 404, "not_found")


def test_txn_across_partitions_is_422_cross_partition(http_node: HttpNode) -> None:
    _, client = http_node
    groups = namespaces_by_partition("default")
    here, there = (group[0] for group in list(groups.values())[:2])
    refused = client.post(
        "/v1/txn",
        json={"namespace": here, "writes": [{"op": "kv.put", "key": "k", "value": 1, "namespace": there}]},
    )
    assert_problem(refused, 422, "cross_partition")
    assert_problem(client.get("/v1/kv/" + there + "/k"), 404, "not_found")

    # Namespaces that share a partition may be written together.
    same = next(group for group in groups.values() if len(group) >= 2)
    together = client.post(
        "/v1/txn",
        json={
            "namespace": same[0],
            "writes": [
                {"op": "kv.put", "key": "k", "value": 1},
                {"op": "state.set", "key": "s", "value": 2, "namespace": same[1]},
            ],
        },
    )
    assert together.status_code == 200, together.text
    read = client.get("/v1/state/s", params={"namespace": same[1], "token": together.json()["token"]})
    assert read.json()["value"] == 2


def test_bad_txn_bodies_are_422(http_node: HttpNode) -> None:
    _, client = http_node
    bad_bodies: list[dict[str, Any]] = [
        {},
        {"reads": [], "writes": [], "preconditions": []},
        {"writes": [{"op": "kv.upsert", "key": "k", "value": 1}]},
        {"preconditions": [{"key": "k"}]},
        {"preconditions": [{"key": "k", "exists": True, "version": 1}]},
        {"writes": [{"op": "kv.put", "key": "k", "value": 1}, {"op": "kv.put", "key": "k", "value": 2}]},
        {"writes": [{"op": "kv.put", "key": "k", "value": 1}], "tenant": "x"},
    ]
    for body in bad_bodies:
        assert_problem(client.post("/v1/txn", json=body), 422, "invalid")


def test_txn_retry_with_same_command_id_applies_once(http_node: HttpNode) -> None:
    _, client = http_node
    body = {"command_id": "txn-1", "writes": [{"op": "state.set", "key": "t", "value": "v"}]}
    first = client.post("/v1/txn", json=body)
    second = client.post("/v1/txn", json=body)
    assert first.status_code == 200, first.text
    assert_same_outcome(first, second)
    assert client.get("/v1/state/t", params={"token": second.json()["token"]}).json()["version"] == 1


def test_openapi_documents_every_coordination_route(http_node: HttpNode) -> None:
    _, client = http_node
    spec = client.get("/openapi.json").json()
    expected = {
        ("/v1/state", "get"),
        ("/v1/state/{name}", "get"),
        ("/v1/state/{name}/cas", "post"),
        ("/v1/locks/{name}", "get"),
        ("/v1/locks/{name}/acquire", "post"),
        ("/v1/locks/{name}/renew", "post"),
        ("/v1/locks/{name}/release", "post"),
        ("/v1/txn", "post"),
    }
    for path, method in expected:
        operation = spec["paths"][path][method]
        assert operation["description"].strip(), (path, method)
        assert "\n" not in operation["description"].strip(), (path, method)
    assert spec["paths"]["/v1/state/{name}/cas"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CasAttempt"
    }
