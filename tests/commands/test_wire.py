"""Golden tests of the apply path's decoder (`commands.wire`) against the pydantic path (`commands.decode`).

- Everything the producer writes (every command type, hypothesis-generated) decodes through the
  msgspec structs, never the fallback, to the same fields as the pydantic path.
- Malformed records (a corpus of one-field mutations of valid records, plus random ones) are
  refused by the structs exactly when the pydantic path refuses them; and `decode_wire` then
  raises the pydantic path's `CommandError`.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import (
    COMMAND_TYPES,
    Caller,
    CommandError,
    Envelope,
    decode,
    encode,
    stamp,
)
from commands.wire import _DECODER, PYDANTIC_DECODED, WIRE_TYPES, WireEnvelope, decode_wire
from tests.commands.strategies import COMMANDS, ids, namespaces
from tests.projections.workload import full_mix_workload


def _plain(value: Any) -> Any:
    """`value` with None-valued object members dropped (the encoding leaves optional Nones out)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def pydantic_fields(envelope: Envelope) -> Any:
    return _plain(envelope.model_dump(mode="json"))


def struct_fields(envelope: WireEnvelope) -> Any:
    data = msgspec.to_builtins(envelope)
    return _plain(data)


def test_the_structs_mirror_every_command_type_but_the_named_ones() -> None:
    assert set(COMMAND_TYPES) == WIRE_TYPES | PYDANTIC_DECODED
    assert not WIRE_TYPES & PYDANTIC_DECODED


@st.composite
def envelopes(draw: st.DrawFn) -> Envelope:
    name = draw(st.sampled_from(sorted(set(COMMANDS) & WIRE_TYPES)))  # the rest decode by pydantic alone
    command = draw(COMMANDS[name])
    caller = Caller(tenant=draw(ids), agent_id=draw(st.none() | ids), tool_id=draw(st.none() | ids))
    scoped = command.scope == "namespace"
    return stamp(
        command,
        caller,
        run_id=draw(ids),
        namespace=draw(namespaces) if scoped else None,
        issued_at=draw(st.none() | st.integers(0, 2**63 - 1)),
        command_id=draw(ids),
    )


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(envelopes())
def test_what_the_producer_writes_decodes_to_the_same_fields(envelope: Envelope) -> None:
    value = encode(envelope)
    wire = _DECODER.decode(value)  # the struct path itself: no fallback
    assert struct_fields(wire) == pydantic_fields(decode(value)) == pydantic_fields(envelope)
    assert wire.type == envelope.type
    assert wire.scope == envelope.scope


def test_the_benchmark_and_digest_workloads_decode_through_the_structs() -> None:
    for envelope in full_mix_workload(3_000, seed=2):
        if envelope.type in PYDANTIC_DECODED:
            continue  # decoded by the pydantic path by design
        value = encode(envelope)
        wire = decode_wire(value)
        assert isinstance(wire, WireEnvelope), envelope.type
        assert struct_fields(wire) == pydantic_fields(envelope)


# -- malformed records --------------------------------------------------------------------------------

_CALLER = Caller(tenant="acme", agent_id="agent-1")


