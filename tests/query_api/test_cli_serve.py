"""`agentlog serve` flags: `--data DIR` beside a `--log` naming another log is a usage error, never a silent choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from click.testing import CliRunner

from query_api.cli.main import main


def test_data_beside_a_kafka_log_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(args))
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--log", "kafka://127.0.0.1:9092"])
    assert result.exit_code == 2, result.output
    assert "--data" in result.output
    assert "kafka://127.0.0.1:9092" in result.output
    assert "--snapshot-dir" in result.output
    assert calls == []  # nothing was served


def test_data_and_log_that_agree_serve_that_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[str] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(kwargs["port"]))
    result = CliRunner().invoke(main, ["serve", "--data", str(tmp_path), "--log", f"file://{tmp_path}", "--port", "0"])
    assert result.exit_code == 0, result.output
    assert f"file://{tmp_path}" in result.output
    assert served == [0]
