"""README's examples run as tests, so the docs cannot drift from the code.

Every fenced block tagged `sh` or `python` in README.md runs, in order, in one scratch directory,
against a real node (`agentlog serve --data ./agentlog-data`, what `make serve` runs) on a free
loopback port: `localhost:8000` / `127.0.0.1:8000` in a block are rewritten to that port. A block
runs with `bash -euo pipefail` (shell) or the project's Python, and must exit 0. A block preceded by
an HTML comment `<!-- not run: <reason> -->` is skipped, and must say why.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent
#: Languages whose blocks run; other fences (diagrams, layouts, output) are text.
RUN_LANGUAGES = ("sh", "python")
#: The marker that skips the next block, with its reason.
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>[^>]+?)\s*-->\s*$")
FENCE = re.compile(r"^```(?P<language>[\w-]*)\s*$")
DOC_PORT = re.compile(r"\b(localhost|127\.0\.0\.1):8000\b")
#: How long one block may run, and how long the node may take to start.
BLOCK_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Block:
    """One fenced block of a markdown file."""

    line: int
    language: str
    code: str
    skip_reason: str | None


def blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, each with the `not run` reason written just above it, if any."""
    found: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        previous = next((line for line in reversed(lines[:start]) if line.strip()), "")
        marker = NOT_RUN.search(previous)
        found.append(Block(start + 1, fence["language"], "\n".join(body) + "\n", marker["reason"] if marker else None))
        index += 1
    return found


def runnable(text: str) -> list[Block]:
    """The blocks of `text` that the test runs."""
    return [block for block in blocks(text) if block.language in RUN_LANGUAGES and block.skip_reason is None]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_block(block: Block, cwd: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run one block in `cwd` against the node on `port`."""
    code = DOC_PORT.sub(lambda match: f"{match[1]}:{port}", block.code)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = ["bash", "-euo", "pipefail", "-c", code] if block.language == "sh" else [sys.executable, "-c", code]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT_S)


@contextmanager
def running_node(cwd: Path, port: int) -> Iterator[None]:
    """`agentlog serve --data ./agentlog-data` in `cwd` on `port`, until the block ends."""
    with (cwd / "node.log").open("wb") as node_log:
        server = subprocess.Popen(
            [str(BIN / "agentlog"), "serve", "--data", "./agentlog-data", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            stdout=node_log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1.0).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the node did not start: {(cwd / 'node.log').read_text()!r}")
                time.sleep(0.05)
            yield
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def readme_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """A scratch directory with a real node serving `./agentlog-data` in it, and the node's port."""
    cwd = tmp_path_factory.mktemp("readme")
    port = free_port()
    with running_node(cwd, port):
        yield cwd, port


README_BLOCKS = runnable(README.read_text())


def test_readme_has_examples_and_every_skip_says_why() -> None:
    every = blocks(README.read_text())
    assert len(README_BLOCKS) >= 3, [block.line for block in every]
    for block in every:
        if block.skip_reason is not None:
            assert len(block.skip_reason) >= 10, f"README.md:{block.line}: a skipped block must say why"


@pytest.mark.parametrize("block", README_BLOCKS, ids=[f"README.md:{block.line}" for block in README_BLOCKS])
def test_readme_block_runs(block: Block, readme_node: tuple[Path, int]) -> None:
    cwd, port = readme_node
    result = run_block(block, cwd, port)
    report = f"README.md:{block.line} failed\n{block.code}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report


def test_a_wrong_example_fails(readme_node: tuple[Path, int]) -> None:
    """The harness is not a rubber stamp: the SDK call README once had wrong (a TypeError) fails here."""
    cwd, port = readme_node
    wrong = Block(
        0,
        "python",
        'from agentlog import connect\nwith connect("http://127.0.0.1:8000") as client:\n'
        '    client.cas("default", "counter", expected_version=0, value=1)\n',
        None,
    )
    result = run_block(wrong, cwd, port)
    assert result.returncode != 0
    assert "TypeError" in result.stderr


def test_the_block_parser_reads_fences_and_markers() -> None:
    text = (
        "x\n```sh\necho a\n```\n<!-- not run: starts a server forever -->\n"
        "```python\nprint(1)\n```\n```\ntext\n```\n"
    )
    parsed = blocks(text)
    assert [(block.language, block.skip_reason) for block in parsed] == [
        ("sh", None),
        ("python", "starts a server forever"),
        ("", None),
    ]
    assert [block.code for block in runnable(text)] == ["echo a\n"]
