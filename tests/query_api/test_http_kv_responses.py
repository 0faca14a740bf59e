"""kv routes over a real socket answer pre-encoded JSON equal to the views, validate their query and
identity parameters as declared, and keep those parameters and their responses in OpenAPI."""

from __future__ import annotations

import httpx

from tests.query_api.http_node import assert_problem, memory_settings, serve

HEADERS = {"X-Tenant": "acme", "X-Agent-Id": "writer"}


def test_kv_answers_encoded_views_and_validates_its_parameters() -> None:
    with serve(memory_settings()) as base_url, httpx.Client(base_url=base_url, headers=HEADERS) as client:
        put = client.put("/v1/kv/ns/a/b", json={"value": {"x": [1, 2.5, "é"]}, "metadata": {"m": 1}})
        assert put.status_code == 200, put.text
        assert put.headers["content-type"] == "application/json"
        written = put.json()
        assert written["outcome"] == "applied"
        assert written["result"]["version"] == 1
        got = client.get("/v1/kv/ns/a/b", params={"token": written["token"]})
        assert got.status_code == 200
        body = got.json()
        assert (body["key"], body["value"], body["version"], body["metadata"]) == (
            "a/b",
            {"x": [1, 2.5, "é"]},
            1,
            {"m": 1},
        )
        assert body["created_by"] == body["updated_by"] == "writer"
        assert set(body) == {
            "key", "value", "version", "metadata", "created_at_ms", "updated_at_ms", "created_by", "updated_by",
            "expires_at_ms",
        }  # fmt: skip
        assert client.get("/v1/kv/ns/a/b", headers={"X-Tenant": "other"}).status_code == 404

        assert_problem(client.get("/v1/kv/ns/a/b", params={"branch": "no/slash"}), 422, "invalid")
        assert_problem(client.get("/v1/kv/ns/a/b", params={"branch": "x" * 129}), 422, "too_large")
        assert_problem(client.get("/v1/kv/ns/a/b", params={"as_of": "0" * 16_385}), 422, "too_large")
        assert_problem(client.put("/v1/kv/ns/k", json={"value": 1}, params={"branch": "a b"}), 422, "invalid")
        assert_problem(client.put("/v1/kv/ns/k", json={"value": 1}, params={"as_of": "0:0"}), 400, "as_of_on_write")
        assert_problem(client.get("/v1/kv/ns/a/b", headers={"X-Tenant": "a/b"}), 400, "invalid")
        assert_problem(client.get("/v1/kv/ns/a/b", params={"branch": "nope"}), 404, "branch_not_found")
        assert client.get("/v1/kv/ns/a/b", params={"branch": "main"}).json() == body
        listed = client.get("/v1/kv/ns").json()
        assert listed == {"items": [body], "next_cursor": None}
        batch = client.post("/v1/kv/ns/batch-get", json={"keys": ["a/b", "absent"]}).json()
        assert batch == {"items": {"a/b": body, "absent": None}}


def test_openapi_documents_the_kv_parameters_and_responses() -> None:
    with serve(memory_settings()) as base_url, httpx.Client(base_url=base_url) as client:
        spec = client.get("/openapi.json").json()
    get = spec["paths"]["/v1/kv/{namespace}/{key}"]["get"]
    names = {(parameter["in"], parameter["name"]) for parameter in get["parameters"]}
    assert {
        ("header", "x-tenant"),
        ("header", "x-agent-id"),
        ("header", "x-tool-id"),
        ("header", "x-api-key"),
        ("header", "authorization"),
        ("query", "branch"),
        ("query", "as_of"),
        ("query", "token"),
        ("query", "wait_ms"),
    } <= names
    put = spec["paths"]["/v1/kv/{namespace}/{key}"]["put"]
    assert ("query", "branch") in {(parameter["in"], parameter["name"]) for parameter in put["parameters"]}
    assert "200" in put["responses"]
