"""The in-memory twin passes the log contract."""

from __future__ import annotations

from eventlog.base import EventLog
from eventlog.memory import MemoryLog
from tests.eventlog.log_contract import EventLogContract


class TestMemoryLog(EventLogContract):
    async def open_log(self) -> EventLog:
        return MemoryLog()
