"""Pausing Python's cyclic garbage collector around bulk work (rebuilds, snapshot writes and loads).

A full collection walks every live object while holding the interpreter lock: on a state of
millions of objects that is a stall of hundreds of milliseconds for the event loop, repeated as a
rebuild or a snapshot allocates. The read models hold few reference cycles, so pausing the
collector for the length of such work costs little memory. Pauses nest and may come from several
threads; the collector runs again when the last one ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["collector_paused", "freeze_state"]

_lock = threading.Lock()
_pauses = 0
_was_enabled = True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Keep the cyclic collector off until the block (and every other pause) ends."""
    global _pauses, _was_enabled
    with _lock:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _lock:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def freeze_state() -> None:
    """Move every object alive now (a freshly restored state) out of the collector's sight (`gc.freeze`)."""
    gc.collect()
    gc.freeze()
