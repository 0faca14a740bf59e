"""The Python SDK against a live node over real HTTP (uvicorn in a thread), embedded mode, and `DataStore`."""

from __future__ import annotations

import dataclasses
import inspect
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import agentlog as sdk
from agentlog import (
    AgentlogClient,
    AgentlogError,
    AsyncAgentlogClient,
    AsyncEmbeddedAgentlog,
    AuthError,
    ConflictError,
    DataStore,
    EmbeddedAgentlog,
    InvalidRequestError,
    NotFoundError,
    TransportError,
    UnavailableError,
    aconnect,
    connect,
)
from agentlog import data_store as data_store_module
from agentlog._calls import Session, segment
from agentlog.errors import error_from_problem
from tests.query_api.http_node import memory_settings, serve

#: How long a read waits for a token the node has not applied (kept short: the test wants the 504).
READ_WAIT_MS = 200


@pytest.fixture(scope="module")
def node_url() -> Iterator[str]:
    """One node for the module; tests keep apart by tenant."""
    with serve(memory_settings(read_wait_ms_max=READ_WAIT_MS)) as base_url:
        yield base_url


@pytest.fixture
def tenant() -> str:
    """A tenant of this test alone."""
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(node_url: str, tenant: str) -> Iterator[AgentlogClient]:
    """A sync client of the live node, in this test's tenant."""
    with AgentlogClient(node_url, tenant=tenant, agent_id="tester") as live:
        yield live


# ------------------------------------------------------------------------------------------- surface


def test_public_surface_is_sorted_documented_and_the_same_for_both_clients() -> None:
    assert sdk.__all__ == sorted(sdk.__all__)
    for name in sdk.__all__:
        assert inspect.getdoc(getattr(sdk, name)), name

    def operations(cls: type) -> set[str]:
        return {name for name, _ in inspect.getmembers(cls, callable) if not name.startswith("_")}

    sync_ops, async_ops = operations(AgentlogClient), operations(AsyncAgentlogClient)
    assert sync_ops - {"close"} == async_ops - {"aclose"}
    for name in sync_ops:
        assert inspect.getdoc(getattr(AgentlogClient, name)), name
        if name not in ("close", "run"):
            assert inspect.iscoroutinefunction(getattr(AsyncAgentlogClient, name)), name


def test_path_segments_escape_slashes_and_dot_segments() -> None:
    assert segment("a/b c?#") == "a%2Fb%20c%3F%23"
    assert segment(".") == "%2E"
    assert segment("..") == "%2E%2E"
    assert segment("a..b") == "a..b"


def test_session_merges_tokens_per_partition() -> None:
    session = Session()
    assert session.token is None
    session.observe("3:5")
    session.observe("1:2,3:4")
    session.observe("garbage,2:x")
    assert session.token == "1:2,3:5"


def test_error_from_a_body_that_is_not_a_problem() -> None:
    error = error_from_problem(502, None, "Bad Gateway")
    assert type(error) is AgentlogError
    assert (error.status, error.code, error.detail) == (502, "http_error", "Bad Gateway")
    assert isinstance(error_from_problem(503, None, ""), UnavailableError)
    assert isinstance(error_from_problem(413, {"type": "urn:agentlog:error:too_large"}), InvalidRequestError)


def test_an_answer_of_the_wrong_shape_is_an_agentlog_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"unexpected": True})

    with AgentlogClient("http://fake", transport=httpx.MockTransport(handler)) as fake:
        with pytest.raises(AgentlogError) as caught:
            fake.kv_get("ns", "k")
        assert caught.value.code == "bad_response"
        with pytest.raises(InvalidRequestError) as refused:
            fake.kv_put("ns", "k", float("nan"))
        assert refused.value.status == 0


# ------------------------------------------------------------------------------------------- kv


