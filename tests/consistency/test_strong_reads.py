"""Invariant 9 on one embedded node: concurrent CAS and `consistency=strong` reads are linearizable."""

from __future__ import annotations

from tests.consistency.history import record_history
from tests.consistency.linearizability import VersionedRegister, check_by_key
from tests.query_api.http_node import memory_settings, serve


def test_concurrent_cas_and_strong_reads_on_one_node_are_linearizable() -> None:
    with serve(memory_settings(partitions=4)) as url:
        history = record_history([url], clients=6, operations_per_client=40, seed=1, consistency="strong")
    assert len(history) == 240
    assert sum(1 for op in history if op.output[0] == "ok") >= 10, "too few writes succeeded to mean anything"
    verdict = check_by_key(history, VersionedRegister.initial, VersionedRegister.step)
    assert verdict == dict.fromkeys(sorted({op.key for op in history}), True)


def test_strong_read_answers_with_a_clear_error_for_a_bad_level() -> None:
    with serve(memory_settings()) as url:
        import httpx

        response = httpx.get(f"{url}/v1/state/x", params={"consistency": "eventual"})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"


def test_sdk_strong_per_client_and_per_call() -> None:
    from agentlog import _calls as calls
    from agentlog.client import AgentlogClient
    from agentlog.consistency import strong

    sent: list[str] = []
    with serve(memory_settings()) as url:
        with AgentlogClient(url, consistency="strong") as client:
            client._http.event_hooks["request"].append(lambda request: sent.append(str(request.url)))
            client.kv_put("notes", "a", 1)
            assert client.kv_get("notes", "a").value == 1  # type: ignore[union-attr]
        with AgentlogClient(url) as client:
            client._http.event_hooks["request"].append(lambda request: sent.append(str(request.url)))
            record = client.run(strong(calls.kv_get("notes", "a")))
            assert record is not None
            assert record.value == 1
            client.kv_get("notes", "a")
    assert "consistency=strong" in sent[1]
    assert "consistency=strong" in sent[2]
    assert "consistency" not in sent[3]
