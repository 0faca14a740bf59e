"""The launcher's one error type and the log tails it carries as evidence."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["KafkaLauncherError", "LOG_TAIL_LINES", "tail_file", "tail_text"]

LOG_TAIL_LINES = 40


class KafkaLauncherError(RuntimeError):
    """Raised when the jars cannot be fetched or a broker cannot be started, with the evidence."""


def tail_text(text: str, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of ``text``."""
    return "\n".join(text.splitlines()[-lines:])


def tail_file(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """Return the last ``lines`` lines of the file's final 64 KiB, or a note saying why it cannot be read."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return tail_text(data.decode("utf-8", errors="replace"), lines)
