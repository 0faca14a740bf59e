"""The envelope: identity comes from the caller, never the body; run and namespace defaults; ids."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from commands import (
    DEFAULT_NAMESPACE,
    DEFAULT_RUN_ID,
    Caller,
    CommandError,
    CommandRequest,
    Envelope,
    EventAppend,
    KvExpire,
    KvPut,
    RunBegin,
    RunEnd,
    TraceRecord,
    Txn,
    TxnKvPut,
    new_id,
    stamp,
    uuid7_timestamp_ms,
)
from commands.ids import UuidV7Generator

CALLER = Caller("acme", agent_id="agent-1", tool_id="tool.fetch")
PUT = {"type": "kv.put", "key": "k", "value": {"a": 1}}


@pytest.mark.parametrize("field", ["tenant", "agent_id", "tool_id"])
def test_body_cannot_carry_identity(field: str) -> None:
    with pytest.raises(ValidationError) as info:
        CommandRequest.model_validate({"command": PUT, field: "mallory"})
    assert info.value.errors()[0]["type"] == "extra_forbidden"
    with pytest.raises(ValidationError):
        CommandRequest.model_validate({"command": {**PUT, field: "mallory"}})


def test_identity_is_stamped_from_the_caller() -> None:
    request = CommandRequest.model_validate_json(b'{"command": {"type": "kv.put", "key": "k", "value": 1}}')
    envelope = request.stamp(CALLER)
    assert (envelope.tenant, envelope.agent_id, envelope.tool_id) == ("acme", "agent-1", "tool.fetch")
    assert "tenant" not in CommandRequest.model_json_schema()["properties"]


def test_body_cannot_send_internal_commands() -> None:
    with pytest.raises(ValidationError):
        CommandRequest.model_validate({"command": {"type": "kv.expire", "key": "k", "expected_version": 1}})
    # the server's own processors may
    envelope = stamp(KvExpire(key="k", expected_version=3), Caller("acme"), namespace="ns")
    assert envelope.type == "kv.expire"


def test_request_fields_pass_through() -> None:
    request = CommandRequest.model_validate(
        {
            "command": PUT,
            "command_id": "my-id-1",
            "run_id": "run-1",
            "namespace": "cache:api",
            "issued_at": 1_700_000_000_000,
        }
    )
    envelope = request.stamp(CALLER)
    assert (envelope.command_id, envelope.run_id, envelope.namespace) == ("my-id-1", "run-1", "cache:api")
    assert envelope.issued_at == 1700000000000
    assert envelope.type == "kv.put"
    assert envelope.scope == "namespace"


def test_defaults_run_and_namespace_and_mints_command_id() -> None:
    envelope = stamp(KvPut(key="k", value=1), CALLER)
    assert envelope.run_id == DEFAULT_RUN_ID == "default"
    assert envelope.namespace == DEFAULT_NAMESPACE == "default"
    assert uuid.UUID(envelope.command_id).version == 7
    assert stamp(KvPut(key="k", value=1), CALLER, default_run="agent-1:default").run_id == "agent-1:default"


def test_require_run_refuses_writes_without_a_run() -> None:
    with pytest.raises(CommandError) as info:
        stamp(KvPut(key="k", value=1), CALLER, require_run=True)
    assert info.value.code == "run_required"
    with pytest.raises(CommandError):
        CommandRequest(command=EventAppend(event_type="note")).stamp(CALLER, require_run=True)
    assert stamp(KvPut(key="k", value=1), CALLER, require_run=True, run_id="r").run_id == "r"


def test_run_begin_mints_a_run_id_and_run_end_needs_one() -> None:
    minted = stamp(RunBegin(name="nightly"), CALLER, require_run=True)
    assert uuid.UUID(minted.run_id).version == 7
    assert minted.namespace is None
    with pytest.raises(CommandError) as info:
        stamp(RunEnd(status="succeeded"), CALLER)
    assert info.value.code == "invalid"
    assert stamp(RunEnd(status="failed", result={"error": "x"}), CALLER, run_id="r").run_id == "r"


def test_run_commands_take_no_namespace() -> None:
    with pytest.raises(CommandError) as info:
        stamp(TraceRecord(trace_id="t", kind="citation"), CALLER, run_id="r", namespace="ns")
    assert info.value.code == "invalid"


def test_envelope_validates_scope_itself() -> None:
    base: dict[str, Any] = {"command_id": "c", "tenant": "t", "run_id": "r"}
    with pytest.raises(ValidationError):
        Envelope.model_validate({**base, "command": PUT})  # namespaced without namespace
    with pytest.raises(ValidationError):
        Envelope.model_validate({**base, "namespace": "n", "command": {"type": "run.begin"}})
    assert Envelope.model_validate({**base, "namespace": "n", "command": PUT}).namespace == "n"


def test_txn_may_not_write_one_record_twice() -> None:
    twice = Txn(writes=[TxnKvPut(key="a", value=1), TxnKvPut(namespace="ns", key="a", value=2)])
    with pytest.raises(CommandError) as info:
        stamp(twice, CALLER, namespace="ns")
    assert info.value.code == "invalid"
    assert stamp(twice, CALLER, namespace="other").namespace == "other"  # two different records there


def test_envelopes_are_immutable() -> None:
    envelope = stamp(KvPut(key="k", value=1), CALLER)
    with pytest.raises(ValidationError):
        envelope.tenant = "other"


# ------------------------------------------------------------------------------------ ids


def test_new_ids_are_uuid7_and_increase() -> None:
    ids = [new_id() for _ in range(2000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def test_uuid7_generator_counts_within_a_millisecond_and_overflows_forward() -> None:
    generate = UuidV7Generator(clock_ms=lambda: 1_700_000_000_000, randbits=lambda bits: 0)
    values = [generate() for _ in range(5000)]
    assert values == sorted(values)
    assert len(set(values)) == len(values)
    assert uuid7_timestamp_ms(values[0]) == 1_700_000_000_000
    assert uuid7_timestamp_ms(values[-1]) == 1_700_000_000_001  # 4096 per ms, then the clock moves on


def test_uuid7_generator_survives_a_clock_going_back() -> None:
    times = iter([5_000, 4_000, 4_000, 6_000])
    generate = UuidV7Generator(clock_ms=lambda: next(times))
    values = [generate() for _ in range(4)]
    assert values == sorted(values)
    assert [uuid7_timestamp_ms(v) for v in values] == [5_000, 5_000, 5_000, 6_000]


def test_uuid7_timestamp_refuses_other_versions() -> None:
    with pytest.raises(ValueError, match="UUIDv7"):
        uuid7_timestamp_ms(str(uuid.uuid4()))
