"""Run a plain Apache Kafka (KRaft) cluster on loopback without Docker.

The broker's jars come from Maven Central through ``infra/kafka/pom.xml`` and are cached under
``.cache/kafka/<version>/libs``. Each node is one JVM running ``kafka.Kafka`` with both the broker and
the controller role; nodes listen on 127.0.0.1 only.

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
import base64
import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

KAFKA_DIR = Path(__file__).resolve().parent
POM_PATH = KAFKA_DIR / "pom.xml"
LOG4J_CONFIG_PATH = KAFKA_DIR / "log4j2.properties"
STATE_FILE_NAME = "cluster.json"
NODE_LOG_NAME = "server.log"
NODE_PROPERTIES_NAME = "server.properties"
READY_LOG_LINE = b"Kafka Server started"
KAFKA_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
CACHE_ENV_VAR = "AGENTLOG_KAFKA_CACHE"
DEFAULT_RUN_DIR = Path(".cache/kafka-run")
LOOPBACK_HOST = "127.0.0.1"
LOG_TAIL_LINES = 40
POLL_INTERVAL_S = 0.2
MAVEN_TIMEOUT_S = 1800.0
FORMAT_TIMEOUT_S = 120.0
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}
_PR_SET_PDEATHSIG = 1


class KafkaLauncherError(RuntimeError):
    """Raised when the jars cannot be fetched or a broker cannot be started, with the evidence."""


# ---------------------------------------------------------------------------------------------- jars


def kafka_version(pom_path: Path = POM_PATH) -> str:
    """Return the Kafka version pinned by the ``kafka.version`` property of the pom."""
    root = ET.parse(pom_path).getroot()
    node = root.find("m:properties/m:kafka.version", _POM_NS)
    if node is None or not (node.text or "").strip():
        raise KafkaLauncherError(f"{pom_path} has no <kafka.version> property")
    return (node.text or "").strip()


def repo_root() -> Path | None:
    """Return the source checkout holding this file, or None when it runs from an installed package."""
    candidate = KAFKA_DIR.parent.parent
    return candidate if (candidate / "pyproject.toml").is_file() else None


def default_cache_dir() -> Path:
    """Return ``$AGENTLOG_KAFKA_CACHE`` or ``<repo root>/.cache/kafka/<kafka version>``."""
    from_env = os.environ.get(CACHE_ENV_VAR)
    if from_env:
        return Path(from_env).expanduser().resolve()
    root = repo_root()
    base = root / ".cache" if root is not None else Path.home() / ".cache" / "agentlog"
    return base / "kafka" / kafka_version()


def _pom_digest(pom_path: Path) -> str:
    return hashlib.sha256(pom_path.read_bytes()).hexdigest()


def _tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _file_lock(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def maven_command(output_dir: Path, pom_path: Path = POM_PATH, mvn: str = "mvn") -> list[str]:
    """Return the Maven command that copies the broker's runtime jars into ``output_dir``."""
    return [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom_path),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
    ]


def ensure_jars(cache_dir: Path | None = None, pom_path: Path = POM_PATH) -> Path:
    """Fetch the broker's jars with Maven once (a marker records completion) and return the libs dir."""
    cache_dir = (cache_dir or default_cache_dir()).resolve()
    libs_dir = cache_dir / "libs"
    marker = cache_dir / ".complete"
    digest = _pom_digest(pom_path)
    if marker.is_file() and marker.read_text().strip() == digest and libs_dir.is_dir():
        return libs_dir
    with _file_lock(cache_dir / ".lock"):
        if marker.is_file() and marker.read_text().strip() == digest and libs_dir.is_dir():
            return libs_dir
        _fetch_jars(libs_dir, pom_path)
        marker.write_text(digest + "\n")
    return libs_dir


def _fetch_jars(libs_dir: Path, pom_path: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaLauncherError("Maven ('mvn') is not on PATH: it is needed once to fetch the Kafka jars")
    staging_dir = libs_dir.with_name(f"libs.partial-{os.getpid()}")
    shutil.rmtree(staging_dir, ignore_errors=True)
    command = maven_command(staging_dir, pom_path, mvn)
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=MAVEN_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise KafkaLauncherError(f"Maven timed out after {MAVEN_TIMEOUT_S:.0f} s: {shlex.join(command)}") from exc
    if result.returncode != 0 or not any(staging_dir.glob("kafka_*.jar")):
        shutil.rmtree(staging_dir, ignore_errors=True)
        raise KafkaLauncherError(
            f"Maven failed (exit {result.returncode}) fetching the Kafka jars.\n"
            f"command: {shlex.join(command)}\n"
            f"stdout tail:\n{_tail_text(result.stdout)}\n"
            f"stderr tail:\n{_tail_text(result.stderr)}"
        )
    shutil.rmtree(libs_dir, ignore_errors=True)
    staging_dir.rename(libs_dir)


# --------------------------------------------------------------------------------------- processes


def java_executable() -> str:
    """Return ``$JAVA_HOME/bin/java`` when set, else ``java`` from PATH; raise if neither exists."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLauncherError("'java' (17 or newer) is not on PATH and JAVA_HOME is not set")
    return found


def random_cluster_id() -> str:
    """Return a fresh Kafka cluster id: 16 random bytes, URL-safe base64 without padding."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka's Uuid.randomUuid avoids ids that look like CLI flags
            return cluster_id


def free_ports(count: int, host: str = LOOPBACK_HOST) -> list[int]:
    """Return ``count`` distinct TCP ports that were free on ``host`` a moment ago."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def port_open(port: int, host: str = LOOPBACK_HOST, timeout_s: float = 0.5) -> bool:
    """Return True when a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _read_proc_stat_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[0]


def pid_runs_node(pid: int, properties_path: Path) -> bool:
    """Return True when ``pid`` is a live (not zombie) process started with ``properties_path``."""
    if Path("/proc").is_dir():
        state = _read_proc_stat_state(pid)
        if state is None or state in {"Z", "X"}:
            return False
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return str(properties_path).encode() in cmdline
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this child when its parent exits (runs in the child before exec)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGKILL)


