"""Limits and syntax: each named limit is enforced at its boundary, with the right error code and status."""

from __future__ import annotations

from typing import Any

import pytest

from commands import (
    MAX_BATCH_COMMANDS,
    MAX_COMMAND_BYTES,
    MAX_ID_BYTES,
    MAX_K,
    MAX_KEY_BYTES,
    MAX_NAMESPACE_BYTES,
    MAX_VECTOR_DIMENSION,
    Caller,
    CommandError,
    KvPut,
    encode,
    from_validation_errors,
    parse_command,
    stamp,
)
from commands.errors import DEFAULT_STATUS
from commands.limits import check_id, check_k, check_key, check_namespace

CALLER = Caller("acme")


def _code(data: dict[str, Any]) -> str:
    with pytest.raises(CommandError) as info:
        parse_command(data)
    return info.value.code


def test_named_limits_have_the_documented_values() -> None:
    assert MAX_COMMAND_BYTES == 1024 * 1024
    assert (MAX_KEY_BYTES, MAX_NAMESPACE_BYTES, MAX_ID_BYTES) == (512, 256, 256)
    assert (MAX_BATCH_COMMANDS, MAX_VECTOR_DIMENSION, MAX_K) == (1000, 4096, 1000)


def test_error_codes_map_to_http_statuses() -> None:
    assert DEFAULT_STATUS["invalid"] == 422
    assert DEFAULT_STATUS["too_large"] == 413
    assert DEFAULT_STATUS["malformed"] == 400
    assert CommandError("too_large", "x").status == 413
    assert CommandError("invalid", "x", 400).status == 400
    error = CommandError("cross_partition", "detail")
    assert (error.code, error.detail, str(error)) == ("cross_partition", "detail", "cross_partition: detail")


