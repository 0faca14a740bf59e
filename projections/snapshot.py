"""Snapshots of an `EngineState`: a versioned format of our own (msgpack rows, `.npy` arrays), never pickle.

    <dir>/<topic>/snapshot-<total offset, 20 digits>/
        manifest.json    format and code version, topic, cut, digests, models, and per file its
                         size and SHA-256
        state.bin        frames: u32 LE length | msgpack `[section, piece]`; sections are `engine`
                         (cut, undecodable counts), `outcomes` (per partition, in age order) and one
                         per read model (`ReadModel.snapshot_state` pieces)
        array-NNNNNN.npy the numpy arrays the pieces refer to (msgpack extension 1 = array index)

A snapshot is written into a temporary directory, every file fsynced, then renamed into place and
the parent directory fsynced. Writing only reads the state, so it may run in a worker thread while
the state is frozen (`Node.snapshot` pauses applying, not serving). Each piece is encoded by its own
call, so the thread gives the interpreter back to the event loop between pieces.

Loading checks the format, the code version, each file's size and checksum and the set of models;
any failure raises `SnapshotError` and the caller falls back to an older snapshot or to zero.
Snapshots of the old pickle format (`snapshot-*.snap` files) are never loaded: they are skipped
with a warning, so the node rebuilds from zero.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import numpy as np

from projections.collector import collector_paused
from projections.engine import OUTCOME_KEYING, EngineState
from projections.outcome import Outcome

__all__ = ["SNAPSHOT_FORMAT", "SnapshotError", "SnapshotInfo", "list_snapshots", "load_snapshot", "write_snapshot"]

logger = logging.getLogger("agentlog.snapshot")

SNAPSHOT_FORMAT = 2
#: Snapshots kept per topic; older ones are removed after a new one is written.
SNAPSHOTS_KEPT = 3
#: Bumped whenever a model's state layout or apply semantics change.
CODE_VERSION = "4"
#: Outcome rows one `outcomes` piece holds.
OUTCOME_PIECE_ROWS = 5_000

_MANIFEST = "manifest.json"
_STATE = "state.bin"
_FRAME = struct.Struct("<I")
_ARRAY_EXT = 1
_ENGINE = "engine"
_OUTCOMES = "outcomes"


class SnapshotError(Exception):
    """A snapshot fails its checks (the caller falls back to an older one or to zero)."""


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """A snapshot directory and the cut it holds."""

    path: Path
    cut: tuple[int, ...]
    digests: dict[str, str]


def _directory(root: Path, topic: str) -> Path:
    return root / topic


# -- writing ----------------------------------------------------------------------------------------


class _HashingFile:
    """A file opened for writing that hashes and counts what goes through it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: BinaryIO = path.open("wb")
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.hasher.update(data)
        self.size += len(data)

    def close(self) -> dict[str, Any]:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return {"bytes": self.size, "sha256": self.hasher.hexdigest()}


def _sections(state: EngineState) -> Iterator[tuple[str, Any]]:
    """Every `[section, piece]` of `state`, in file order."""
    yield _ENGINE, {
        "applied": list(state.applied),
        "undecodable": list(state.undecodable),
        "chain": list(state.chain),
        "outcome_keying": state.outcome_keying,
    }
    for partition, remembered in enumerate(state.outcomes):
        rows = [[key, o.status, o.result, o.reason, o.detail, o.fingerprint] for key, o in remembered.items()]
        for start in range(0, len(rows), OUTCOME_PIECE_ROWS):
            yield _OUTCOMES, [partition, rows[start : start + OUTCOME_PIECE_ROWS]]
    for model in state.models:
        for piece in model.snapshot_state():
            yield model.name, piece


def write_snapshot(root: Path, topic: str, state: EngineState) -> SnapshotInfo:
    """Write `state` durably (temporary directory, fsyncs, rename, fsync parent); prune old snapshots.

    Only reads `state`; nothing may apply to it meanwhile (run it on the loop, or in a worker thread
    while the engine is paused). The garbage collector is paused meanwhile (see `projections.collector`).
    """
    with collector_paused():
        return _write(root, topic, state)