def spawn_attached(command: Sequence[str], log: IO[bytes], cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` as a child in its own session that Linux kills if this process dies."""
    parent_pid = os.getpid()
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=lambda: _die_with_parent(parent_pid),
    )


def spawn_detached(command: Sequence[str], log: IO[bytes], cwd: Path) -> int:
    """Start ``command`` as a daemon (double fork, own session) that outlives this process; return its pid."""
    read_fd, write_fd = os.pipe()
    intermediate_pid = os.fork()
    if intermediate_pid == 0:  # the intermediate child: start the daemon, report its pid, vanish
        exit_code = 1
        try:
            os.close(read_fd)
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True
            )
            os.write(write_fd, str(proc.pid).encode("ascii"))
            exit_code = 0
        finally:
            os._exit(exit_code)  # skips Popen.__del__: the daemon is re-parented, never waited for here
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as reader:
        reported = reader.read()
    os.waitpid(intermediate_pid, 0)
    if not reported:
        raise KafkaLauncherError(f"could not start a detached process: {shlex.join(command)}")
    return int(reported)


def _tail_file(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return _tail_text(data.decode("utf-8", errors="replace"), lines)


# ------------------------------------------------------------------------------------------- nodes


@dataclass
class KafkaNode:
    """One KRaft node (broker and controller in one JVM) of a loopback cluster."""

    node_id: int
    client_port: int
    controller_port: int
    node_dir: Path
    pid: int | None = None
    log_offset: int = 0

    @property
    def properties_path(self) -> Path:
        """Return the path of this node's server.properties."""
        return self.node_dir / NODE_PROPERTIES_NAME

    @property
    def log_path(self) -> Path:
        """Return the file that receives this node's stdout and stderr."""
        return self.node_dir / NODE_LOG_NAME

    @property
    def data_dir(self) -> Path:
        """Return this node's log.dirs (also its metadata log dir)."""
        return self.node_dir / "data"


def controller_quorum_voters(nodes: Sequence[KafkaNode]) -> str:
    """Return the static ``controller.quorum.voters`` value for these nodes."""
    return ",".join(f"{node.node_id}@{LOOPBACK_HOST}:{node.controller_port}" for node in nodes)


def server_properties(node: KafkaNode, nodes: Sequence[KafkaNode]) -> dict[str, str]:
    """Return the KRaft server.properties of ``node`` in a cluster of ``nodes``."""
    count = len(nodes)
    replication = min(3, count)
    internal_min_isr = min(2, replication)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": controller_quorum_voters(nodes),
        "listeners": f"PLAINTEXT://{LOOPBACK_HOST}:{node.client_port},CONTROLLER://{LOOPBACK_HOST}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK_HOST}:{node.client_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        "num.partitions": "1",
        "default.replication.factor": str(replication),
        "min.insync.replicas": "2" if count >= 3 else "1",
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "log.message.timestamp.type": "LogAppendTime",
        "log.retention.ms": "-1",
        "log.retention.bytes": "-1",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": str(replication),
        # Fewer internal partitions than Kafka's default 50: far less work on a 2-core machine.
        "offsets.topic.num.partitions": "10",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(internal_min_isr),
        "transaction.state.log.num.partitions": "10",
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(internal_min_isr),
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """Render a properties mapping as a Java .properties file body."""
    lines = ["# Written by infra/kafka/launcher.py; regenerated by start_cluster."]
    lines += [f"{key}={value}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def _java_base_command(java: str, libs_dir: Path, heap_mb: int) -> list[str]:
    return [
        java,
        f"-Xms{heap_mb}m",
        f"-Xmx{heap_mb}m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG_PATH}",
        "-cp",
        str(libs_dir / "*"),
    ]


def format_storage(
    nodes: Sequence[KafkaNode], cluster_id: str, libs_dir: Path, timeout_s: float = FORMAT_TIMEOUT_S
) -> None:
    """Format every unformatted node's log dir with StorageTool, in parallel (static voters: no extra flags)."""
    java = java_executable()
    pending: list[tuple[KafkaNode, list[str], subprocess.Popen[str]]] = []
    for node in nodes:
        if (node.data_dir / "meta.properties").is_file():
            continue
        command = [
            *_java_base_command(java, libs_dir, heap_mb=256),
            STORAGE_TOOL_CLASS,
            "format",
            "-t",
            cluster_id,
            "-c",
            str(node.properties_path),
        ]
        proc = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        pending.append((node, command, proc))
    failures: list[str] = []
    for node, command, proc in pending:
        try:
            output, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        if proc.returncode != 0:
            failures.append(f"node {node.node_id}: exit {proc.returncode}: {shlex.join(command)}\n{_tail_text(output)}")
    if failures:
        raise KafkaLauncherError("StorageTool format failed:\n" + "\n".join(failures))


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
            *_java_base_command(java_executable(), self.libs_dir, self.heap_mb),
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
                f"controller port {node.controller_port}) tail of {node.log_path}:\n{_tail_file(node.log_path)}"
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