def test_key_length_is_counted_in_utf8_bytes() -> None:
    assert check_key("k" * MAX_KEY_BYTES)
    assert check_key("é" * (MAX_KEY_BYTES // 2))
    for key in ("k" * (MAX_KEY_BYTES + 1), "é" * (MAX_KEY_BYTES // 2 + 1)):
        assert _code({"type": "kv.put", "key": key, "value": 1}) == "too_large"


@pytest.mark.parametrize("key", ["", "a\x00b", "tab\there", "new\nline", "del\x7f", "c1\x85", "\ud800"])
def test_bad_keys_are_invalid(key: str) -> None:
    assert _code({"type": "kv.put", "key": key, "value": 1}) == "invalid"
    assert _code({"type": "state.cas", "name": key, "expected_version": 0, "value": 1}) == "invalid"


@pytest.mark.parametrize("key", ["a", "path/to/file.py", "user 123", "ключ", "emoji 🎉", "a:b@c#d?e=f"])
def test_good_keys(key: str) -> None:
    assert check_key(key) == key


@pytest.mark.parametrize("namespace", ["default", "files:my-repo", "cache:api", "summary:x.y_z", "a" * 256])
def test_good_namespaces(namespace: str) -> None:
    assert check_namespace(namespace) == namespace
    assert stamp(KvPut(key="k", value=1), CALLER, namespace=namespace).namespace == namespace


@pytest.mark.parametrize(
    ("namespace", "code"),
    [
        ("", "invalid"),
        ("a/b", "invalid"),
        ("sp ace", "invalid"),
        (".", "invalid"),
        ("..", "invalid"),
        ("é", "invalid"),
        ("a" * 257, "too_large"),
    ],
)
def test_bad_namespaces(namespace: str, code: str) -> None:
    with pytest.raises(CommandError) as info:
        check_namespace(namespace)
    assert info.value.code == code
    with pytest.raises(CommandError) as info:
        stamp(KvPut(key="k", value=1), CALLER, namespace=namespace)
    assert info.value.code == code


@pytest.mark.parametrize(("value", "code"), [("", "invalid"), ("a/b", "invalid"), ("x" * 257, "too_large")])
def test_bad_ids(value: str, code: str) -> None:
    with pytest.raises(CommandError) as info:
        check_id(value)
    assert info.value.code == code
    with pytest.raises(CommandError) as info:
        stamp(KvPut(key="k", value=1), CALLER, run_id=value)
    assert info.value.code == code
    with pytest.raises(CommandError) as info:
        stamp(KvPut(key="k", value=1), Caller(value))
    assert info.value.code == code


def test_batch_put_holds_at_most_1000_items() -> None:
    items = [{"key": f"k{i}", "value": i} for i in range(MAX_BATCH_COMMANDS)]
    assert len(parse_command({"type": "kv.batch_put", "items": items}).items) == MAX_BATCH_COMMANDS  # type: ignore[union-attr]
    items.append({"key": "one-more", "value": 0})
    assert _code({"type": "kv.batch_put", "items": items}) == "too_large"
    assert _code({"type": "kv.batch_put", "items": []}) == "invalid"
    assert _code({"type": "kv.batch_put", "items": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}) == "invalid"


def test_txn_lists_hold_at_most_1000_items() -> None:
    reads = [{"key": f"k{i}", "version": 1} for i in range(MAX_BATCH_COMMANDS + 1)]
    assert _code({"type": "txn", "reads": reads}) == "too_large"
    assert _code({"type": "txn"}) == "invalid"


def test_vector_dimension_limit() -> None:
    ok = parse_command({"type": "collection.create", "name": "c", "dimension": MAX_VECTOR_DIMENSION})
    assert ok.type == "collection.create"
    assert _code({"type": "collection.create", "name": "c", "dimension": MAX_VECTOR_DIMENSION + 1}) == "too_large"
    assert _code({"type": "collection.create", "name": "c", "dimension": 0}) == "invalid"
    assert _code({"type": "collection.create", "name": "c", "dimension": 8, "metric": "manhattan"}) == "invalid"
    embedding = [0.0] * MAX_VECTOR_DIMENSION
    assert parse_command({"type": "vector.upsert", "collection": "c", "id": "v", "embedding": embedding})
    embedding.append(0.0)
    assert _code({"type": "vector.upsert", "collection": "c", "id": "v", "embedding": embedding}) == "too_large"


def test_k_limit() -> None:
    assert check_k(MAX_K) == MAX_K
    for k, code in ((MAX_K + 1, "too_large"), (0, "invalid"), (True, "invalid")):
        with pytest.raises(CommandError) as info:
            check_k(k)
        assert info.value.code == code


def test_command_of_1_mib_encoded_is_the_limit() -> None:
    envelope = stamp(KvPut(key="k", value=""), CALLER, command_id="c")
    overhead = len(encode(envelope))
    exact = stamp(KvPut(key="k", value="x" * (MAX_COMMAND_BYTES - overhead)), CALLER, command_id="c")
    assert len(encode(exact)) == MAX_COMMAND_BYTES
    over = stamp(KvPut(key="k", value="x" * (MAX_COMMAND_BYTES - overhead + 1)), CALLER, command_id="c")
    with pytest.raises(CommandError) as info:
        encode(over)
    assert (info.value.code, info.value.status) == ("too_large", 413)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"type": "kv.put", "key": "k", "value": 1, "ttl_s": 0}, "ttl_s"),
        ({"type": "kv.put", "key": "k", "value": 1, "if_version": -1}, "if_version"),
        ({"type": "kv.put", "key": "k", "value": 1, "if_version": "3"}, "if_version"),
        ({"type": "kv.put", "key": "k", "value": 1, "if_version": True}, "if_version"),
        ({"type": "kv.put", "key": "k"}, "value"),
        ({"type": "lock.renew", "name": "l", "holder": "h", "fencing_token": 0, "ttl_s": 5}, "fencing_token"),
        ({"type": "run.end", "status": "done"}, "status"),
        ({"type": "trace.record", "trace_id": "t", "kind": "thought"}, "kind"),
        ({"type": "txn", "preconditions": [{"key": "a"}]}, "preconditions"),
        ({"type": "txn", "preconditions": [{"key": "a", "exists": True, "version": 2}]}, "preconditions"),
        ({"type": "txn", "writes": [{"op": "kv.upsert", "key": "a"}]}, "writes"),
        ({"type": "kv.nope"}, "kv.nope"),
        ({"key": "k", "value": 1}, "type"),
    ],
)
def test_schema_errors_are_invalid_and_name_the_field(data: dict[str, Any], field: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(data)
    assert (info.value.code, info.value.status) == ("invalid", 422)
    assert field in info.value.detail


def test_from_validation_errors_summarizes() -> None:
    errors = [{"type": "missing", "loc": ("a", 0), "msg": "Field required"}] * 7
    error = from_validation_errors(errors)
    assert error.code == "invalid"
    assert error.detail.startswith("a.0: Field required")
    assert error.detail.endswith("and 2 more")
    assert from_validation_errors([{"type": "too_long", "loc": (), "msg": "m"}]).code == "too_large"
