"""State records with compare-and-swap, and locks with fencing tokens built on them (DESIGN §4).

A state record is `(tenant, namespace, name)` → JSON value, version (from 1, +1 on every write),
created/updated log time and updated_by agent. `state.cas` writes iff the record is at
`expected_version` (0 = must not exist), else `version_conflict` with `current_version`.

Locks share the records' name space: a lock is a record whose value is `{"holder", "expires_at_ms"}`
(both null once released), and its **fencing token is the record's version**. Decisions:

- `lock.acquire` succeeds if the name is absent, released, or its lease expired in log time
  (`expires_at_ms <= log_time_ms`); it writes a new version, so every acquisition gets a token
  strictly larger than every earlier one for that name (release keeps the counter). Held by another
  holder → `lock_held` (with `holder`, `expires_at_ms`). Held by the *same* holder → re-entrant
  re-acquisition: a new lease **and a new token**, fencing the old one (safe when two processes
  share a holder id). A record that is not a lock → `invalid`.
- `lock.renew` extends the lease to `log_time + ttl` and **keeps the token** (the version does not
  change, as with ZooKeeper/etcd keep-alives): a holder's heartbeat never invalidates its own
  in-flight fenced writes. `lock.release` writes a released value (new version).
- renew/release: absent → `not_found`; not a lock → `invalid`; `fencing_token` not the current
  version → `version_conflict` (with `current_version`); released or held by another holder →
  `forbidden`; renew of an expired lease → `forbidden` (re-acquire instead). Release of an expired
  lease by its holder with the current token is allowed (a harmless clean-up).
- `state.cas` works on lock records too (it bumps the version, fencing the holder): an escape hatch
  for operators, not the way agents should take locks.

`current_version` and `write_set` are the hooks `projections.txn` uses to check and apply a
transaction's state reads and writes.
"""

from __future__ import annotations

import builtins
import hashlib
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from commands.wire import LockAcquire, LockRelease, LockRenew, StateCas
from projections.model import ApplyContext, ReadModel, chunked
from projections.outcome import Rejected

__all__ = ["LockView", "StateModel", "StateView"]

_LOCK_KEYS = frozenset(("holder", "expires_at_ms"))
_Space = tuple[str, str]


def _canonical(value: Any) -> bytes:
    """`commands.canonical_json` without its NaN/Infinity scan: the same bytes for validated command values."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class StateView:
    """A state record as read: value, version and provenance."""

    namespace: str
    name: str
    value: Any
    version: int
    created_at_ms: int
    updated_at_ms: int
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class LockView:
    """A lock as read at `now_ms`: its holder, fencing token, lease end and whether it is held."""

    namespace: str
    name: str
    holder: str | None
    fencing_token: int
    expires_at_ms: int | None
    held: bool


class _Record:
    """One mutable state record (slots keep it small and picklable)."""

    __slots__ = ("created_at_ms", "updated_at_ms", "updated_by", "value", "version")

    def __init__(self, value: Any, version: int, at_ms: int, by: str | None) -> None:
        self.value = value
        self.version = version
        self.created_at_ms = at_ms
        self.updated_at_ms = at_ms
        self.updated_by = by

    def __getstate__(self) -> tuple[Any, int, int, int, str | None]:
        return (self.value, self.version, self.created_at_ms, self.updated_at_ms, self.updated_by)

    def __setstate__(self, state: tuple[Any, int, int, int, str | None]) -> None:
        self.value, self.version, self.created_at_ms, self.updated_at_ms, self.updated_by = state


def _lock_value(value: Any) -> tuple[str | None, int | None] | None:
    """`(holder, expires_at_ms)` if `value` is a lock's value (held or released), else None."""
    if type(value) is not dict or value.keys() != _LOCK_KEYS:
        return None
    holder, expires = value["holder"], value["expires_at_ms"]
    if holder is None and expires is None:
        return None, None
    if type(holder) is str and type(expires) is int:
        return holder, expires
    return None


