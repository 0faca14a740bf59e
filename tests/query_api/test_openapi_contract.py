"""The OpenAPI document is the contract: `schemathesis run --checks all` against a live node finds nothing.

The node runs as `agentlog serve` on a loopback port (what users run); the fuzzer reads its
`/openapi.json` and `schemathesis.toml` at the repository root (the rules a schema cannot state,
each with its reason). Every check is on: status codes, content types, response headers and
schemas, `Allow` on 405, schema-valid requests accepted and schema-violating ones refused.
`AGENTLOG_CONTRACT_EXAMPLES` asks for more examples per operation.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.test_readme import BIN, REPO, free_port, running_node

#: Examples per operation (bounded so the suite stays fast; CI runs the same number).
EXAMPLES = int(os.environ.get("AGENTLOG_CONTRACT_EXAMPLES", "25"))
#: The longest the fuzzer may run.
RUN_TIMEOUT_S = 600


@pytest.mark.slow
def test_schemathesis_with_every_check_finds_no_failure(tmp_path: Path) -> None:
    port = free_port()
    with running_node(tmp_path, port):
        result = subprocess.run(
            [
                str(BIN / "schemathesis"),
                "--config-file",
                str(REPO / "schemathesis.toml"),
                "run",
                f"http://127.0.0.1:{port}/openapi.json",
                "--checks",
                "all",
                # Covered by the test below instead: `GET /v1/locks/a/renew` reads the lock `a/renew`.
                "--exclude-checks",
                "unsupported_method",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "20261204",
                "--warnings",
                "off",
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
    summary = result.stdout[result.stdout.find("SUMMARY") :] if "SUMMARY" in result.stdout else result.stdout[-4000:]
    report = "\n".join(line[:300] for line in result.stdout.splitlines()[:400])
    assert result.returncode == 0, f"{summary}\n{report}\n{result.stderr[-2000:]}"
    assert "Tested: " in result.stdout, summary
    assert "No issues found" in result.stdout, summary


#: Paths whose undeclared methods reach another route: state and lock names may contain `/`, so
#: `GET /v1/locks/a/renew` reads the lock named `a/renew`, and `DELETE /v1/kv/ns/query` deletes the
#: key `query`, rather than answering 405.
OVERLAPPING_PATHS = re.compile(
    r"^/v1/(locks/\{name\}/(acquire|renew|release)|state/\{name\}/cas|kv/\{namespace\}/(batch-get|batch-put|query))$"
)
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


def test_every_undeclared_method_answers_405_with_allow(tmp_path: Path) -> None:
    port = free_port()
    checked = 0
    with running_node(tmp_path, port), httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        paths = client.get("/openapi.json").json()["paths"]
        for path, item in paths.items():
            if OVERLAPPING_PATHS.match(path):
                continue
            declared = {method.upper() for method in item}
            integers = {
                parameter["name"]
                for operation in item.values()
                for parameter in operation.get("parameters", [])
                if parameter["in"] == "path" and parameter.get("schema", {}).get("type") == "integer"
            }
            url = re.sub(r"\{([^}]+)\}", lambda match, ints=frozenset(integers): "1" if match[1] in ints else "x", path)
            for method in sorted(set(METHODS) - declared):
                response = client.request(method, url)
                assert response.status_code == 405, (method, url, response.status_code, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                allowed = {name.strip() for name in response.headers["allow"].split(",")} - {"HEAD"}
                assert allowed == declared, (method, url, allowed, declared)
                checked += 1
    assert checked > 100
