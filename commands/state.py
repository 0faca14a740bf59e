"""State and lock commands: compare-and-swap on named values, and locks with fencing tokens.

State names follow key syntax and live in the envelope's namespace. A lock's fencing token is the
version of its state record: `lock.acquire` answers with it, `renew` and `release` must present it.
"""

from __future__ import annotations

from typing import Literal

from commands.fields import Id, JsonData, Key, NonNegative, Positive, ScopedCommand, TtlSeconds

__all__ = ["LockAcquire", "LockRelease", "LockRenew", "StateCas"]


class StateCas(ScopedCommand):
    """`state.cas`: set `name` to `value` if it is at `expected_version` (0 = must not exist)."""

    type: Literal["state.cas"] = "state.cas"
    name: Key
    expected_version: NonNegative
    value: JsonData


class LockAcquire(ScopedCommand):
    """`lock.acquire`: take lock `name` for `holder` for `ttl_s` seconds if it is free or expired."""

    type: Literal["lock.acquire"] = "lock.acquire"
    name: Key
    holder: Id
    ttl_s: TtlSeconds


class LockRenew(ScopedCommand):
    """`lock.renew`: extend `holder`'s lock `name` by `ttl_s` from now, if `fencing_token` is still current."""

    type: Literal["lock.renew"] = "lock.renew"
    name: Key
    holder: Id
    fencing_token: Positive
    ttl_s: TtlSeconds


class LockRelease(ScopedCommand):
    """`lock.release`: free `holder`'s lock `name`, if `fencing_token` is still current."""

    type: Literal["lock.release"] = "lock.release"
    name: Key
    holder: Id
    fencing_token: Positive
