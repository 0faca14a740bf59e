"""Tamper evidence: `agentlog audit verify DATA_DIR` passes on a clean log and names the first record
rewritten with a valid checksum but different bytes; the node's `/v1/status` shows the same heads."""

from __future__ import annotations

import asyncio
import struct
import zlib
from pathlib import Path

import httpx
from click.testing import CliRunner

from commands import Caller, KvPut, stamp
from eventlog.file.frame import HEADER, read_header
from eventlog.partitioner import partition_for
from query_api.cli.main import main
from query_api.node.node import Node
from tests.query_api.http_node import file_settings, serve


async def _write(root: Path, values: list[str]) -> None:
    node = await Node.start(file_settings(root))
    try:
        for index, value in enumerate(values):
            await node.execute(stamp(KvPut(key=f"k{index}", value=value), Caller("acme"), namespace="notes"))
    finally:
        await node.stop()


def _rewrite(segment: Path, old: bytes, new: bytes) -> None:
    """Replace `old` by `new` (same length) inside one frame of `segment`, and give the frame a valid CRC."""
    assert len(old) == len(new)
    data = bytearray(segment.read_bytes())
    at = data.index(old)
    data[at : at + len(old)] = new
    position = 0
    while position < len(data):
        length = read_header(bytes(data), position)[0]
        if position <= at < position + length:
            struct.pack_into("<I", data, position + 8, zlib.crc32(bytes(data[position + 12 : position + length])))
            break
        position += length
    assert position + HEADER.size <= len(data)
    segment.write_bytes(bytes(data))


def test_audit_verify_passes_a_clean_log_and_names_a_rewritten_record(tmp_path: Path) -> None:
    asyncio.run(_write(tmp_path, ["first", "pay alice 10", "third"]))
    clean = CliRunner().invoke(main, ["audit", "verify", str(tmp_path)])
    assert clean.exit_code == 0, clean.output
    assert "3 records, 3 with a recorded chain hash" in clean.output
    assert clean.output.rstrip().endswith("ok")

    with serve(file_settings(tmp_path)) as base_url:
        status = httpx.get(f"{base_url}/v1/status", timeout=30).json()
    heads = [p["chain_head"] for p in status["partitions"]]
    for partition, head in enumerate(heads):
        assert f"partition {partition}: head {head}" in clean.output

    partition = partition_for(b"acme/notes", 8)
    [segment] = sorted((tmp_path / "topics" / "main" / str(partition)).glob("*.log"))
    _rewrite(segment, b"pay alice 10", b"pay alice 99")
    checksums = CliRunner().invoke(main, ["log", "verify", str(tmp_path)])
    assert checksums.exit_code == 0, checksums.output  # every CRC is valid: only the chain can tell

    tampered = CliRunner().invoke(main, ["audit", "verify", str(tmp_path)])
    assert tampered.exit_code == 1, tampered.output
    assert f"BROKEN: partition {partition} offset 1:" in tampered.output
    assert "offset 0:" not in tampered.output
    assert "offset 2:" not in tampered.output
