"""The on-disk frame of one atomic batch, and its decoder.

offset  size  field
0       4     magic b"ALB1"
4       4     length of the whole frame in bytes, header included (u32 LE)
8       4     CRC32 of bytes [12, length) (u32 LE)
12      8     base offset (u64 LE)
20      4     record count (u32 LE, > 0)
24      8     timestamp in ms, stamped at append, shared by the batch (u64 LE)
32      ...   records: key length (i32, -1 = no key), value length (u32), header count (u16),
              key, value, then per header: name length (u16), value length (u32), name, value
"""

from __future__ import annotations

import mmap
import struct
import zlib

from eventlog import limits
from eventlog.records import Header, Message, Record

__all__ = ["HEADER", "MAGIC", "Buffer", "FrameError", "check_crc", "decode_records", "encode_batch", "read_header"]

#: What frames are parsed from: bytes read with pread, or a map of the file.
Buffer = bytes | memoryview | mmap.mmap

MAGIC = b"ALB1"
HEADER = struct.Struct("<4sIIQIQ")
_CRC_FROM = 12
_RECORD = struct.Struct("<iIH")
_HEADER_PAIR = struct.Struct("<HI")
#: Largest frame a reader accepts: anything larger is corrupt.
MAX_FRAME_BYTES = limits.MAX_BATCH_BYTES


class FrameError(Exception):
    """A frame fails its checks; the caller knows the file and position."""


def encode_batch(base_offset: int, timestamp_ms: int, messages: list[Message]) -> bytes:
    """Encode a batch as one checksummed frame."""
    pack_record = _RECORD.pack
    parts: list[bytes] = [b""]
    append = parts.append
    for value, key, headers in messages:
        if key is None and not headers:
            append(pack_record(-1, len(value), 0))
            append(value)
            continue
        if key is None:
            append(pack_record(-1, len(value), len(headers)))
        else:
            append(pack_record(len(key), len(value), len(headers)))
            append(key)
        append(value)
        for name, header_value in headers:
            name_bytes = name.encode()
            parts.append(_HEADER_PAIR.pack(len(name_bytes), len(header_value)))
            parts.append(name_bytes)
            parts.append(header_value)
    parts[0] = struct.pack("<QIQ", base_offset, len(messages), timestamp_ms)
    tail = b"".join(parts)
    length = _CRC_FROM + len(tail)
    return MAGIC + struct.pack("<II", length, zlib.crc32(tail)) + tail


def read_header(data: Buffer, position: int) -> tuple[int, int, int, int, int]:
    """Parse and sanity-check the header at `position`: (length, crc, base_offset, count, timestamp_ms)."""
    magic, length, crc, base_offset, count, timestamp_ms = HEADER.unpack_from(data, position)
    if magic != MAGIC:
        raise FrameError(f"bad magic {magic!r}")
    if not HEADER.size < length <= MAX_FRAME_BYTES:
        raise FrameError(f"frame length {length} outside {HEADER.size + 1}..{MAX_FRAME_BYTES}")
    if not 0 < count <= limits.MAX_BATCH_RECORDS:
        raise FrameError(f"record count {count} outside 1..{limits.MAX_BATCH_RECORDS}")
    return length, crc, base_offset, count, timestamp_ms


def check_crc(data: Buffer, position: int, length: int, crc: int) -> None:
    """Raise FrameError unless the frame at `position` matches its CRC."""
    view = memoryview(data)[position + _CRC_FROM : position + length]
    if zlib.crc32(view) != crc:
        raise FrameError("checksum mismatch")


def decode_records(data: bytes, position: int, partition: int, first_offset: int, max_records: int) -> list[Record]:
    """Decode the records of the (already CRC-checked) frame at `position` from `first_offset` on."""
    length, _crc, base_offset, count, timestamp_ms = read_header(data, position)
    end = position + length
    unpack_record = _RECORD.unpack_from
    cursor = position + HEADER.size
    out: list[Record] = []
    append = out.append
    new_record = tuple.__new__  # skips NamedTuple.__new__'s argument handling on the hot path
    record_size = _RECORD.size
    skip = max(0, first_offset - base_offset)
    last = min(count, skip + max_records)
    headers: tuple[Header, ...] = ()
    for index in range(last):
        key_length, value_length, header_count = unpack_record(data, cursor)
        cursor += record_size
        key: bytes | None = None
        if key_length >= 0:
            key = data[cursor : cursor + key_length]
            cursor += key_length
        value = data[cursor : cursor + value_length]
        cursor += value_length
        if header_count:
            headers, cursor = _decode_headers(data, cursor, header_count)
        elif headers:
            headers = ()
        if cursor > end:
            raise FrameError(f"record {index} runs past the frame end")
        if index >= skip:
            append(new_record(Record, (partition, base_offset + index, timestamp_ms, key, value, headers)))
    if last < count:
        return out
    if cursor != end:
        raise FrameError(f"records end at {cursor - position}, frame length is {length}")
    return out


def _decode_headers(data: bytes, cursor: int, count: int) -> tuple[tuple[Header, ...], int]:
    headers: list[Header] = []
    for _ in range(count):
        name_length, value_length = _HEADER_PAIR.unpack_from(data, cursor)
        cursor += _HEADER_PAIR.size
        try:
            name = data[cursor : cursor + name_length].decode()
        except UnicodeDecodeError as error:
            raise FrameError("header name is not UTF-8") from error
        cursor += name_length
        headers.append((name, data[cursor : cursor + value_length]))
        cursor += value_length
    return tuple(headers), cursor
