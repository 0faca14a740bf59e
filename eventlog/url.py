"""The one place a backend is chosen: from a URL (`file:///path`, `memory://`, `kafka://host:port[,...]`)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from eventlog.base import EventLog
from eventlog.errors import InvalidRequestError
from eventlog.fsync import FsyncPolicy

__all__ = ["DEFAULT_LOG_URL", "open_log"]

#: The backend used when none is configured: embedded files under ./agentlog-data.
DEFAULT_LOG_URL = "file://./agentlog-data"


async def open_log(url: str = DEFAULT_LOG_URL, *, fsync: str | FsyncPolicy = "always") -> EventLog:
    """Open the log a URL names; `fsync` applies to the embedded backend."""
    parts = urlsplit(url)
    if parts.scheme == "memory":
        from eventlog.memory import MemoryLog

        return MemoryLog()
    if parts.scheme == "file":
        from eventlog.file import FileLog

        raw = unquote(parts.netloc + parts.path)
        if not raw:
            raise InvalidRequestError(f"log URL {url!r} names no directory")
        return await FileLog.open(Path(raw), fsync=FsyncPolicy.parse(fsync))
    if parts.scheme == "kafka":
        from eventlog.kafka import KafkaLog  # type: ignore[import-not-found,unused-ignore]

        servers = parts.netloc
        if not servers:
            raise InvalidRequestError(f"log URL {url!r} names no bootstrap servers")
        log: EventLog = await KafkaLog.open(servers)
        return log
    raise InvalidRequestError(f"log URL {url!r}: scheme must be file, memory or kafka")
