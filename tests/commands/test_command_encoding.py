"""Encoding: every command type round-trips exactly; canonical JSON; embeddings bit-exact; decode checks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from commands import (
    COMMAND_TYPES,
    Caller,
    CommandError,
    Envelope,
    KvPut,
    VectorUpsert,
    canonical_json,
    command_fingerprint,
    decode,
    decode_fingerprinted,
    decode_record,
    embedding_bytes,
    encode,
    encode_message,
    loads_json,
    parse_command,
    stamp,
)
from commands.vectors import embedding_to_base64
from eventlog.records import Record
from tests.commands.strategies import COMMANDS, embeddings, envelope_namespaces, ids, json_values

CALLER = Caller("acme", agent_id="agent-1", tool_id="tool.search")
FEW = settings(max_examples=40, database=None, deadline=None)


def _envelope(command: Any, run_id: str | None = None, namespace: str | None = "default") -> Envelope:
    return stamp(command, CALLER, run_id=run_id, namespace=namespace if command.scope == "namespace" else None)


@pytest.mark.parametrize("type_name", sorted(COMMAND_TYPES))
def test_every_command_type_round_trips(type_name: str) -> None:
    @FEW
    @given(
        command=COMMANDS[type_name],
        run_id=ids,
        namespace=envelope_namespaces,
        issued_at=st.none() | st.integers(0, 2**63 - 1),
    )
    def check(command: Any, run_id: str, namespace: str, issued_at: int | None) -> None:
        assert command.type == type_name
        scoped = namespace if command.scope == "namespace" else None
        envelope = stamp(command, CALLER, run_id=run_id, namespace=scoped, issued_at=issued_at)
        data = encode(envelope)
        back = decode(data)
        assert back == envelope
        assert type(back.command) is type(command)
        assert encode(back) == data  # encoding is a function of the envelope: re-encoding is byte-identical

    check()


def test_encoded_value_is_canonical_json_without_nulls() -> None:
    envelope = stamp(KvPut(key="k", value={"b": None, "a": [1, 2.5]}), CALLER, command_id="c1")
    data = encode(envelope)
    assert data == canonical_json(orjson.loads(data))
    assert orjson.loads(data) == {
        "agent_id": "agent-1",
        "command": {"key": "k", "type": "kv.put", "value": {"a": [1, 2.5], "b": None}},
        "command_id": "c1",
        "namespace": "default",
        "run_id": "default",
        "tenant": "acme",
        "tool_id": "tool.search",
    }


def test_message_has_version_and_type_headers_and_partition_key() -> None:
    envelope = stamp(KvPut(key="k", value=1), CALLER, namespace="cache:api")
    message = encode_message(envelope)
    assert message.key == b"acme/cache:api"
    assert dict(message.headers) == {"v": b"1", "type": b"kv.put"}
    record = Record(0, 0, 1, message.key, message.value, message.headers)
    assert decode_record(record) == envelope


def test_decode_refuses_unknown_or_missing_version() -> None:
    data = encode(_envelope(KvPut(key="k", value=1)))
    with pytest.raises(CommandError) as info:
        decode(data, version=2)
    assert info.value.code == "unsupported"
    for headers in ((), (("v", b"x"),), (("type", b"kv.put"),)):
        with pytest.raises(CommandError) as info:
            decode_record(Record(0, 0, 1, None, data, headers))
        assert info.value.code == "unsupported"


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (b"not json", "malformed"),
        (b"[1, 2]", "malformed"),
        (b'{"command": {"type": "kv.nope"}}', "invalid"),
        (b'{"command_id": "c", "tenant": "t", "run_id": "r", "command": {"type": "kv.put", "key": "k"}}', "invalid"),
        (b" " * (1024 * 1024 + 1), "too_large"),
    ],
)
def test_decode_refuses_bad_values(value: bytes, code: str) -> None:
    with pytest.raises(CommandError) as info:
        decode(value)
    assert info.value.code == code


def test_decode_validates_like_write() -> None:
    """A record a foreign producer wrote with a bad key is refused on read as it would be on write."""
    good = orjson.loads(encode(_envelope(KvPut(key="k", value=1))))
    good["command"]["key"] = "bad\x00key"
    with pytest.raises(CommandError) as info:
        decode(orjson.dumps(good))
    assert info.value.code == "invalid"
    good["command"]["key"] = "k"
    good["tenant"] = "evil/tenant"
    with pytest.raises(CommandError):
        decode(orjson.dumps(good))


# ------------------------------------------------------------------------------------ canonical JSON


@FEW
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=8), seed=st.randoms())
def test_canonical_json_is_independent_of_key_order(value: dict[str, Any], seed: Any) -> None:
    items = list(value.items())
    seed.shuffle(items)
    assert canonical_json(dict(items)) == canonical_json(value)
    assert orjson.loads(canonical_json(value)) == value


def test_canonical_json_form() -> None:
    assert canonical_json({"b": 1, "a": {"d": [1, "é"], "c": None}}) == '{"a":{"c":null,"d":[1,"é"]},"b":1}'.encode()


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"a": [1, math.nan]}, {1: "int key"}, object()])
def test_canonical_json_refuses_non_json(bad: Any) -> None:
    with pytest.raises(CommandError) as info:
        canonical_json(bad)
    assert info.value.code == "invalid"


def test_loads_json() -> None:
    assert loads_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(CommandError) as info:
        loads_json(b"NaN")
    assert info.value.code == "malformed"


@pytest.mark.parametrize("bad", [math.nan, math.inf, (1, 2), {1: 2}, 2**64, -(2**63) - 1, b"bytes", {"a": {1.5}}])
def test_command_values_must_be_json(bad: Any) -> None:
    with pytest.raises(CommandError) as info:
        parse_command({"type": "kv.put", "key": "k", "value": bad})
    assert info.value.code == "invalid"
    with pytest.raises(ValidationError) as error:
        KvPut(key="k", value=bad)
    assert error.value.errors()[0]["type"] == "invalid"


# ------------------------------------------------------------------------------------ embeddings


@FEW
@given(data=embeddings)
def test_embeddings_survive_encode_decode_bit_exactly(data: bytes) -> None:
    envelope = _envelope(VectorUpsert(collection="c", id="v", embedding=data))
    back = decode(encode(envelope))
    assert isinstance(back.command, VectorUpsert)
    assert back.command.embedding == data
    assert back.command.vector().tobytes() == data
    assert orjson.loads(encode(envelope))["command"]["embedding"] == embedding_to_base64(data)


def test_embedding_special_values_are_bit_exact() -> None:
    values = np.array([-0.0, 1e-45, np.finfo(np.float32).max, -np.finfo(np.float32).tiny, 0.1], dtype="<f4")
    envelope = _envelope(VectorUpsert(collection="c", id="v", embedding=embedding_bytes(values)))
    back = decode(encode(envelope)).command
    assert isinstance(back, VectorUpsert)
    assert back.embedding == values.tobytes()
    assert np.signbit(back.vector()[0])


def test_embedding_accepts_floats_base64_and_arrays_alike() -> None:
    floats = [0.1, -2.0, 3.5]
    expected = np.asarray(floats, dtype="<f4").tobytes()
    # the field is typed `bytes`; lists, arrays and base64 are accepted inputs (JSON bodies send lists)
    from_list = VectorUpsert(collection="c", id="v", embedding=floats)  # type: ignore[arg-type]
    from_b64 = VectorUpsert(collection="c", id="v", embedding=embedding_to_base64(expected))  # type: ignore[arg-type]
    from_array = VectorUpsert(collection="c", id="v", embedding=np.asarray(floats))  # type: ignore[arg-type]
    from_json = VectorUpsert.model_validate_json(b'{"collection": "c", "id": "v", "embedding": [0.1, -2.0, 3.5]}')
    assert from_list.embedding == from_b64.embedding == from_array.embedding == from_json.embedding == expected
    assert from_list.dimension == 3
    assert from_list.model_dump(mode="json")["embedding"] == embedding_to_base64(expected)


@pytest.mark.parametrize(
    ("embedding", "code"),
    [
        ([], "invalid"),
        ([1.0, math.nan], "invalid"),
        ([1e39], "invalid"),  # overflows float32
        (["1.0"], "invalid"),
        ([[1.0]], "invalid"),
        ([True, False], "invalid"),
        (b"\x00\x00\x80", "invalid"),
        ("not base64!", "invalid"),
        ({"a": 1}, "invalid"),
        ([0.5] * 4097, "too_large"),
    ],
)
def test_bad_embeddings_are_refused(embedding: Any, code: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command({"type": "vector.upsert", "collection": "c", "id": "v", "embedding": embedding})
    assert info.value.code == code


@pytest.mark.parametrize("type_name", sorted(COMMAND_TYPES))
def test_the_fingerprint_read_from_a_record_is_the_producers(type_name: str) -> None:
    @FEW
    @given(command=COMMANDS[type_name], run_id=ids, namespace=envelope_namespaces)
    def check(command: Any, run_id: str, namespace: str) -> None:
        scoped = namespace if command.scope == "namespace" else None
        envelope = stamp(command, CALLER, run_id=run_id, namespace=scoped)
        message = encode_message(envelope)
        record = Record(0, 0, 0, message.key, message.value, message.headers)
        decoded, fingerprint = decode_fingerprinted(record)
        assert decoded == envelope
        assert fingerprint == command_fingerprint(envelope)  # what the node checks before append
        retry = stamp(command, Caller("acme", agent_id="other"), run_id=run_id, namespace=scoped, issued_at=5)
        assert command_fingerprint(retry) == fingerprint  # who sent it, and when, are not the command

    check()


def test_the_fingerprint_tells_commands_apart() -> None:
    first = stamp(KvPut(key="k", value=1), CALLER, namespace="n")
    assert command_fingerprint(first) != command_fingerprint(stamp(KvPut(key="k", value=2), CALLER, namespace="n"))
    assert command_fingerprint(first) != command_fingerprint(stamp(KvPut(key="k", value=1), CALLER, namespace="m"))
    assert command_fingerprint(first) != command_fingerprint(
        stamp(KvPut(key="k", value=1), CALLER, namespace="n", run_id="r")
    )
