"""The Maven resolver: the broker's runtime jars, fetched once from Maven Central through ``pom.xml``.

The jars are cached under ``.cache/kafka/<version>/libs``; a marker holding the pom's digest records
a complete fetch, and a file lock keeps concurrent processes from fetching twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shlex
import shutil
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from infra.kafka.errors import KafkaLauncherError, tail_text

__all__ = [
    "CACHE_ENV_VAR",
    "KAFKA_DIR",
    "MAVEN_TIMEOUT_S",
    "POM_PATH",
    "default_cache_dir",
    "ensure_jars",
    "kafka_version",
    "maven_command",
    "repo_root",
]

KAFKA_DIR = Path(__file__).resolve().parent
POM_PATH = KAFKA_DIR / "pom.xml"
CACHE_ENV_VAR = "AGENTLOG_KAFKA_CACHE"
MAVEN_TIMEOUT_S = 1800.0
_POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


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
            f"stdout tail:\n{tail_text(result.stdout)}\n"
            f"stderr tail:\n{tail_text(result.stderr)}"
        )
    shutil.rmtree(libs_dir, ignore_errors=True)
    staging_dir.rename(libs_dir)
