"""Process control: the JVM command lines, spawning attached or detached brokers, liveness by pid and port."""

from __future__ import annotations

import ctypes
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from infra.kafka.config import LOOPBACK_HOST, KafkaNode
from infra.kafka.errors import KafkaLauncherError, tail_text
from infra.kafka.maven import KAFKA_DIR

__all__ = [
    "FORMAT_TIMEOUT_S",
    "KAFKA_MAIN_CLASS",
    "LOG4J_CONFIG_PATH",
    "STORAGE_TOOL_CLASS",
    "format_storage",
    "free_ports",
    "java_executable",
    "jvm_command",
    "pid_runs_node",
    "port_open",
    "spawn_attached",
    "spawn_detached",
]

LOG4J_CONFIG_PATH = KAFKA_DIR / "log4j2.properties"
KAFKA_MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL_CLASS = "kafka.tools.StorageTool"
FORMAT_TIMEOUT_S = 120.0
_PR_SET_PDEATHSIG = 1


def java_executable() -> str:
    """Return ``$JAVA_HOME/bin/java`` when set, else ``java`` from PATH; raise if neither exists."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLauncherError("'java' (17 or newer) is not on PATH and JAVA_HOME is not set")
    return found


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


def jvm_command(java: str, libs_dir: Path, heap_mb: int) -> list[str]:
    """Return the ``java`` command line (heap, GC, log4j config, classpath) that precedes a main class."""
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
            *jvm_command(java, libs_dir, heap_mb=256),
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
            failures.append(f"node {node.node_id}: exit {proc.returncode}: {shlex.join(command)}\n{tail_text(output)}")
    if failures:
        raise KafkaLauncherError("StorageTool format failed:\n" + "\n".join(failures))
