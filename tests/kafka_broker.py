"""Start a real Apache Kafka for tests (a helper for fixtures, not a test module).

Backends, chosen by ``$AGENTLOG_KAFKA_BACKEND`` (``auto`` by default):

* ``launcher``: plain JVMs from ``infra.kafka.launcher`` (jars fetched once by Maven). Needs java 17+ and
  mvn (mvn only until the jars are cached). Supports any node count, ``kill_node`` and ``restart_node``.
* ``testcontainers``: one broker in Docker via ``testcontainers.community.kafka`` (image from
  ``$AGENTLOG_KAFKA_IMAGE``). Single node only; used by ``auto`` only when java/mvn are missing and a
  Docker engine answers ``docker info``.

Policy: with ``CI=true`` anything that prevents a broker from starting fails the test (never a skip).
Outside CI, missing tools skip with a loud reason; a broker that fails to start is still an error.

Typical session fixture (in conftest.py)::

    @pytest.fixture(scope="session")
    def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaHandle]:
        with start_test_cluster(tmp_path_factory.mktemp("kafka"), nodes=1) as handle:
            yield handle
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

import pytest

from infra.kafka.launcher import (
    KafkaCluster,
    KafkaLauncherError,
    default_cache_dir,
    java_executable,
    start_cluster,
)

BACKEND_ENV_VAR = "AGENTLOG_KAFKA_BACKEND"
IMAGE_ENV_VAR = "AGENTLOG_KAFKA_IMAGE"
DEFAULT_IMAGE = "confluentinc/cp-kafka:7.6.0"  # testcontainers' KafkaContainer drives Confluent images only
DOCKER_INFO_TIMEOUT_S = 5.0

# The broker settings the launcher writes, as Confluent image environment variables.
CONTAINER_BROKER_ENV = {
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    "KAFKA_LOG_MESSAGE_TIMESTAMP_TYPE": "LogAppendTime",
    "KAFKA_LOG_RETENTION_MS": "-1",
    "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE": "false",
    "KAFKA_MIN_INSYNC_REPLICAS": "1",
    "KAFKA_DEFAULT_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
}


def in_ci() -> bool:
    """Return True when running under CI (``CI=true``), where Kafka tests must never be skipped."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def jars_cached() -> bool:
    """Return True when the launcher's jar cache is complete (then mvn is not needed)."""
    cache_dir = default_cache_dir()
    return (cache_dir / ".complete").is_file() and (cache_dir / "libs").is_dir()


def kafka_available() -> tuple[bool, str]:
    """Return whether the launcher backend can run here (java, and mvn unless jars are cached) and why."""
    try:
        java = java_executable()
    except KafkaLauncherError as exc:
        return False, str(exc)
    if jars_cached():
        return True, f"java at {java}; Kafka jars cached in {default_cache_dir()}"
    mvn = shutil.which("mvn")
    if mvn is None:
        return False, f"'mvn' is not on PATH and no Kafka jars are cached in {default_cache_dir()}"
    return True, f"java at {java}; mvn at {mvn}"


def docker_available(timeout_s: float = DOCKER_INFO_TIMEOUT_S) -> bool:
    """Return True when a Docker engine answers ``docker info`` within ``timeout_s``."""
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        result = subprocess.run(
            [docker, "info"], capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def unavailable(reason: str) -> NoReturn:
    """Fail under CI, else skip, with a loud reason naming what is missing."""
    message = f"KAFKA TESTS NOT RUN: {reason}. Install OpenJDK 17+ and Maven (apt-get install openjdk-17-jdk maven)."
    if in_ci():
        pytest.fail(f"{message} (CI=true: Kafka tests must run in CI)", pytrace=False)
    pytest.skip(message)


@dataclass
class KafkaHandle:
    """A running test Kafka: ``bootstrap_servers`` plus the launcher cluster or the container behind it."""

    bootstrap_servers: str
    nodes: int
    backend: str
    cluster: KafkaCluster | None = None
    container: Any = None

    def require_cluster(self) -> KafkaCluster:
        """Return the launcher cluster (for kill_node/restart_node); skip the test on the container backend."""
        if self.cluster is None:
            pytest.skip(f"needs the launcher backend (node faults, cluster state); this run uses {self.backend}")
        return self.cluster

    def stop(self) -> None:
        """Stop every broker of this handle."""
        if self.cluster is not None:
            self.cluster.stop(timeout_s=15.0)
        if self.container is not None:
            self.container.stop()

    def __enter__(self) -> KafkaHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def choose_backend(nodes: int) -> str:
    """Return ``launcher`` or ``testcontainers`` for this run, or fail/skip per the CI policy."""
    wanted = os.environ.get(BACKEND_ENV_VAR, "auto").strip().lower()
    if wanted not in {"auto", "launcher", "testcontainers"}:
        raise ValueError(f"{BACKEND_ENV_VAR}={wanted!r}: expected auto, launcher or testcontainers")
    if wanted == "testcontainers":
        if nodes != 1:
            unavailable(f"{BACKEND_ENV_VAR}=testcontainers runs one broker; this test needs {nodes}")
        if not docker_available():
            unavailable(f"{BACKEND_ENV_VAR}=testcontainers but 'docker info' fails")
        return "testcontainers"
    ok, reason = kafka_available()
    if ok:
        return "launcher"
    if wanted == "auto" and nodes == 1 and docker_available():
        return "testcontainers"
    unavailable(reason)


def start_test_cluster(
    tmp_path: Path, nodes: int = 1, heap_mb: int = 512, ready_timeout_s: float = 180.0
) -> KafkaHandle:
    """Start a ``nodes``-node Kafka under ``tmp_path`` for tests; the caller stops it (``with`` or ``stop()``)."""
    backend = choose_backend(nodes)
    if backend == "testcontainers":
        return _start_container(ready_timeout_s)
    cluster = start_cluster(
        nodes=nodes,
        base_dir=tmp_path / f"kafka-{nodes}n",
        heap_mb=heap_mb,
        ready_timeout_s=ready_timeout_s,
    )
    return KafkaHandle(bootstrap_servers=cluster.bootstrap_servers, nodes=nodes, backend=backend, cluster=cluster)


def _start_container(ready_timeout_s: float) -> KafkaHandle:
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(os.environ.get(IMAGE_ENV_VAR, DEFAULT_IMAGE)).with_kraft()
    for key, value in CONTAINER_BROKER_ENV.items():
        container.with_env(key, value)
    container.start(timeout=int(ready_timeout_s))
    return KafkaHandle(
        bootstrap_servers=container.get_bootstrap_server(), nodes=1, backend="testcontainers", container=container
    )
