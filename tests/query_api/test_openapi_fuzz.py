"""A fuzz pass over the OpenAPI schema: no request gets a 5xx, every error is problem+json, and bad
input leaves no trace in state (invariant 7)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.query_api.http_node import memory_settings, serve

#: Examples per operation; AGENTLOG_FUZZ_EXAMPLES asks for more.
EXAMPLES = int(os.environ.get("AGENTLOG_FUZZ_EXAMPLES", "30"))
#: Errors decided before anything is appended: the log must not grow.
PRE_APPEND_STATUSES = {400, 401, 413, 422}


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serve(memory_settings()) as base:
        yield base


def operations(base: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def snapshot(client: httpx.Client) -> tuple[dict[str, str], list[int]]:
    """Model digests (outcomes aside) and the log's end offsets."""
    status = client.get("/v1/status").json()
    digests = {name: value for name, value in status["digests"].items() if name != "outcomes"}
    return digests, [p["end_offset"] for p in status["partitions"]]


@pytest.mark.slow
def test_no_operation_answers_5xx_and_errors_leave_no_trace(base_url: str) -> None:
    ops = operations(base_url)
    assert len(ops) > 30
    failures: list[str] = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for operation in ops:
            strategy = operation.as_strategy()

            @given(case=strategy, tenant=st.sampled_from(["fuzz-a", "fuzz-b"]))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: Any, tenant: str) -> None:
                before = snapshot(client)
                headers = {"X-Tenant": tenant, **(case.headers or {})}
                response = case.call(base_url=base_url, headers=headers)
                label = f"{case.method} {case.formatted_path} -> {response.status_code}"
                if response.status_code >= 500:
                    failures.append(f"{label}: {response.text[:300]}")
                    return
                if response.status_code < 400:
                    return
                content_type = response.headers.get("content-type")
                if isinstance(content_type, list):
                    content_type = content_type[0] if content_type else None
                if content_type != "application/problem+json":
                    failures.append(f"{label}: content-type {content_type}")
                    return
                problem = response.json()
                if not (
                    problem.get("type", "").startswith("urn:agentlog:error:")
                    and problem.get("status") == response.status_code
                ):
                    failures.append(f"{label}: not a problem document: {problem}")
                after = snapshot(client)
                if after[0] != before[0]:
                    failures.append(f"{label}: a rejected request changed state")
                if response.status_code in PRE_APPEND_STATUSES and "write" not in problem and after[1] != before[1]:
                    failures.append(f"{label}: a refused request reached the log")

            check()
    assert failures == [], f"{len(failures)} failures, first: {failures[:10]}"
