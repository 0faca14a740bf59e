"""TTL with a controlled clock: expiry is decided in log time, reads hide by the reader's clock, and the
sweeper's purge is itself a command in the log, so a rebuild reproduces it."""

from __future__ import annotations

import pytest

from commands import Caller, KvPut, stamp
from eventlog.memory import MemoryLog
from projections.catalog import new_state
from projections.engine import Engine
from projections.records import RecordsModel
from query_api.node.node import Node
from query_api.settings import Settings

pytestmark = pytest.mark.anyio


class Clock:
    """A log clock the test moves by hand."""

    def __init__(self, now_ms: int) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def records_of(engine: Engine) -> RecordsModel:
    model = engine.state.model("records")
    assert isinstance(model, RecordsModel)
    return model


async def test_expiry_in_log_time_and_a_sweep_that_replays() -> None:
    clock = Clock(1_000_000)
    log = MemoryLog(clock=clock)
    settings = Settings.model_validate(
        {"log": "memory://", "partitions": 4, "sweep_interval_ms": 0, "snapshot_every": 0}
    )
    await log.create_topic(settings.topic, 4)
    engine = Engine(log, settings.topic, new_state(4))
    engine.start()
    node = Node(settings, log, engine)
    caller = Caller(tenant="t", agent_id="a")
    put = await node.execute(stamp(KvPut(key="session", value="abc", ttl_s=5), caller, namespace="cache"))
    await node.execute(stamp(KvPut(key="forever", value=1), caller, namespace="cache"))
    assert put.outcome.result["expires_at_ms"] == 1_005_000

    records = records_of(engine)
    assert records.get("t", "cache", "session", now_ms=1_004_999) is not None
    assert records.get("t", "cache", "session", now_ms=1_005_000) is None
    assert await node.sweep_once(now_ms=1_004_999) == 0

    clock.now_ms = 1_010_000
    assert await node.sweep_once(now_ms=1_010_000) == 1
    end = await log.end_offsets(settings.topic)
    assert await engine.wait_for(dict(enumerate(end)), 10)
    assert records.expired(now_ms=2_000_000, limit=10) == []
    assert [v.key for v in records.list_keys("t", "cache", "", None, 10, 1_010_000)[0]] == ["forever"]

    rebuilt = Engine(log, settings.topic, new_state(4))
    await rebuilt.catch_up()
    assert rebuilt.state.digests() == engine.state.digests()
    await node.stop()


async def test_a_put_that_lands_after_expiry_in_log_time_sees_the_key_absent() -> None:
    clock = Clock(0)
    log = MemoryLog(clock=clock)
    await log.create_topic("main", 1)
    engine = Engine(log, "main", new_state(1))
    settings = Settings.model_validate(
        {"log": "memory://", "partitions": 1, "sweep_interval_ms": 0, "snapshot_every": 0}
    )
    engine.start()
    node = Node(settings, log, engine)
    caller = Caller(tenant="t")
    await node.execute(stamp(KvPut(key="k", value=1, ttl_s=1), caller, namespace="n"))
    clock.now_ms = 1_000
    again = await node.execute(stamp(KvPut(key="k", value=2, if_version=0), caller, namespace="n"))
    assert again.outcome.status == "applied"
    assert again.outcome.result["version"] == 1
    await node.stop()