class StateModel(ReadModel):
    """Versioned named state records per `(tenant, namespace)`, with CAS and fenced locks."""

    name: ClassVar[str] = "state"
    command_types: ClassVar[frozenset[str]] = frozenset(("lock.acquire", "lock.release", "lock.renew", "state.cas"))

    def __init__(self) -> None:
        self._records: dict[_Space, dict[str, _Record]] = {}
        self._names: dict[_Space, builtins.list[str]] = {}

    def snapshot_state(self) -> Iterator[Any]:
        """Per (tenant, namespace): `[tenant, namespace, rows]`, rows `[name, value, version, created, updated, by]`."""
        for (tenant, namespace), records in self._records.items():
            rows = [[name, *records[name].__getstate__()] for name in self._names[(tenant, namespace)]]
            for piece in chunked(rows):
                yield [tenant, namespace, piece]

    def restore_state(self, pieces: Iterable[Any]) -> None:
        """Rebuild the records and the sorted names from `snapshot_state` pieces."""
        for tenant, namespace, rows in pieces:
            space = (tenant, namespace)
            records = self._records.setdefault(space, {})
            names = self._names.setdefault(space, [])
            for name, value, version, created, updated, by in rows:
                record = _Record(value, version, created, by)
                record.updated_at_ms = updated
                records[name] = record
                names.append(name)

    # -- apply -------------------------------------------------------------------------------------

    def apply(self, context: ApplyContext) -> dict[str, Any]:
        """Apply a `state.cas` or `lock.*` command; raise `Rejected` having changed nothing."""
        envelope = context.envelope
        command = envelope.command
        if envelope.namespace is None:  # state commands are namespace-scoped: the envelope refuses this
            raise Rejected("invalid", f"{envelope.type} needs a namespace")
        space = (envelope.tenant, envelope.namespace)
        if isinstance(command, StateCas):
            return self._cas(space, command, envelope.agent_id, context.log_time_ms)
        if isinstance(command, LockAcquire):
            return self._acquire(space, command, envelope.agent_id, context.log_time_ms)
        if isinstance(command, LockRenew):
            return self._renew(space, command, envelope.agent_id, context.log_time_ms)
        if isinstance(command, LockRelease):
            return self._release(space, command, envelope.agent_id, context.log_time_ms)
        raise Rejected("invalid", f"{envelope.type} is not a state command")

    def _cas(self, space: _Space, command: StateCas, agent: str | None, now: int) -> dict[str, Any]:
        record = self._records.get(space, {}).get(command.name)
        current = record.version if record is not None else 0
        if command.expected_version != current:
            raise Rejected(
                "version_conflict",
                f"state {command.name!r} is at version {current}, not {command.expected_version}",
                current_version=current,
            )
        version = self._write(space, command.name, command.value, agent, now)
        return {"name": command.name, "version": version}

    def _acquire(self, space: _Space, command: LockAcquire, agent: str | None, now: int) -> dict[str, Any]:
        record = self._records.get(space, {}).get(command.name)
        if record is not None:
            holder, expires = self._lock_of(command.name, record)
            if holder is not None and holder != command.holder and expires is not None and expires > now:
                raise Rejected(
                    "lock_held",
                    f"lock {command.name!r} is held by {holder!r} until {expires}",
                    holder=holder,
                    expires_at_ms=expires,
                )
        expires_at = now + command.ttl_s * 1000
        token = self._write(space, command.name, {"holder": command.holder, "expires_at_ms": expires_at}, agent, now)
        return {"name": command.name, "fencing_token": token, "expires_at_ms": expires_at}

    def _renew(self, space: _Space, command: LockRenew, agent: str | None, now: int) -> dict[str, Any]:
        record = self._held(space, command.name, command.holder, command.fencing_token)
        expires = record.value["expires_at_ms"]
        if expires <= now:
            raise Rejected("forbidden", f"lease of lock {command.name!r} expired at {expires}; acquire it again")
        expires_at = now + command.ttl_s * 1000
        record.value = {"holder": command.holder, "expires_at_ms": expires_at}
        record.updated_at_ms = now
        record.updated_by = agent
        return {"name": command.name, "fencing_token": record.version, "expires_at_ms": expires_at}

    def _release(self, space: _Space, command: LockRelease, agent: str | None, now: int) -> dict[str, Any]:
        self._held(space, command.name, command.holder, command.fencing_token)
        version = self._write(space, command.name, {"holder": None, "expires_at_ms": None}, agent, now)
        return {"name": command.name, "version": version}

    @staticmethod
    def _lock_of(name: str, record: _Record) -> tuple[str | None, int | None]:
        """The `(holder, expires_at_ms)` of a lock record; `invalid` if the record is not a lock."""
        lock = _lock_value(record.value)
        if lock is None:
            raise Rejected("invalid", f"state record {name!r} is not a lock")
        return lock

    def _held(self, space: _Space, name: str, holder: str, token: int) -> _Record:
        """The record of lock `name` if `holder` holds it with fencing `token`; else raise `Rejected`."""
        record = self._records.get(space, {}).get(name)
        if record is None:
            raise Rejected("not_found", f"no lock {name!r}")
        current_holder, _ = self._lock_of(name, record)
        if token != record.version:
            raise Rejected(
                "version_conflict",
                f"fencing token {token} of lock {name!r} is stale (current {record.version})",
                current_version=record.version,
            )
        if current_holder != holder:
            raise Rejected("forbidden", f"lock {name!r} is not held by {holder!r}")
        return record

    def _write(self, space: _Space, name: str, value: Any, agent: str | None, now: int) -> int:
        """Set `name` to `value` unconditionally; return its new version."""
        records = self._records.get(space)
        if records is None:
            records = self._records[space] = {}
            self._names[space] = []
        record = records.get(name)
        if record is None:
            records[name] = _Record(value, 1, now, agent)
            insort(self._names[space], name)
            return 1
        record.value = value
        record.version += 1
        record.updated_at_ms = now
        record.updated_by = agent
        return record.version

    # -- transaction hooks -------------------------------------------------------------------------

    def current_version(self, tenant: str, namespace: str, name: str, log_time_ms: int) -> int:
        """The version of state `name` at log time `log_time_ms` (0 if absent); state records never expire."""
        record = self._records.get((tenant, namespace), {}).get(name)
        return record.version if record is not None else 0

    def write_set(
        self, tenant: str, namespace: str, name: str, value: Any, agent_id: str | None, log_time_ms: int
    ) -> dict[str, Any]:
        """Set state `name` to `value` unconditionally (version + 1), for a committing transaction."""
        version = self._write((tenant, namespace), name, value, agent_id, log_time_ms)
        return {"name": name, "version": version}

    # -- reads -------------------------------------------------------------------------------------

    def get(self, tenant: str, namespace: str, name: str) -> StateView | None:
        """The state record `name` of `tenant`'s `namespace`, or None."""
        record = self._records.get((tenant, namespace), {}).get(name)
        return None if record is None else _view(namespace, name, record)

    def list(
        self, tenant: str, namespace: str, prefix: str = "", after: str | None = None, limit: int = 100
    ) -> builtins.list[StateView]:
        """Up to `limit` records whose names start with `prefix`, after the name `after`, sorted by name."""
        names = self._names.get((tenant, namespace))
        if not names or limit <= 0:
            return []
        start = bisect_left(names, prefix)
        if after is not None:
            start = max(start, bisect_right(names, after))
        records = self._records[(tenant, namespace)]
        found: builtins.list[StateView] = []
        for index in range(start, min(start + limit, len(names))):
            name = names[index]
            if not name.startswith(prefix):
                break
            found.append(_view(namespace, name, records[name]))
        return found

    def lock(self, tenant: str, namespace: str, name: str, now_ms: int) -> LockView | None:
        """Lock `name` as seen at the reader's clock `now_ms`, or None if absent or not a lock."""
        record = self._records.get((tenant, namespace), {}).get(name)
        lock = None if record is None else _lock_value(record.value)
        if record is None or lock is None:
            return None
        holder, expires = lock
        held = holder is not None and expires is not None and expires > now_ms
        return LockView(namespace, name, holder, record.version, expires, held)

    def digest(self) -> str:
        """Hex SHA-256 over every record, sorted by (tenant, namespace, name)."""
        hasher = hashlib.sha256(b"agentlog.state/1\n")
        for space in sorted(self._records):
            records = self._records[space]
            for name in self._names[space]:
                record = records[name]
                row = [*space, name, record.version, record.value]
                row += [record.created_at_ms, record.updated_at_ms, record.updated_by]
                hasher.update(_canonical(row))
                hasher.update(b"\n")
        return hasher.hexdigest()


def _view(namespace: str, name: str, record: _Record) -> StateView:
    """The frozen view of `record`."""
    return StateView(
        namespace, name, record.value, record.version, record.created_at_ms, record.updated_at_ms, record.updated_by
    )
