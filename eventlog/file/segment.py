"""Segment files: naming, scanning on open, and the rule that tells a torn tail from corruption.

A torn tail is what a crash mid-append leaves at the very end of the newest segment: a short frame,
a frame whose length runs past the end of the file, a final frame whose checksum fails, or zeros.
It is truncated. Anything else that fails its checks is corruption, and the log refuses to open.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from eventlog import limits
from eventlog.errors import CorruptLogError
from eventlog.file.frame import HEADER, FrameError, check_crc, decode_records, read_header

__all__ = ["Segment", "SegmentScan", "scan_segment", "segment_name", "segment_paths"]

_SUFFIX = ".log"
_DIGITS = 20


def segment_name(base_offset: int) -> str:
    """The file name of the segment whose first record has `base_offset`."""
    return f"{base_offset:0{_DIGITS}d}{_SUFFIX}"


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    """The segment files of a partition directory as (base offset, path), oldest first."""
    found: list[tuple[int, Path]] = []
    for entry in os.scandir(directory):
        name = entry.name
        if name.endswith(_SUFFIX) and len(name) == _DIGITS + len(_SUFFIX) and name[:_DIGITS].isdigit():
            found.append((int(name[:_DIGITS]), Path(entry.path)))
    found.sort()
    return found


@dataclass(slots=True)
class Segment:
    """One segment file: its first offset, durable size and sparse index (offset → byte position)."""

    base_offset: int
    path: Path
    size: int = 0
    end_offset: int = 0
    index_offsets: list[int] = field(default_factory=list)
    index_positions: list[int] = field(default_factory=list)

    def add_to_index(self, base_offset: int, position: int) -> None:
        """Record a frame start if it lies INDEX_INTERVAL_BYTES past the last entry (or is the first)."""
        if not self.index_positions or position - self.index_positions[-1] >= limits.INDEX_INTERVAL_BYTES:
            self.index_offsets.append(base_offset)
            self.index_positions.append(position)


@dataclass(slots=True)
class SegmentScan:
    """What a scan found: the valid prefix, and either a torn tail or a corruption (or neither)."""

    segment: Segment
    batches: int = 0
    records: int = 0
    last_timestamp_ms: int = 0
    torn_at: int | None = None
    corruption: CorruptLogError | None = None


def scan_segment(path: Path, base_offset: int, *, is_newest: bool, deep: bool = False) -> SegmentScan:
    """Walk every frame of a segment, checking framing, CRC and offset continuity.

    `is_newest` allows a torn tail; `deep` also decodes every record (for `agentlog log verify`).
    """
    segment = Segment(base_offset, path, end_offset=base_offset)
    scan = SegmentScan(segment)
    size = path.stat().st_size
    if size == 0:
        return scan
    with path.open("rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        _walk(data, size, scan, is_newest=is_newest, deep=deep)
    return scan


def _walk(data: mmap.mmap, size: int, scan: SegmentScan, *, is_newest: bool, deep: bool) -> None:
    segment = scan.segment
    position = 0
    while position < size:
        problem = _check_frame(data, size, position, segment.end_offset, deep=deep)
        if problem is not None:
            torn, reason = problem
            if torn and is_newest:
                scan.torn_at = position
            else:
                scan.corruption = CorruptLogError(str(segment.path), position, reason)
            return
        length, _crc, frame_base, count, timestamp_ms = read_header(data, position)
        segment.add_to_index(frame_base, position)
        segment.end_offset = frame_base + count
        scan.batches += 1
        scan.records += count
        scan.last_timestamp_ms = timestamp_ms
        position += length
        segment.size = position


def _check_frame(
    data: mmap.mmap, size: int, position: int, expected_offset: int, *, deep: bool
) -> tuple[bool, str] | None:
    """None if the frame at `position` is sound; else (could be a torn tail, reason)."""
    remaining = size - position
    if remaining < HEADER.size:
        return True, f"{remaining} bytes left, short of a frame header"
    try:
        length, crc, frame_base, _count, _timestamp_ms = read_header(data, position)
    except FrameError as error:
        return data[position:size] == bytes(remaining), str(error)
    if length > remaining:
        return True, f"frame of {length} bytes runs past the end of the file ({remaining} left)"
    try:
        check_crc(data, position, length, crc)
    except FrameError as error:
        return length == remaining, str(error)
    if frame_base != expected_offset:
        return False, f"frame starts at offset {frame_base}, expected {expected_offset}"
    if deep:
        try:
            decode_records(data[position : position + length], 0, 0, frame_base, limits.MAX_BATCH_RECORDS)
        except (FrameError, ValueError, struct.error) as error:
            return False, f"records do not decode: {error}"
    return None
