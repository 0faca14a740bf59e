"""Snapshots of an `EngineState`: written atomically, versioned, checksummed, carrying cut and digests.

    <dir>/<topic>/snapshot-<total offset, 20 digits>.snap
    magic b"ALSNAP1\n" | header length (u32 LE) | header JSON | body (pickle of the state)

The header names the format version, the code version, the cut, the digests at that cut and the
SHA-256 of the body. Start-up loads the newest snapshot that checks out, then replays the tail.
Snapshots are local files this node wrote; they are never read from untrusted sources.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import pickle
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from projections.engine import EngineState

__all__ = ["SNAPSHOT_FORMAT", "SnapshotError", "SnapshotInfo", "list_snapshots", "load_snapshot", "write_snapshot"]

SNAPSHOT_FORMAT = 1
_MAGIC = b"ALSNAP1\n"
_LENGTH = struct.Struct("<I")
#: Snapshots kept per topic; older ones are removed after a new one is written.
SNAPSHOTS_KEPT = 3
#: Bumped whenever a model's state layout or apply semantics change.
CODE_VERSION = "3"


class SnapshotError(Exception):
    """A snapshot fails its checks (the caller falls back to an older one or to zero)."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A snapshot file and the cut it holds."""

    path: Path
    cut: tuple[int, ...]
    digests: dict[str, str]


def _directory(root: Path, topic: str) -> Path:
    return root / topic


def write_snapshot(root: Path, topic: str, state: EngineState) -> SnapshotInfo:
    """Write `state` durably (temp file, fsync, rename, fsync directory); prune old snapshots."""
    directory = _directory(root, topic)
    directory.mkdir(parents=True, exist_ok=True)
    with _collector_paused():
        body = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    digests = state.digests()
    header = json.dumps(
        {
            "format": SNAPSHOT_FORMAT,
            "code_version": CODE_VERSION,
            "topic": topic,
            "cut": state.applied,
            "digests": digests,
            "body_sha256": hashlib.sha256(body).hexdigest(),
        },
        sort_keys=True,
    ).encode()
    path = directory / f"snapshot-{sum(state.applied):020d}.snap"
    temporary = path.with_suffix(".tmp")
    with temporary.open("wb") as file:
        file.write(_MAGIC + _LENGTH.pack(len(header)) + header)
        file.write(body)
        file.flush()
        os.fsync(file.fileno())
    os.rename(temporary, path)
    _sync_directory(directory)
    for old in list_snapshots(root, topic)[SNAPSHOTS_KEPT:]:
        old.path.unlink(missing_ok=True)
    return SnapshotInfo(path, tuple(state.applied), digests)


def list_snapshots(root: Path, topic: str) -> list[SnapshotInfo]:
    """Readable snapshot headers of `topic`, newest (largest cut) first; unreadable files are skipped."""
    directory = _directory(root, topic)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.glob("snapshot-*.snap"):
        try:
            header, _ = _read_header(path)
        except SnapshotError:
            continue
        found.append(SnapshotInfo(path, tuple(header["cut"]), dict(header["digests"])))
    return sorted(found, key=lambda info: (sum(info.cut), info.path.name), reverse=True)


def load_snapshot(info: SnapshotInfo, *, verify_digests: bool = False) -> EngineState:
    """Load a snapshot, checking its body checksum; `verify_digests` also recomputes every digest.

    The checksum proves the bytes are the ones written; recomputing digests (seconds on a large
    state) proves the code still folds them the same way, which `agentlog verify` does on demand.
    """
    header, body = _read_header(info.path, with_body=True)
    if hashlib.sha256(body).hexdigest() != header["body_sha256"]:
        raise SnapshotError(f"{info.path}: body checksum mismatch")
    with _collector_paused():
        state = pickle.loads(body)
    if not isinstance(state, EngineState):
        raise SnapshotError(f"{info.path}: body is not an engine state")
    if verify_digests and state.digests() != header["digests"]:
        raise SnapshotError(f"{info.path}: digests of the loaded state differ from the recorded ones")
    return state


def _read_header(path: Path, *, with_body: bool = False) -> tuple[dict[str, Any], bytes]:
    try:
        with path.open("rb") as file:
            data = file.read() if with_body else file.read(64 * 1024)
        if not data.startswith(_MAGIC):
            raise SnapshotError(f"{path}: not a snapshot")
        (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
        start = len(_MAGIC) + _LENGTH.size
        header = json.loads(data[start : start + length])
    except (OSError, ValueError, struct.error) as error:
        raise SnapshotError(f"{path}: unreadable: {error}") from error
    if not isinstance(header, dict) or header.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path}: unknown snapshot format")
    if header.get("code_version") != CODE_VERSION:
        raise SnapshotError(f"{path}: written by code version {header.get('code_version')}, this is {CODE_VERSION}")
    return header, data[start + length :]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: unpickling a large state triggers it over and over
    (measured: 6.8 s with it, 3.5 s without, for a 115 MiB snapshot)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