def _valid_records() -> list[dict[str, Any]]:
    """One valid record (parsed JSON) per command type, with every optional field present where possible."""
    from commands import (
        CollectionCreate,
        EventAppend,
        KvBatchPut,
        KvClear,
        KvDelete,
        KvExpire,
        KvItem,
        KvPut,
        LockAcquire,
        LockRelease,
        LockRenew,
        NamespaceConfig,
        RunBegin,
        RunEnd,
        StateCas,
        TraceRecord,
        Txn,
        TxnKvDelete,
        TxnKvPut,
        TxnPrecondition,
        TxnRead,
        TxnStateSet,
        VectorDelete,
        VectorUpsert,
        embedding_bytes,
    )

    namespaced = [
        KvPut(key="k", value={"a": [1, 2.5, None]}, metadata={"m": 1}, ttl_s=5, if_version=0),
        KvDelete(key="k", if_version=3),
        KvBatchPut(
            items=[KvItem(key="a", value=1, metadata={"x": 1}, ttl_s=2, if_version=1), KvItem(key="b", value=2)]
        ),
        KvClear(),
        NamespaceConfig(json_schema={"type": "object"}, default_ttl_s=60),
        KvExpire(key="k", expected_version=2),
        StateCas(name="s", expected_version=0, value="v"),
        LockAcquire(name="l", holder="h", ttl_s=10),
        LockRenew(name="l", holder="h", fencing_token=1, ttl_s=10),
        LockRelease(name="l", holder="h", fencing_token=1),
        Txn(
            reads=[TxnRead(kind="state", namespace="other", key="r", version=1)],
            writes=[
                TxnKvPut(namespace="ns", key="a", value=1, metadata={"m": 2}, ttl_s=3),
                TxnKvDelete(key="b"),
                TxnStateSet(key="a", value=2),
            ],
            preconditions=[TxnPrecondition(key="c", exists=True), TxnPrecondition(key="d", version=0)],
        ),
        CollectionCreate(name="docs", dimension=4, metric="dot"),
        VectorUpsert(collection="docs", id="v", embedding=embedding_bytes([1.0, 2.0, 3.0, 4.0]), metadata={"i": 1}),
        VectorDelete(collection="docs", id="v"),
    ]
    run_scoped = [
        RunBegin(name="r", metadata={"a": 1}, parent_run_id="p"),
        RunEnd(status="failed", result={"e": 1}),
        EventAppend(event_type="step", payload=[1], thread_id="t", expected_seq=0),
        TraceRecord(trace_id="t1", kind="decision", data={"d": 1}, event_id="e1", seq=1, parent_id="t0"),
    ]
    records = [
        stamp(command, _CALLER, namespace="ns", run_id="run-1", issued_at=5, command_id="c-1") for command in namespaced
    ]
    records += [stamp(command, _CALLER, run_id="run-1", issued_at=5, command_id="c-1") for command in run_scoped]
    return [orjson.loads(encode(envelope)) for envelope in records]