def _write(root: Path, topic: str, state: EngineState) -> SnapshotInfo:
    directory = _directory(root, topic)
    directory.mkdir(parents=True, exist_ok=True)
    cut = list(state.applied)
    path = directory / f"snapshot-{sum(cut):020d}"
    temporary = directory / f".{path.name}.tmp-{os.getpid()}"
    if temporary.exists():
        shutil.rmtree(temporary)
    temporary.mkdir()
    files: dict[str, dict[str, Any]] = {}
    arrays: list[np.ndarray[Any, Any]] = []

    def encode_array(obj: Any) -> Any:
        if isinstance(obj, np.ndarray):
            if obj.dtype.hasobject:
                raise TypeError("object arrays are not snapshotted")
            arrays.append(obj)
            return msgspec.msgpack.Ext(_ARRAY_EXT, _FRAME.pack(len(arrays) - 1))
        raise TypeError(f"{type(obj).__name__} is not snapshot data")

    encoder = msgspec.msgpack.Encoder(enc_hook=encode_array)
    written = 0
    body = _HashingFile(temporary / _STATE)
    try:
        for section, piece in _sections(state):
            frame = encoder.encode([section, piece])
            body.write(_FRAME.pack(len(frame)))
            body.write(frame)
            while written < len(arrays):
                name = f"array-{written:06d}.npy"
                array_file = _HashingFile(temporary / name)
                np.save(array_file, np.ascontiguousarray(arrays[written]), allow_pickle=False)
                files[name] = array_file.close()
                written += 1
        files[_STATE] = body.close()
        digests = state.digests()
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "code_version": CODE_VERSION,
            "topic": topic,
            "cut": cut,
            "digests": digests,
            "models": [model.name for model in state.models],
            "files": files,
        }
        with (temporary / _MANIFEST).open("wb") as file:
            file.write(json.dumps(manifest, sort_keys=True, indent=1).encode())
            file.flush()
            os.fsync(file.fileno())
        _sync_directory(temporary)
        if path.exists():  # the same cut again: same state, replace it
            shutil.rmtree(path)
        os.rename(temporary, path)
        _sync_directory(directory)
    except BaseException:
        if not body.file.closed:
            body.file.close()
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    for old in list_snapshots(root, topic)[SNAPSHOTS_KEPT:]:
        shutil.rmtree(old.path, ignore_errors=True)
    return SnapshotInfo(path, tuple(cut), digests)


# -- listing and loading ----------------------------------------------------------------------------


def list_snapshots(root: Path, topic: str) -> list[SnapshotInfo]:
    """Readable snapshot manifests of `topic`, newest (largest cut) first; others are skipped.

    Files of the old pickle format are skipped with a warning: they are never unpickled.
    """
    directory = _directory(root, topic)
    if not directory.is_dir():
        return []
    for legacy in sorted(directory.glob("snapshot-*.snap")):
        logger.warning("ignoring snapshot %s: the pickle format is no longer loaded (rebuilding instead)", legacy)
    found = []
    for path in directory.glob("snapshot-*"):
        if not path.is_dir():
            continue
        try:
            manifest = _read_manifest(path)
        except SnapshotError as error:
            logger.warning("ignoring snapshot %s: %s", path, error)
            continue
        found.append(SnapshotInfo(path, tuple(manifest["cut"]), dict(manifest["digests"])))
    return sorted(found, key=lambda info: (sum(info.cut), info.path.name), reverse=True)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((path / _MANIFEST).read_bytes())
    except (OSError, ValueError) as error:
        raise SnapshotError(f"{path}: unreadable manifest: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{path}: unknown snapshot format")
    if manifest.get("code_version") != CODE_VERSION:
        raise SnapshotError(f"{path}: written by code version {manifest.get('code_version')}, this is {CODE_VERSION}")
    cut, digests, files = manifest.get("cut"), manifest.get("digests"), manifest.get("files")
    if not (isinstance(cut, list) and all(type(offset) is int and offset >= 0 for offset in cut)):
        raise SnapshotError(f"{path}: manifest has no valid cut")
    if not isinstance(digests, dict) or not isinstance(files, dict) or _STATE not in files:
        raise SnapshotError(f"{path}: manifest lacks digests or files")
    return manifest


def _checked(path: Path, expected: Any) -> None:
    """Raise SnapshotError unless the file at `path` has the size and SHA-256 the manifest records."""
    if not isinstance(expected, dict):
        raise SnapshotError(f"{path}: no checksum recorded")
    try:
        with path.open("rb") as file:
            size = os.fstat(file.fileno()).st_size
            if size != expected.get("bytes"):
                raise SnapshotError(f"{path}: {size} bytes, the manifest says {expected.get('bytes')}")
            digest = hashlib.file_digest(file, "sha256").hexdigest()
    except OSError as error:
        raise SnapshotError(f"{path}: unreadable: {error}") from error
    if digest != expected.get("sha256"):
        raise SnapshotError(f"{path}: checksum mismatch")


