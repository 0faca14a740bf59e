"""The embedded, file-backed log: segment files of checksummed batches with group commit."""

from eventlog.file.log import FileLog
from eventlog.file.partition import Disk
from eventlog.file.verify import VerifyReport, verify_directory

__all__ = ["Disk", "FileLog", "VerifyReport", "verify_directory"]