#: Values that break some field of some command (each is tried in every field in turn).
_BAD_VALUES: list[Any] = [
    None,
    True,
    1.0,
    -1,
    0,
    2**63,
    2**64,
    "",
    ".",
    "..",
    "a/b",
    "a b",
    "a\n",
    "k\x00",
    "\u0085",
    "x" * 257,
    "é" * 129,
    "é" * 257,
    [],
    {},
    [1],
    {"a": 1},
    "AAAA",
    "AAA",
    "AAAAAA==",
    base64.b64encode(struct.pack("<f", float("nan"))).decode(),
    base64.b64encode(b"\0" * 4 * 4097).decode(),
    [1.0, 2.0],
    [True, 1.0],
    "cosine",
    "nope",
    "kv.put",
    "state.set",
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _replaced(record: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(record, dict):
        return {**record, head: _replaced(record[head], tuple(rest), new)}
    copy = list(record)
    copy[head] = _replaced(copy[head], tuple(rest), new)
    return copy


def _removed(record: Any, path: tuple[Any, ...]) -> Any:
    head, *rest = path
    if not rest:
        if isinstance(record, dict):
            return {key: item for key, item in record.items() if key != head}
        return [item for index, item in enumerate(record) if index != head]
    copy = dict(record) if isinstance(record, dict) else list(record)
    copy[head] = _removed(copy[head], tuple(rest))  # type: ignore[index]
    return copy


def _dumps(value: Any) -> bytes:
    """JSON bytes of `value` (the standard library: orjson refuses integers beyond 64 bits)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _mutations() -> list[bytes]:
    """One-field mutations of every valid record: each field set to each bad value, removed, or joined by a stranger."""
    found: list[bytes] = []
    for record in _valid_records():
        for path in _paths(record):
            for bad in _BAD_VALUES:
                found.append(_dumps(_replaced(record, path, bad)))
            found.append(_dumps(_removed(record, path)))
        found.append(_dumps({**record, "stranger": 1}))
        found.append(_dumps({**record, "command": {**record["command"], "stranger": 1}}))
        found.append(_dumps({k: v for k, v in record.items() if k != "namespace"}))
        found.append(_dumps({**record, "namespace": "ns"}))
        found.append(_dumps(record) + b" x")
        found.append(_dumps(record)[:-1])
        command = record["command"]
        if command["type"] == "kv.batch_put":
            found.append(_dumps({**record, "command": {**command, "items": [command["items"][0]] * 2}}))
        if command["type"] == "txn":
            found.append(_dumps({**record, "command": {**command, "writes": [command["writes"][0]] * 2}}))
            both = {**command["preconditions"][0], "version": 1}
            found.append(_dumps({**record, "command": {**command, "preconditions": [both]}}))
            found.append(_dumps({**record, "command": {"type": "txn"}}))
            found.append(_dumps({**record, "command": {"type": "txn", "reads": [], "writes": [], "preconditions": []}}))
    return found


def _pydantic_verdict(value: bytes) -> Any:
    try:
        return pydantic_fields(decode(value))
    except CommandError as error:
        return ("refused", error.code)


def _struct_verdict(value: bytes) -> Any:
    try:
        return struct_fields(_DECODER.decode(value))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return "refused"


#: Records the structs refuse and the pydantic path accepts: embeddings given as a JSON list of
#: numbers (pydantic's embedding validator takes lists; the producer always writes base64). For
#: these `decode_wire` falls back to the pydantic envelope, so nothing is refused that was accepted.
def _list_embedding(value: bytes) -> bool:
    command = orjson.loads(value).get("command")
    return isinstance(command, dict) and isinstance(command.get("embedding"), list)


def _integral_floats(value: bytes) -> bool:
    """True if the structs accept `value` once integral floats (`1.0`) are written as integers.

    JSON does not tell `1` from `1.0`, and the pydantic models take `1.0` for an integer field;
    the producer always writes `1`, and `decode_wire` falls back to pydantic for the other form.
    """

    def whole(item: Any) -> Any:
        if isinstance(item, float) and item.is_integer():
            return int(item)
        if isinstance(item, dict):
            return {key: whole(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [whole(inner) for inner in item]
        return item

    rewritten = orjson.dumps(whole(orjson.loads(value)))
    return rewritten != value and _struct_verdict(rewritten) != "refused"


def test_malformed_records_are_refused_exactly_when_the_pydantic_path_refuses_them() -> None:
    mutations = _mutations()
    assert len(mutations) > 3_000
    refused = 0
    for value in mutations:
        expected = _pydantic_verdict(value)
        got = _struct_verdict(value)
        if isinstance(expected, tuple):
            refused += 1
            assert got == "refused", (value, expected)
            with pytest.raises(CommandError) as caught:
                decode_wire(value)
            assert caught.value.code == expected[1]
        elif got == "refused":
            assert _list_embedding(value) or _integral_floats(value), (value, expected)
            fallback = decode_wire(value)
            assert isinstance(fallback, Envelope)
            assert pydantic_fields(fallback) == expected
        else:
            assert got == expected, value
    assert refused > len(mutations) // 2


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_valid_records()), st.data())
def test_random_edits_are_judged_alike(record: dict[str, Any], data: st.DataObject) -> None:
    paths = _paths(record)
    path = data.draw(st.sampled_from(paths))
    leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
    new = data.draw(leaf | st.lists(leaf, max_size=3) | st.dictionaries(st.text(max_size=4), leaf, max_size=2))
    value = _dumps(_replaced(record, path, new))
    expected, got = _pydantic_verdict(value), _struct_verdict(value)
    if isinstance(expected, tuple):
        assert got == "refused", (value, expected)
    elif got == "refused":
        assert _list_embedding(value) or _integral_floats(value), (value, expected)
    else:
        assert got == expected


def test_other_schema_versions_and_oversized_records_go_to_the_pydantic_path() -> None:
    value = encode(stamp(_kv_put(), _CALLER, namespace="ns"))
    with pytest.raises(CommandError) as caught:
        decode_wire(value, version=2)
    assert caught.value.code == "unsupported"
    with pytest.raises(CommandError) as too_large:
        decode_wire(value + b" " * (1024 * 1024))
    assert too_large.value.code == "too_large"


def _kv_put() -> Any:
    from commands import KvPut

    return KvPut(key="k", value=1)
