"""Run a plain Apache Kafka (KRaft) cluster on loopback without Docker: the cluster handle and its CLI.

The broker's jars come from Maven Central through ``infra/kafka/pom.xml`` (``infra.kafka.maven``) and are
cached under ``.cache/kafka/<version>/libs``. Each node is one JVM running ``kafka.Kafka`` with both the
broker and the controller role (``infra.kafka.config`` writes its properties); nodes listen on 127.0.0.1
only. ``infra.kafka.process`` starts and watches the JVMs. This module composes them and re-exports the
names tests, benchmarks and the CLI use.

Library use (tests, benchmarks)::

    with start_cluster(nodes=3, base_dir=tmp_path) as cluster:
        use(cluster.bootstrap_servers)
        cluster.kill_node(1)       # SIGKILL, for fault tests
        cluster.restart_node(1)    # same node.id, ports and data, waits until ready

Command line (``agentlog kafka up|down|status`` delegates here)::

    python -m infra.kafka.launcher up [--nodes N] [--dir DIR] [--port P]
    python -m infra.kafka.launcher status [--dir DIR]
    python -m infra.kafka.launcher down [--dir DIR] [--wipe]

The cluster's layout and pids are kept in ``<dir>/cluster.json`` so that another process can stop it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from infra.kafka.config import (
    LOOPBACK_HOST,
    KafkaNode,
    controller_quorum_voters,
    random_cluster_id,
    render_properties,
    server_properties,
)
from infra.kafka.errors import KafkaLauncherError, tail_file
from infra.kafka.maven import default_cache_dir, ensure_jars, kafka_version, maven_command
from infra.kafka.process import (
    KAFKA_MAIN_CLASS,
    format_storage,
    free_ports,
    java_executable,
    jvm_command,
    pid_runs_node,
    port_open,
    spawn_attached,
    spawn_detached,
)

__all__ = [
    "KafkaCluster",
    "KafkaLauncherError",
    "KafkaNode",
    "controller_quorum_voters",
    "default_cache_dir",
    "ensure_jars",
    "format_storage",
    "free_ports",
    "java_executable",
    "kafka_version",
    "load_cluster",
    "main",
    "maven_command",
    "random_cluster_id",
    "resume_cluster",
    "server_properties",
    "start_cluster",
]

STATE_FILE_NAME = "cluster.json"
READY_LOG_LINE = b"Kafka Server started"
DEFAULT_RUN_DIR = Path(".cache/kafka-run")
POLL_INTERVAL_S = 0.2


# ----------------------------------------------------------------------------------------- cluster


@dataclass
class KafkaCluster:
    """A loopback KRaft cluster started by this module; usable as a context manager that stops it."""

    bootstrap_servers: str
    base_dir: Path
    cluster_id: str
    libs_dir: Path
    nodes: list[KafkaNode]
    heap_mb: int = 512
    ready_timeout_s: float = 120.0
    detach: bool = False
    _procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    @property
    def node_dirs(self) -> list[Path]:
        """Return the node directories, indexed like ``nodes`` (index == node.id)."""
        return [node.node_dir for node in self.nodes]

    @property
    def pids(self) -> list[int | None]:
        """Return the last known pid of each node (None if never started)."""
        return [node.pid for node in self.nodes]

    @property
    def state_path(self) -> Path:
        """Return the JSON file that records this cluster for other processes."""
        return self.base_dir / STATE_FILE_NAME

    def __enter__(self) -> KafkaCluster:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- state ----------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Return the JSON-serialisable state recorded in ``cluster.json``."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "cluster_id": self.cluster_id,
            "libs_dir": str(self.libs_dir),
            "heap_mb": self.heap_mb,
            "ready_timeout_s": self.ready_timeout_s,
            "nodes": [
                {
                    "node_id": node.node_id,
                    "client_port": node.client_port,
                    "controller_port": node.controller_port,
                    "node_dir": str(node.node_dir),
                    "pid": node.pid,
                }
                for node in self.nodes
            ],
        }

    def save_state(self) -> None:
        """Write ``cluster.json`` atomically."""
        tmp_path = self.state_path.with_suffix(".json.tmp")
        tmp_path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp_path.replace(self.state_path)

    # -- liveness -------------------------------------------------------------------------------

    def node_alive(self, index: int) -> bool:
        """Return True when node ``index`` has a running JVM."""
        node = self.nodes[index]
        proc = self._procs.get(index)
        if proc is not None:
            return proc.poll() is None
        return node.pid is not None and pid_runs_node(node.pid, node.properties_path)

    def node_ready(self, index: int) -> bool:
        """Return True when node ``index`` logged "Kafka Server started" since its launch and accepts TCP."""
        node = self.nodes[index]
        try:
            with node.log_path.open("rb") as handle:
                handle.seek(node.log_offset)
                started = READY_LOG_LINE in handle.read()
        except OSError:
            return False
        return started and port_open(node.client_port)

    # -- lifecycle ------------------------------------------------------------------------------

    def launch_node(self, index: int) -> None:
        """Start node ``index``'s JVM in its own session without waiting; its output goes to server.log."""
        if self.node_alive(index):
            raise KafkaLauncherError(f"node {index} is already running (pid {self.nodes[index].pid})")
        node = self.nodes[index]
        command = [
            *jvm_command(java_executable(), self.libs_dir, self.heap_mb),
            KAFKA_MAIN_CLASS,
            str(node.properties_path),
        ]
        with node.log_path.open("ab") as log:
            log.write(f"\n=== launcher: starting node {index} at {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
            log.flush()
            node.log_offset = log.tell()
            if self.detach:
                self._procs.pop(index, None)
                node.pid = spawn_detached(command, log, node.node_dir)
            else:
                proc = spawn_attached(command, log, node.node_dir)
                self._procs[index] = proc
                node.pid = proc.pid
        self.save_state()

    def wait_ready(self, indices: Sequence[int] | None = None, timeout_s: float | None = None) -> None:
        """Block until the given nodes (default all) are ready; raise with every node's log tail otherwise."""
        pending = list(range(len(self.nodes)) if indices is None else indices)
        deadline = time.monotonic() + (self.ready_timeout_s if timeout_s is None else timeout_s)
        while pending:
            dead = [index for index in pending if not self.node_alive(index)]
            if dead:
                raise KafkaLauncherError(self._failure_report(f"node(s) {dead} exited during startup"))
            pending = [index for index in pending if not self.node_ready(index)]
            if not pending:
                return
            if time.monotonic() > deadline:
                raise KafkaLauncherError(self._failure_report(f"node(s) {pending} not ready in time"))
            time.sleep(POLL_INTERVAL_S)

    def _failure_report(self, headline: str) -> str:
        parts = [f"Kafka cluster in {self.base_dir}: {headline}"]
        for index, node in enumerate(self.nodes):
            proc = self._procs.get(index)
            code = proc.poll() if proc is not None else None
            parts.append(
                f"--- node {index} (pid {node.pid}, exit code {code}, client port {node.client_port}, "
                f"controller port {node.controller_port}) tail of {node.log_path}:\n{tail_file(node.log_path)}"
            )
        return "\n".join(parts)

    def kill_node(self, index: int) -> None:
        """SIGKILL node ``index`` (for fault tests) and wait until it is gone."""
        self._signal_node(index, signal.SIGKILL)
        self._wait_gone([index], timeout_s=30.0)
        self.save_state()

    def restart_node(self, index: int, timeout_s: float | None = None) -> None:
        """Start node ``index`` again with the same id, ports and data, and wait until it is ready."""
        self.launch_node(index)
        self.wait_ready([index], timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node: SIGTERM, then SIGKILL whatever still runs after ``timeout_s``."""
        live = [index for index in range(len(self.nodes)) if self.node_alive(index)]
        for index in live:
            self._signal_node(index, signal.SIGTERM)
        stragglers = self._wait_gone(live, timeout_s)
        for index in stragglers:
            self._signal_node(index, signal.SIGKILL)
        self._wait_gone(stragglers, timeout_s=30.0)
        if self.state_path.parent.is_dir():
            self.save_state()

    def _signal_node(self, index: int, signum: signal.Signals) -> None:
        node = self.nodes[index]
        if node.pid is None or not self.node_alive(index):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(node.pid, signum)

    def _wait_gone(self, indices: Sequence[int], timeout_s: float) -> list[int]:
        deadline = time.monotonic() + timeout_s
        remaining = list(indices)
        while remaining and time.monotonic() < deadline:
            remaining = [index for index in remaining if self.node_alive(index)]
            if remaining:
                time.sleep(POLL_INTERVAL_S)
        return remaining

    def status(self) -> list[tuple[int, int | None, bool]]:
        """Return ``(node id, pid, alive)`` for every node."""
        return [(node.node_id, node.pid, self.node_alive(index)) for index, node in enumerate(self.nodes)]


def _make_nodes(base_dir: Path, nodes: int, client_ports: Sequence[int] | None) -> list[KafkaNode]:
    if client_ports is not None and len(client_ports) != nodes:
        raise ValueError(f"client_ports has {len(client_ports)} entries for {nodes} nodes")
    ports = free_ports(2 * nodes if client_ports is None else nodes)
    chosen_clients = list(client_ports) if client_ports is not None else ports[nodes:]
    return [
        KafkaNode(
            node_id=index,
            client_port=chosen_clients[index],
            controller_port=ports[index],
            node_dir=base_dir / f"node-{index}",
        )
        for index in range(nodes)
    ]


def start_cluster(
    nodes: int = 1,
    base_dir: Path = DEFAULT_RUN_DIR,
    client_ports: Sequence[int] | None = None,
    heap_mb: int = 512,
    ready_timeout_s: float = 120.0,
    libs_dir: Path | None = None,
    extra_properties: Mapping[str, str] | None = None,
    detach: bool = False,
) -> KafkaCluster:
    """Create, format and start a fresh ``nodes``-node KRaft cluster in ``base_dir`` and wait until it is ready.

    Ports are chosen automatically unless ``client_ports`` is given (controller ports are always
    automatic). By default the brokers are children of the caller that Linux kills if the caller dies
    (tests, benchmarks: no stray JVMs); ``detach=True`` daemonizes them so they outlive it (``up``).
    """
    if nodes < 1:
        raise ValueError("nodes must be >= 1")
    base_dir = base_dir.resolve()
    if (base_dir / STATE_FILE_NAME).exists():
        raise KafkaLauncherError(f"{base_dir} already holds a cluster ({STATE_FILE_NAME}); use load_cluster or wipe it")
    libs_dir = libs_dir or ensure_jars()
    node_list = _make_nodes(base_dir, nodes, client_ports)
    for node in node_list:
        node.data_dir.mkdir(parents=True, exist_ok=True)
        properties = {**server_properties(node, node_list), **(extra_properties or {})}
        node.properties_path.write_text(render_properties(properties))
    cluster = KafkaCluster(
        bootstrap_servers=",".join(f"{LOOPBACK_HOST}:{node.client_port}" for node in node_list),
        base_dir=base_dir,
        cluster_id=random_cluster_id(),
        libs_dir=libs_dir,
        nodes=node_list,
        heap_mb=heap_mb,
        ready_timeout_s=ready_timeout_s,
        detach=detach,
    )
    format_storage(node_list, cluster.cluster_id, libs_dir)
    cluster.save_state()
    _launch_and_wait(cluster, list(range(nodes)))
    return cluster


def _launch_and_wait(cluster: KafkaCluster, indices: Sequence[int]) -> None:
    try:
        for index in indices:
            cluster.launch_node(index)
        cluster.wait_ready(indices)
    except BaseException:
        cluster.stop(timeout_s=10.0)
        raise


def load_cluster(base_dir: Path = DEFAULT_RUN_DIR, detach: bool = False) -> KafkaCluster:
    """Rebuild a KafkaCluster handle from ``<base_dir>/cluster.json`` (written by another process)."""
    base_dir = base_dir.resolve()
    state_path = base_dir / STATE_FILE_NAME
    try:
        state = json.loads(state_path.read_text())
    except FileNotFoundError as exc:
        raise KafkaLauncherError(f"no cluster recorded in {base_dir} ({STATE_FILE_NAME} missing)") from exc
    nodes = [
        KafkaNode(
            node_id=int(item["node_id"]),
            client_port=int(item["client_port"]),
            controller_port=int(item["controller_port"]),
            node_dir=Path(item["node_dir"]),
            pid=None if item["pid"] is None else int(item["pid"]),
        )
        for item in state["nodes"]
    ]
    return KafkaCluster(
        bootstrap_servers=str(state["bootstrap_servers"]),
        base_dir=base_dir,
        cluster_id=str(state["cluster_id"]),
        libs_dir=Path(state["libs_dir"]),
        nodes=nodes,
        heap_mb=int(state["heap_mb"]),
        ready_timeout_s=float(state["ready_timeout_s"]),
        detach=detach,
    )


def resume_cluster(base_dir: Path = DEFAULT_RUN_DIR, detach: bool = False) -> KafkaCluster:
    """Start the stopped nodes of the cluster recorded in ``base_dir`` (same ids, ports, data) and wait."""
    cluster = load_cluster(base_dir, detach=detach)
    cluster.libs_dir = ensure_jars(cluster.libs_dir.parent)
    dead = [index for index in range(len(cluster.nodes)) if not cluster.node_alive(index)]
    _launch_and_wait(cluster, dead)
    return cluster


# --------------------------------------------------------------------------------------------- CLI


def _print_status(cluster: KafkaCluster) -> None:
    print(f"bootstrap_servers={cluster.bootstrap_servers}")
    for node_id, pid, alive in cluster.status():
        node = cluster.nodes[node_id]
        print(f"node {node_id}: {'alive' if alive else 'dead'} pid={pid} port={node.client_port} dir={node.node_dir}")


def _cmd_up(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir)
    if (base_dir / STATE_FILE_NAME).exists():
        cluster = load_cluster(base_dir)
        if len(cluster.nodes) != args.nodes:
            print(
                f"{base_dir} holds a {len(cluster.nodes)}-node cluster; run 'down --wipe' or choose another --dir",
                file=sys.stderr,
            )
            return 2
        cluster = resume_cluster(base_dir, detach=True)
    else:
        ports = None if args.port is None else [args.port + index for index in range(args.nodes)]
        cluster = start_cluster(
            nodes=args.nodes,
            base_dir=base_dir,
            client_ports=ports,
            heap_mb=args.heap_mb,
            ready_timeout_s=args.ready_timeout_s,
            detach=True,
        )
    _print_status(cluster)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir)
    if not (base_dir / STATE_FILE_NAME).exists():
        print(f"no cluster recorded in {base_dir}")
    else:
        cluster = load_cluster(base_dir)
        cluster.stop(timeout_s=args.timeout_s)
        print(f"stopped {len(cluster.nodes)} node(s) in {cluster.base_dir}")
    if args.wipe:
        shutil.rmtree(base_dir, ignore_errors=True)
        print(f"wiped {base_dir}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    base_dir = Path(args.dir)
    if not (base_dir / STATE_FILE_NAME).exists():
        print(f"no cluster recorded in {base_dir}")
        return 1
    cluster = load_cluster(base_dir)
    _print_status(cluster)
    return 0 if all(alive for _, _, alive in cluster.status()) else 1


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m infra.kafka.launcher``."""
    parser = argparse.ArgumentParser(prog="agentlog kafka", description="Run Apache Kafka on loopback without Docker.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start brokers in the background (they outlive this command)")
    up.add_argument("--nodes", type=int, default=1)
    up.add_argument("--dir", default=str(DEFAULT_RUN_DIR))
    up.add_argument("--port", type=int, default=None, help="client port of node 0; node i gets PORT+i")
    up.add_argument("--heap-mb", type=int, default=512)
    up.add_argument("--ready-timeout-s", type=float, default=120.0)
    up.set_defaults(handler=_cmd_up)
    down = sub.add_parser("down", help="stop the brokers recorded in --dir")
    down.add_argument("--dir", default=str(DEFAULT_RUN_DIR))
    down.add_argument("--wipe", action="store_true", help="also delete the data and logs")
    down.add_argument("--timeout-s", type=float, default=30.0)
    down.set_defaults(handler=_cmd_down)
    status = sub.add_parser("status", help="print bootstrap servers and per-node liveness (exit 1 if any is dead)")
    status.add_argument("--dir", default=str(DEFAULT_RUN_DIR))
    status.set_defaults(handler=_cmd_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``up|down|status`` command line and return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except KafkaLauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
