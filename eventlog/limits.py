"""Named limits of the log layer, checked when records are written and when they are read back."""

from __future__ import annotations

__all__ = [
    "DEFAULT_PARTITIONS",
    "INDEX_INTERVAL_BYTES",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_HEADERS_PER_RECORD",
    "MAX_HEADER_NAME_BYTES",
    "MAX_HEADER_VALUE_BYTES",
    "MAX_KEY_BYTES",
    "MAX_PARTITIONS",
    "MAX_READ_RECORDS",
    "MAX_TOPIC_NAME_BYTES",
    "MAX_VALUE_BYTES",
    "MAX_WAIT_MS",
    "SEGMENT_BYTES_DEFAULT",
]

#: Partitions of a topic when the caller names none (DESIGN §2).
DEFAULT_PARTITIONS = 8
#: Most partitions one topic may have.
MAX_PARTITIONS = 1024
#: Longest topic name, in bytes of ASCII `[A-Za-z0-9._-]` (Kafka allows 249).
MAX_TOPIC_NAME_BYTES = 200
#: Largest record key. Commands keep theirs far below (512 bytes).
MAX_KEY_BYTES = 4096
#: Largest record value: a command is at most 1 MiB, so the log allows some headroom.
MAX_VALUE_BYTES = 2 * 1024 * 1024
#: Most headers on one record.
MAX_HEADERS_PER_RECORD = 32
#: Longest header name, in UTF-8 bytes.
MAX_HEADER_NAME_BYTES = 255
#: Largest header value.
MAX_HEADER_VALUE_BYTES = 4096
#: Most records in one atomic append.
MAX_BATCH_RECORDS = 10_000
#: Largest encoded batch; a frame read back with a larger length is corrupt.
MAX_BATCH_BYTES = 32 * 1024 * 1024
#: Most records one read returns.
MAX_READ_RECORDS = 100_000
#: Longest a read may wait for new records.
MAX_WAIT_MS = 60_000
#: Size at which the embedded log rolls to a new segment file.
SEGMENT_BYTES_DEFAULT = 128 * 1024 * 1024
#: Bytes of batches between two entries of the sparse offset index.
INDEX_INTERVAL_BYTES = 4096