def test_kv_put_get_with_metadata_ttl_and_awkward_keys(client: AgentlogClient) -> None:
    written = client.kv_put("notes", "a/b c", {"x": 1}, metadata={"tag": "t"}, ttl_s=3600)
    assert written.outcome == "applied"
    assert written.version == 1
    assert written.result["expires_at_ms"] is not None
    assert written.token
    assert client.token
    record = client.kv_get("notes", "a/b c")
    assert record is not None
    assert (record.key, record.value, record.version, record.metadata) == ("a/b c", {"x": 1}, 1, {"tag": "t"})
    assert record.created_by == "tester"
    assert record.expires_at_ms == written.result["expires_at_ms"]
    for key in ("..", ".", "ü?#%", "x/../y"):
        client.kv_put("notes", key, key)
        found = client.kv_get("notes", key)
        assert found is not None, key
        assert found.value == key
    assert client.kv_get("notes", "absent") is None


def test_version_conflict_raises_conflict_error_with_current_version(client: AgentlogClient) -> None:
    client.kv_put("ns", "k", 1)
    client.kv_put("ns", "k", 2, if_version=1)
    with pytest.raises(ConflictError) as caught:
        client.kv_put("ns", "k", 3, if_version=1)
    error = caught.value
    assert (error.status, error.code, error.current_version) == (409, "version_conflict", 2)
    assert "version" in error.detail
    with pytest.raises(ConflictError):
        client.kv_put("ns", "k", 4, if_version=0)
    record = client.kv_get("ns", "k")
    assert record is not None
    assert record.value == 2


def test_kv_delete_reports_whether_the_key_existed(client: AgentlogClient) -> None:
    client.kv_put("ns", "k", 1)
    assert client.kv_delete("ns", "k").result["deleted"] is True
    assert client.kv_delete("ns", "k").result["deleted"] is False
    assert client.kv_get("ns", "k") is None


def test_kv_list_pages_with_cursor_and_prefix(client: AgentlogClient) -> None:
    client.kv_batch_put("ns", {f"item-{i:02}": i for i in range(7)} | {"other": 0})
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = client.kv_list("ns", "item-", cursor, 3)
        seen.extend(record.key for record in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f"item-{i:02}" for i in range(7)]


def test_batch_get_and_atomic_batch_put(client: AgentlogClient) -> None:
    written = client.kv_batch_put("ns", [{"key": "a", "value": 1, "metadata": {"m": 1}}, {"key": "b", "value": 2}])
    assert [item["key"] for item in written.result["items"]] == ["a", "b"]
    found = client.kv_batch_get("ns", ["a", "b", "c"])
    assert found["c"] is None
    assert found["a"] is not None
    assert (found["a"].value, found["a"].metadata) == (1, {"m": 1})
    with pytest.raises(ConflictError):
        client.kv_batch_put("ns", [{"key": "c", "value": 3}, {"key": "a", "value": 9, "if_version": 5}])
    assert client.kv_get("ns", "c") is None
    record = client.kv_get("ns", "a")
    assert record is not None
    assert record.value == 1


def test_kv_query_filters_sorts_and_projects(client: AgentlogClient) -> None:
    client.kv_batch_put("people", {"ann": {"age": 31}, "bob": {"age": 25}, "cy": {"age": 40}, "dee": "n/a"})
    page = client.kv_query(
        "people", {"value.age": {"$gte": 30}}, sort=[("value.age", "desc")], projection=["value.age"]
    )
    assert page.items == [{"key": "cy", "value": {"age": 40}}, {"key": "ann", "value": {"age": 31}}]
    with pytest.raises(InvalidRequestError) as caught:
        client.kv_query("people", {"value.age": {"$bogus": 1}})
    assert caught.value.status in (400, 422)


def test_clear_and_namespaces(client: AgentlogClient) -> None:
    client.kv_batch_put("one", {"a": 1, "b": 2})
    client.kv_put("two", "c", 3)
    assert client.namespaces() == {"one": 2, "two": 1}
    assert client.kv_clear("one").result["deleted"] == 2
    assert client.namespaces() == {"two": 1}


def test_configure_namespace_schema_and_default_ttl(client: AgentlogClient) -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    client.configure_namespace("typed", json_schema=schema, default_ttl_s=600)
    written = client.kv_put("typed", "ok", {"n": 1})
    assert written.result["expires_at_ms"] is not None
    with pytest.raises(InvalidRequestError) as caught:
        client.kv_put("typed", "bad", {"n": "one"})
    assert (caught.value.status, caught.value.code) == (422, "schema_violation")


