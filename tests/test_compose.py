"""docker-compose.yml and infra/Dockerfile, checked without Docker: every agentlog command and AGENTLOG_*
variable against the real CLI (click) and Settings, the broker against KRaft and the launcher's Kafka version."""

from __future__ import annotations

import base64
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest

from infra.kafka.launcher import kafka_version
from query_api.cli.main import main
from query_api.settings import Settings

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "infra" / "Dockerfile"
AGENTLOG_IMAGE = "agentlog:dev"


# ------------------------------------------------------------------------------------------ a tiny YAML


def _strip_comment(line: str) -> str:
    """`line` without a trailing `# comment` (a `#` outside quotes, at the start or after whitespace)."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip()
    return line.rstrip()


def _split_key(content: str) -> tuple[str, str] | None:
    """(key, rest) of a `key: value` or `key:` line, or None if the line is no mapping entry."""
    match = re.fullmatch(r"([A-Za-z0-9_.-]+):(?:\s+(.*))?", content)
    return None if match is None else (match.group(1), match.group(2) or "")


def _scalar(text: str) -> Any:
    if text == "":
        return None
    if text.startswith(("[", "{", '"')):
        return json.loads(text)  # flow collections and double-quoted strings are written JSON-compatible
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("''", "'")
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("true", "false"):
        return text == "true"
    return text


def tiny_yaml(text: str) -> Any:
    """Parse the YAML subset docker-compose.yml is written in: block maps and lists, JSON-style flow values."""
    lines = []
    for raw in text.splitlines():
        content = _strip_comment(raw)
        if content.strip():
            assert "\t" not in raw[: len(raw) - len(raw.lstrip())], f"tab indentation: {raw!r}"
            lines.append((len(content) - len(content.lstrip()), content.strip()))

    def block(index: int, indent: int) -> tuple[Any, int]:
        if lines[index][1].startswith("- ") or lines[index][1] == "-":
            items: list[Any] = []
            while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("-"):
                items.append(_scalar(lines[index][1][1:].strip()))
                index += 1
            return items, index
        mapping: dict[str, Any] = {}
        while index < len(lines) and lines[index][0] == indent:
            entry = _split_key(lines[index][1])
            assert entry is not None, f"not a mapping entry: {lines[index][1]!r}"
            key, rest = entry
            assert key not in mapping, f"duplicate key {key!r}"
            index += 1
            if rest == "" and index < len(lines) and lines[index][0] > indent:
                mapping[key], index = block(index, lines[index][0])
            else:
                mapping[key] = _scalar(rest)
        return mapping, index

    value, end = block(0, lines[0][0])
    assert end == len(lines), f"unparsed line: {lines[end][1]!r}"
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """docker-compose.yml as data (by PyYAML where installed, checked against the tiny parser)."""
    text = COMPOSE.read_text()
    parsed = tiny_yaml(text)
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return dict(parsed)
    loaded: dict[str, Any] = yaml.safe_load(text)
    assert parsed == loaded, "the tiny parser and PyYAML disagree"
    return loaded


def agentlog_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the agentlog image."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == AGENTLOG_IMAGE or "build" in service
    }


def parse_command(service: dict[str, Any]) -> tuple[str, click.Context]:
    """The subcommand and its parsed context, as click would parse `command` (raises on unknown flags)."""
    command = service["command"]
    assert isinstance(command, list), "write commands as lists (exec form)"
    assert command[0] == "agentlog", command
    name, args = command[1], command[2:]
    assert isinstance(main, click.Group)
    assert name in main.commands, f"`agentlog {name}` does not exist"
    subcommand = main.commands[name]
    return name, subcommand.make_context(name, list(args))


# ------------------------------------------------------------------------------------------ tests


def test_the_tiny_parser_reads_what_it_must() -> None:
    text = 'a:\n  b: "x # not a comment"  # a comment\n  c: [1, "two"]\n  d:\n    - "8001:8000"\n    - v:/p\n  e:\n'
    assert tiny_yaml(text) == {"a": {"b": "x # not a comment", "c": [1, "two"], "d": ["8001:8000", "v:/p"], "e": None}}


def test_compose_runs_a_kraft_broker_of_the_launchers_kafka_version(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16
    assert env["KAFKA_LOG_MESSAGE_TIMESTAMP_TYPE"] == "LogAppendTime"  # DESIGN §2: the log stamps time
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"] == "false"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert env["KAFKA_LOG_DIRS"] in [volume.split(":", 1)[1] for volume in kafka["volumes"]]


def test_every_agentlog_command_and_variable_exists(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    services = agentlog_services(compose)
    assert services, "no agentlog services"
    fields = set(Settings.model_fields)
    for name, service in services.items():
        subcommand, context = parse_command(service)
        assert subcommand in ("serve", "worker"), f"{name}: unexpected `agentlog {subcommand}`"
        assert context.params["log_url"] == "kafka://kafka:9092", f"{name}: not on the compose broker"
        environment = service.get("environment") or {}
        for key in environment:
            assert key.startswith("AGENTLOG_"), f"{name}: {key} is no agentlog variable"
            assert key.removeprefix("AGENTLOG_").lower() in fields, f"{name}: {key} names no Settings field"
        for key in [k for k in os.environ if k.startswith("AGENTLOG_")]:
            monkeypatch.delenv(key)
        for key, value in environment.items():
            monkeypatch.setenv(key, str(value))
        settings = Settings(log=context.params["log_url"])  # the variables validate (types, ranges)
        assert not settings.runs_processors(), f"{name}: Kafka nodes leave the processors to the worker"
        assert "kafka" in service["depends_on"], f"{name}: must wait for the broker"


def test_two_replicated_nodes_and_one_worker(compose: dict[str, Any]) -> None:
    services = agentlog_services(compose)
    nodes = {n: s for n, s in services.items() if parse_command(s)[0] == "serve"}
    workers = {n: s for n, s in services.items() if parse_command(s)[0] == "worker"}
    assert len(nodes) == 2, nodes
    assert len(workers) == 1, workers
    host_ports = []
    for name, service in nodes.items():
        _, context = parse_command(service)
        assert context.params["host"] == "0.0.0.0", f"{name}: must listen beyond the container"
        port = context.params["port"] or 8000
        published = [str(mapping).split(":") for mapping in service["ports"]]
        assert [container for _, container in published] == [str(port)], f"{name}: {published}"
        host_ports += [host for host, _ in published]
        snapshot_dir = context.params["snapshot_dir"]
        assert snapshot_dir is not None, f"{name}: a Kafka node needs --snapshot-dir for its snapshots"
        mounts = {volume.split(":", 1)[1]: volume.split(":", 1)[0] for volume in service["volumes"]}
        assert str(snapshot_dir) in mounts, f"{name}: snapshots outside a volume are lost with the container"
        assert mounts[str(snapshot_dir)] in compose["volumes"]
    assert len(set(host_ports)) == len(host_ports), "two nodes publish the same host port"
    volumes = [v.split(":", 1)[0] for s in nodes.values() for v in s["volumes"]]
    assert len(set(volumes)) == len(volumes), "each node keeps its own snapshots"
    [worker] = workers.values()
    _, context = parse_command(worker)
    assert context.params["group"], "the worker needs a consumer group"


def test_the_image_installs_the_kafka_extra_from_this_repository(compose: dict[str, Any]) -> None:
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    assert builds == [{"context": ".", "dockerfile": "infra/Dockerfile"}]
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert 'pip install ".[kafka]"' in dockerfile
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extra = " ".join(project["project"]["optional-dependencies"]["kafka"])
    assert "aiokafka" in extra
    assert "faust-streaming" in extra
    copied = set(re.findall(r"^COPY (\S+) \./\1$", dockerfile, re.MULTILINE))
    packages = {name.rstrip("*") for name in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages <= copied, f"packages not copied into the image: {sorted(packages - copied)}"
    assert "agentlog" in project["project"]["scripts"]
