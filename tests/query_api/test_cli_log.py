"""`agentlog log verify` and `agentlog log dump` on real data directories."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from eventlog.file import FileLog
from eventlog.records import Message
from query_api.cli.main import main


def make_log(root: Path, segments: int = 1) -> None:
    async def write() -> None:
        log = await FileLog.open(root, segment_bytes=1024)
        await log.create_topic("t", 2)
        for index in range(40 * segments):
            await log.append("t", index % 2, [Message(f"value-{index}".encode() * 8, b"key", (("h", b"\xff"),))])
        await log.close()

    asyncio.run(write())


def test_verify_clean_directory(tmp_path: Path) -> None:
    make_log(tmp_path)
    result = CliRunner().invoke(main, ["log", "verify", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 topics, 2 partitions" in result.output
    assert "40 records" in result.output
    assert result.output.strip().endswith("ok")


def test_verify_names_corrupt_file_and_offset(tmp_path: Path) -> None:
    make_log(tmp_path, segments=3)
    sealed = sorted((tmp_path / "topics" / "t" / "1").glob("*.log"))[0]
    data = bytearray(sealed.read_bytes())
    data[100] ^= 0x04
    sealed.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["log", "verify", str(tmp_path)])
    assert result.exit_code == 1
    assert f"CORRUPT: {sealed} at byte " in result.output
    assert "checksum" in result.output


def test_verify_missing_directory_is_an_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["log", "verify", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "no agentlog data" in result.output


def test_dump_prints_json_lines_from_an_offset(tmp_path: Path) -> None:
    make_log(tmp_path)
    result = CliRunner().invoke(
        main, ["log", "dump", str(tmp_path), "--topic", "t", "--partition", "1", "--from", "3", "--limit", "2"]
    )
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["offset"] for line in lines] == [3, 4]
    assert lines[0]["value"] == "value-7" * 8
    assert lines[0]["key"] == "key"
    assert lines[0]["headers"] == [["h", {"base64": "/w=="}]]


def test_dump_unknown_topic_is_an_error(tmp_path: Path) -> None:
    make_log(tmp_path)
    result = CliRunner().invoke(main, ["log", "dump", str(tmp_path), "--topic", "nope"])
    assert result.exit_code == 1
    assert "no topic 'nope'" in result.output