def test_invalid_namespace_is_an_invalid_request(client: AgentlogClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        client.kv_put("bad namespace!", "k", 1)
    assert caught.value.status in (400, 422)
    assert "namespace" in caught.value.detail


def test_a_retried_command_id_is_applied_once(client: AgentlogClient) -> None:
    first = client.kv_put("ns", "k", 1, command_id="retry-1")
    client.kv_put("ns", "k", 2)
    again = client.kv_put("ns", "k", 1, command_id="retry-1")
    assert (again.command_id, again.outcome, again.result) == ("retry-1", "applied", first.result)
    record = client.kv_get("ns", "k")
    assert record is not None
    assert (record.value, record.version) == (2, 2)


# ------------------------------------------------------------------------------------------- read-your-writes


def test_reads_carry_the_client_token_unless_told_not_to(client: AgentlogClient) -> None:
    client.kv_put("ns", "k", 1)
    client.session.observe("0:999999999")  # a cut past the end of this node's log
    with pytest.raises(ConflictError) as caught:
        client.kv_get("ns", "k")
    assert (caught.value.status, caught.value.code) == (409, "token_ahead")
    record = client.kv_get("ns", "k", consistent=False)
    assert record is not None
    assert record.value == 1


def test_a_token_handed_to_another_client_orders_its_reads(node_url: str, tenant: str) -> None:
    with AgentlogClient(node_url, tenant=tenant) as writer, AgentlogClient(node_url, tenant=tenant) as reader:
        written = writer.kv_put("ns", "k", "v")
        assert reader.token is None
        record = reader.kv_get("ns", "k", token=written.token)
        assert record is not None
        assert record.value == "v"
        with pytest.raises(InvalidRequestError):
            reader.kv_get("ns", "k", token="not-a-token")


# ------------------------------------------------------------------------------------------- state, locks, txn


def test_state_cas_and_listing(client: AgentlogClient) -> None:
    assert client.state_get("counter") is None
    assert client.cas("counter", 0, 1).version == 1
    assert client.cas("counter", 1, 2).version == 2
    with pytest.raises(ConflictError) as caught:
        client.cas("counter", 1, 3)
    assert caught.value.current_version == 2
    state = client.state_get("counter")
    assert state is not None
    assert (state.value, state.version) == (2, 2)
    client.cas("other", 0, "x", namespace="elsewhere")
    assert [s.name for s in client.state_list().items] == ["counter"]
    assert [s.name for s in client.state_list(namespace="elsewhere").items] == ["other"]


def test_locks_acquire_renew_release_and_fence(client: AgentlogClient) -> None:
    token = client.lock_acquire("leader", "a", 30).result["fencing_token"]
    with pytest.raises(ConflictError) as caught:
        client.lock_acquire("leader", "b", 30)
    assert caught.value.code == "lock_held"
    lock = client.lock_get("leader")
    assert lock is not None
    assert (lock.holder, lock.held, lock.fencing_token) == ("a", True, token)
    assert client.lock_renew("leader", "a", token, 60).result["fencing_token"] == token
    with pytest.raises(ConflictError):
        client.lock_release("leader", "a", token + 1)
    client.lock_release("leader", "a", token)
    lock = client.lock_get("leader")
    assert lock is not None
    assert not lock.held
    assert client.lock_acquire("leader", "b", 30).result["fencing_token"] > token
    assert client.lock_get("absent") is None


def test_txn_commits_all_or_nothing(client: AgentlogClient) -> None:
    client.cas("balance", 0, 10)
    committed = client.txn(
        reads=[{"kind": "state", "key": "balance", "version": 1}],
        writes=[{"op": "state.set", "key": "balance", "value": 7}, {"op": "kv.put", "key": "receipt", "value": 3}],
    )
    assert committed.result["committed"] is True
    with pytest.raises(ConflictError):
        client.txn(
            reads=[{"kind": "state", "key": "balance", "version": 1}],
            writes=[{"op": "kv.put", "key": "second", "value": 1}],
        )
    assert client.kv_get("default", "second") is None
    state = client.state_get("balance")
    assert state is not None
    assert state.value == 7


# ------------------------------------------------------------------------------------------- runs


def test_run_lifecycle_events_traces_and_verification(client: AgentlogClient) -> None:
    run_id = client.begin_run(name="plan", metadata={"user": "u1"}).result["run_id"]
    first = client.append_event(run_id, "step", {"n": 1}, thread_id="main").result
    client.append_event(run_id, "step", {"n": 2}, expected_seq=1)
    with pytest.raises(ConflictError):
        client.append_event(run_id, "step", {"n": 3}, expected_seq=1)
    page = client.events(run_id, limit=1)
    assert [e.seq for e in page.items] == [1]
    assert page.next_from_seq == 2
    rest = client.events(run_id, from_seq=2)
    assert [e.payload for e in rest.items] == [{"n": 2}]
    assert rest.items[0].prev_hash == first["hash"]
    assert [e.seq for e in client.events(run_id, thread_id="main").items] == [1]

    client.record_trace(run_id, "decision", {"why": "cheap"}, trace_id="d1", seq=1)
    client.record_trace(run_id, "tool_call", {"tool": "search"}, trace_id="c1", parent_id="d1")
    assert [t.trace_id for t in client.traces(run_id)] == ["d1", "c1"]
    assert [t.trace_id for t in client.traces(run_id, kind="tool_call")] == ["c1"]
    (root,) = client.trace_tree(run_id)
    assert root.trace.trace_id == "d1"
    assert [c.trace.trace_id for c in root.children] == ["c1"]
    assert root.trace.event_id == first["event_id"]

    check = client.verify_run(run_id)
    assert (check.ok, check.events, check.first_bad_seq) == (True, 2, None)
    client.end_run(run_id, "succeeded", result={"answer": 42})
    with pytest.raises(ConflictError) as caught:
        client.end_run(run_id, "failed")
    assert caught.value.code == "run_closed"
    run = client.get_run(run_id)
    assert run is not None
    assert (run.status, run.name, run.result, run.events, run.agent_id) == (
        "succeeded",
        "plan",
        {"answer": 42},
        2,
        "tester",
    )
    assert run.last_hash == rest.items[-1].hash


def test_runs_listing_pages_and_filters(client: AgentlogClient) -> None:
    ids = [client.begin_run(f"run-{i}").result["run_id"] for i in range(3)]
    client.end_run(ids[0], "failed")
    first = client.list_runs(limit=2)
    assert [r.run_id for r in first.items] == ids[:2]
    assert first.next_cursor == ids[1]
    assert [r.run_id for r in client.list_runs(cursor=first.next_cursor).items] == ids[2:]
    assert [r.run_id for r in client.list_runs("failed").items] == ids[:1]


def test_unknown_runs_are_not_found(client: AgentlogClient) -> None:
    assert client.get_run("nope") is None
    with pytest.raises(NotFoundError):
        client.append_event("nope", "step")
    with pytest.raises(NotFoundError):
        client.events("nope")
    with pytest.raises(InvalidRequestError):
        client.begin_run("bad id!")


# ------------------------------------------------------------------------------------------- vectors


def test_vector_collections_upsert_search_and_delete(client: AgentlogClient) -> None:
    assert client.create_collection("docs", 3, "cosine").outcome == "applied"
    client.create_collection("docs", 3, "cosine")  # same configuration again: a no-op
    with pytest.raises(ConflictError):
        client.create_collection("docs", 4)
    client.upsert_vector("docs", "a", [1.0, 0.0, 0.0], metadata={"lang": "en"})
    client.upsert_vector("docs", "b/1", np.array([0.0, 1.0, 0.0], dtype=np.float32), metadata={"lang": "de"})
    client.upsert_vector("docs", "c", np.array([0.9, 0.1, 0.0], dtype="<f4").tobytes(), metadata={"lang": "en"})
    hits = client.search("docs", [1.0, 0.0, 0.0], k=2)
    assert [hit.id for hit in hits] == ["a", "c"]
    assert hits[0].score == pytest.approx(1.0)
    assert hits[0].metadata == {"lang": "en"}
    assert hits[0].vector is None
    assert [hit.id for hit in client.search("docs", [1, 0, 0], filter={"lang": "de"})] == ["b/1"]
    assert [hit.id for hit in client.search("docs", [1, 0, 0], min_score=0.5, include_vectors=True)] == ["a", "c"]
    stored = client.get_vector("docs", "c")
    assert stored is not None
    assert stored.embedding == pytest.approx([0.9, 0.1, 0.0])
    collection = client.get_collection("docs")
    assert collection is not None
    assert (collection.dimension, collection.metric, collection.count) == (3, "cosine", 3)
    assert [c.name for c in client.list_collections()] == ["docs"]
    assert client.delete_vector("docs", "b/1").result["deleted"] is True
    assert client.get_vector("docs", "b/1") is None
    assert client.get_collection("absent") is None
    with pytest.raises(NotFoundError):
        client.search("absent", [1, 0, 0])
    with pytest.raises(InvalidRequestError):
        client.search("docs", [1, 0])
    with pytest.raises(InvalidRequestError):
        client.upsert_vector("docs", "bad", [1.0, float("nan"), 0.0])


def test_hybrid_search_on_a_collection(client: AgentlogClient, node_url: str) -> None:
    client.create_collection("notes", 2)
    client.upsert_vector("notes", "near", [1.0, 0.0], metadata={"text": "lunch at noon"})
    client.upsert_vector("notes", "words", [0.0, 1.0], metadata={"text": "the kafka replay log"})
    client.upsert_vector("notes", "both", [0.8, 0.6], metadata={"text": "replay"})
    vector_only = client.hybrid_search("notes", "replay", [1.0, 0.0], alpha=1.0)
    assert [hit.id for hit in vector_only] == [hit.id for hit in client.search("notes", [1.0, 0.0])]
    assert [hit.vector_score for hit in vector_only] == [hit.score for hit in client.search("notes", [1.0, 0.0])]
    text_only = client.hybrid_search("notes", "replay", [1.0, 0.0], alpha=0.0)
    assert [hit.id for hit in text_only] == ["both", "words"]
    assert [hit.lexical_rank for hit in text_only] == [1, 2]
    fused = client.hybrid_search("notes", "replay", [1.0, 0.0], 0.7, k=2)
    assert [hit.id for hit in fused] == ["both", "near"]
    assert fused[0].metadata == {"text": "replay"}
    assert fused[1].lexical_score == 0.0
    assert fused[1].lexical_rank is None
    with pytest.raises(InvalidRequestError):
        client.hybrid_search("notes", "replay", [1.0, 0.0], alpha=2.0)
    with pytest.raises(NotFoundError):
        client.hybrid_search("absent", "replay", [1.0, 0.0])
    with AgentlogClient(node_url, tenant=f"other-{uuid.uuid4().hex[:8]}") as other, pytest.raises(NotFoundError):
        other.hybrid_search("notes", "replay", [1.0, 0.0])


# ------------------------------------------------------------------------------------------- system, auth, transport


def test_status_and_health(client: AgentlogClient) -> None:
    client.kv_put("ns", "k", 1)
    assert client.health() == {"status": "ok"}
    status = client.status()
    assert status["log"] == "memory"
    assert sum(p["end_offset"] for p in status["partitions"]) >= 1


def test_api_keys_decide_identity_and_missing_ones_raise_auth_error(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": {"s3cret": {"tenant": "acme", "agent_id": "planner"}}}))
    with serve(memory_settings(api_keys_file=keys)) as base_url:
        with AgentlogClient(base_url) as anonymous, pytest.raises(AuthError) as caught:
            anonymous.kv_get("ns", "k")
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
        with AgentlogClient(base_url, api_key="s3cret", tenant="ignored") as keyed:
            keyed.kv_put("ns", "k", 1)
            record = keyed.kv_get("ns", "k")
            assert record is not None
            assert record.created_by == "planner"


def test_an_unreachable_node_raises_transport_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        AgentlogClient(f"http://127.0.0.1:{port}", timeout_s=2) as unreachable,
        pytest.raises(TransportError) as caught,
    ):
        unreachable.health()
    assert isinstance(caught.value, UnavailableError)
    assert caught.value.status == 0


# ------------------------------------------------------------------------------------------- async client


@pytest.mark.anyio
async def test_async_client_against_the_live_node(node_url: str, tenant: str) -> None:
    async with AsyncAgentlogClient(node_url, tenant=tenant, agent_id="async") as client:
        written = await client.kv_put("ns", "k", {"v": 1})
        assert client.token == written.token
        record = await client.kv_get("ns", "k")
        assert record is not None
        assert record.created_by == "async"
        with pytest.raises(ConflictError) as caught:
            await client.kv_put("ns", "k", 2, if_version=0)
        assert caught.value.current_version == 1
        assert await client.kv_get("ns", "absent") is None
        assert (await client.kv_batch_get("ns", ["k"]))["k"] is not None
        assert [r.key for r in (await client.kv_list("ns")).items] == ["k"]
        run_id = (await client.begin_run(name="a")).result["run_id"]
        await client.append_event(run_id, "step", [1, 2])
        assert (await client.verify_run(run_id)).ok
        assert (await client.events(run_id)).items[0].payload == [1, 2]
        assert (await client.cas("s", 0, 1)).version == 1
        assert await client.namespaces() == {"ns": 1}
        assert (await client.kv_clear("ns")).result["deleted"] == 1
        assert (await client.health())["status"] == "ok"
        await client.create_collection("docs", 2)
        await client.upsert_vector("docs", "a", [1.0, 0.0], metadata={"text": "replay"})
        hits = await client.hybrid_search("docs", "replay", [0.0, 1.0], alpha=0.5)
        assert [(hit.id, hit.vector_rank, hit.lexical_rank) for hit in hits] == [("a", 1, 1)]
        assert hits[0].score == 1.0


@pytest.mark.anyio
async def test_async_client_maps_transport_failures() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with AsyncAgentlogClient(f"http://127.0.0.1:{port}", timeout_s=2) as client:
        with pytest.raises(TransportError):
            await client.health()


# ------------------------------------------------------------------------------------------- embedded


def test_embedded_sync_node_persists_across_restarts(tmp_path: Path) -> None:
    settings = memory_settings(log=f"file://{tmp_path}", fsync="never")
    with EmbeddedAgentlog(settings, tenant="acme", agent_id="local") as client:
        client.kv_put("ns", "k", {"v": 1})
        run_id = client.begin_run(name="r").result["run_id"]
        client.append_event(run_id, "step", 1)
        with pytest.raises(ConflictError):
            client.kv_put("ns", "k", 2, if_version=0)
        assert client.call_on_node(client.node.sweep_once()) == 0
    with connect(f"embedded://{tmp_path}", tenant="acme") as reopened:
        assert isinstance(reopened, EmbeddedAgentlog)
        record = reopened.kv_get("ns", "k")
        assert record is not None
        assert (record.value, record.created_by) == ({"v": 1}, "local")
        assert reopened.verify_run(run_id).ok
        assert reopened.status()["log"] == "file"


def test_embedded_memory_node_serves_data_store() -> None:
    with connect("embedded://:memory:") as client:
        store = DataStore(client)
        store.set("k", [1, 2])
        assert store.get("k") == [1, 2]
        assert store.list_namespaces() == ["default"]


def test_embedded_start_up_failure_raises_and_leaves_no_thread() -> None:
    before = {thread.name for thread in threading.enumerate()}
    with pytest.raises(Exception, match="scheme"):
        EmbeddedAgentlog(memory_settings(log="bogus://nowhere"))
    assert {thread.name for thread in threading.enumerate()} - before == set()


@pytest.mark.anyio
async def test_embedded_async_start_up_failure_raises() -> None:
    client = AsyncEmbeddedAgentlog(memory_settings(log="bogus://nowhere"))
    try:
        with pytest.raises(Exception, match="scheme"):
            await client.health()
    finally:
        await client.aclose()


def test_connect_picks_the_transport_from_the_url(node_url: str) -> None:
    with connect(node_url) as client:
        assert type(client) is AgentlogClient
        assert client.health()["status"] == "ok"
    with pytest.raises(ValueError, match="embedded://"):
        connect("ftp://nowhere")


@pytest.mark.anyio
async def test_embedded_async_node_starts_on_first_use_and_stops_on_close() -> None:
    client = AsyncEmbeddedAgentlog(memory_settings(), tenant="acme")
    try:
        with pytest.raises(RuntimeError):
            _ = client.node
        written = await client.kv_put("ns", "k", 1)
        assert written.outcome == "applied"
        assert client.node.records.get("acme", "ns", "k", client.node.now_ms()) is not None
        with pytest.raises(ConflictError):
            await client.kv_put("ns", "k", 2, if_version=0)
        run_id = (await client.begin_run()).result["run_id"]
        await client.append_event(run_id, "step")
        assert (await client.verify_run(run_id)).ok
    finally:
        await client.aclose()
    async with aconnect("embedded://:memory:") as other:
        assert isinstance(other, AsyncEmbeddedAgentlog)
        assert await other.kv_get("ns", "k") is None


# ------------------------------------------------------------------------------------------- DataStore


def test_data_store_end_to_end(client: AgentlogClient) -> None:
    store = DataStore(client)
    assert store.namespace == "default"
    assert store.get("missing") is None
    assert store.get("missing", "fallback") == "fallback"
    store.set("greeting", {"text": "hello"}, {"lang": "en"})
    store.set("greeting", {"text": "hi"})  # value-only update keeps the metadata
    record = client.kv_get("default", "greeting")
    assert record is not None
    assert (record.value, record.metadata, record.version) == ({"text": "hi"}, {"lang": "en"}, 2)
    store.set("temp", 1, ttl_s=3600)
    assert store.delete("temp") is True
    assert store.delete("temp") is False

    cache = store.use_namespace("cache:github")
    assert cache.namespace == "cache:github"
    assert cache.client is client
    cache.set_many({"a": 1, "b": {"x": [1]}, "c": None}, metadata={"src": "api"})
    assert cache.get_many(["a", "b", "c", "zzz", "a"]) == {"a": 1, "b": {"x": [1]}, "c": None}
    assert cache.get_many([]) == {}
    assert cache.list_keys() == ["a", "b", "c"]
    assert cache.list_keys(prefix="b") == ["b"]
    a = client.kv_get("cache:github", "a")
    assert a is not None
    assert a.metadata == {"src": "api"}
    assert store.list_namespaces() == ["cache:github", "default"]
    assert store.list_keys() == ["greeting"]

    assert cache.clear() == 3
    assert cache.list_keys() == []
    assert store.list_namespaces() == ["default"]
    cache.set_many({})


def test_data_store_set_many_is_atomic(client: AgentlogClient) -> None:
    store = DataStore(client, "atomic")
    store.set("keep", 1)
    with pytest.raises(InvalidRequestError):
        store.set_many({"fine": 1, "bad\x00key": 2})
    assert store.list_keys() == ["keep"]


def test_data_store_list_keys_follows_more_than_one_page(client: AgentlogClient) -> None:
    store = DataStore(client, "many")
    first = {f"k{i:05}": i for i in range(1_000)}
    second = {f"k{i:05}": i for i in range(1_000, 1_205)}
    store.set_many(first)
    store.set_many(second)
    keys = store.list_keys()
    assert keys == sorted(first | second)
    assert len(keys) > data_store_module.LIST_PAGE_SIZE
    assert store.list_keys("k0120") == [f"k0120{i}" for i in range(5)]
    assert store.clear() == 1_205


def test_data_store_list_keys_with_small_pages(client: AgentlogClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_store_module, "LIST_PAGE_SIZE", 2)
    store = DataStore(client, "small")
    store.set_many({f"key-{i}": i for i in range(5)})
    assert store.list_keys() == [f"key-{i}" for i in range(5)]


def test_models_are_plain_dataclasses(client: AgentlogClient) -> None:
    written = client.kv_put("ns", "k", 1)
    as_json: dict[str, Any] = dataclasses.asdict(written)
    assert as_json["position"] == {"partition": written.position.partition, "offset": written.position.offset}
    json.dumps(as_json)