def _frames(data: memoryview) -> Iterator[memoryview]:
    offset = 0
    while offset < len(data):
        if offset + _FRAME.size > len(data):
            raise SnapshotError("state file ends inside a frame header")
        (length,) = _FRAME.unpack_from(data, offset)
        offset += _FRAME.size
        if offset + length > len(data):
            raise SnapshotError("state file ends inside a frame")
        yield data[offset : offset + length]
        offset += length


def load_snapshot(info: SnapshotInfo, *, verify_digests: bool = False) -> EngineState:
    """Load a snapshot, checking every file's checksum; `verify_digests` also recomputes every digest.

    The checksums prove the bytes are the ones written; recomputing digests (seconds on a large
    state) proves the code still folds them the same way, which `agentlog verify` does on demand.
    """
    with collector_paused():
        return _load(info, verify_digests)


def _load(info: SnapshotInfo, verify_digests: bool) -> EngineState:
    from projections.catalog import new_state  # the catalog imports every model; only loading needs it

    manifest = _read_manifest(info.path)
    files: dict[str, Any] = manifest["files"]
    for name, expected in sorted(files.items()):
        if "/" in name or name.startswith("."):
            raise SnapshotError(f"{info.path}: bad file name {name!r} in the manifest")
        _checked(info.path / name, expected)
    state = new_state(len(manifest["cut"]))
    names = [model.name for model in state.models]
    if manifest.get("models") != names:
        raise SnapshotError(f"{info.path}: holds models {manifest.get('models')}, this code runs {names}")
    try:
        _restore(info.path, state, _array_loader(info.path, files))
    except SnapshotError:
        raise
    except Exception as error:  # any decoding or layout failure: skip the snapshot, never crash
        raise SnapshotError(f"{info.path}: does not load: {type(error).__name__}: {error}") from error
    if list(state.applied) != manifest["cut"]:
        raise SnapshotError(f"{info.path}: state cut {state.applied} differs from the manifest's")
    if verify_digests and state.digests() != manifest["digests"]:
        raise SnapshotError(f"{info.path}: digests of the loaded state differ from the recorded ones")
    return state


def _array_loader(path: Path, files: dict[str, Any]) -> Callable[[int, memoryview], Any]:
    def load_array(code: int, data: memoryview) -> Any:
        if code != _ARRAY_EXT or len(data) != _FRAME.size:
            raise SnapshotError(f"{path}: unknown msgpack extension {code}")
        (index,) = _FRAME.unpack(data)
        name = f"array-{index:06d}.npy"
        if name not in files:
            raise SnapshotError(f"{path}: refers to array {name}, which the manifest does not list")
        return np.load(path / name, mmap_mode="r", allow_pickle=False)

    return load_array


def _restore(path: Path, state: EngineState, load_array: Callable[[int, memoryview], Any]) -> None:
    """Decode `state.bin` of `path` into the fresh `state`, section by section."""
    decoder = msgspec.msgpack.Decoder(ext_hook=load_array)
    models = {model.name: model for model in state.models}
    pieces: dict[str, list[Any]] = {name: [] for name in models}
    data = memoryview((path / _STATE).read_bytes())
    for frame in _frames(data):
        section, piece = decoder.decode(frame)
        if section == _ENGINE:
            if piece.get("outcome_keying") != OUTCOME_KEYING:
                keying = piece.get("outcome_keying")
                raise SnapshotError(f"{path}: outcomes keyed as {keying!r}, not {OUTCOME_KEYING!r}")
            state.applied[:] = piece["applied"]
            state.undecodable[:] = piece["undecodable"]
            state.chain[:] = [bytes(head) for head in piece["chain"]]
        elif section == _OUTCOMES:
            partition, rows = piece
            remembered: OrderedDict[str, Outcome] = state.outcomes[partition]
            for key, status, result, reason, detail, fingerprint in rows:
                remembered[key] = Outcome(status, result, reason, detail, fingerprint)
        elif section in pieces:
            pieces[section].append(piece)
        else:
            raise SnapshotError(f"{path}: unknown section {section!r}")
    if len(state.applied) != len(state.outcomes):
        raise SnapshotError(f"{path}: engine section has the wrong number of partitions")
    for name, model in models.items():
        model.restore_state(pieces[name])


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
