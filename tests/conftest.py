"""Shared fixtures: async tests run on asyncio through anyio's pytest plugin."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    """Run every `@pytest.mark.anyio` test on asyncio only."""
    return "asyncio"


# Kafka: one broker per test session, shared by every test that asks for it (appended block).
from collections.abc import Iterator  # noqa: E402

from tests.kafka_broker import KafkaHandle, start_test_cluster  # noqa: E402


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
    """One real single-node Kafka broker for the whole session (fails under CI=true if it cannot start)."""
    with start_test_cluster(tmp_path_factory.mktemp("kafka"), nodes=1) as handle:
        yield handle
