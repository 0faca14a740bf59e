"""The records read model: versions, conditions, TTL in log time, schemas, batches, listing, isolation, digests."""

from __future__ import annotations

import itertools
import pickle
import random
from typing import Any

import pytest

from commands import (
    Caller,
    Command,
    KvBatchPut,
    KvClear,
    KvDelete,
    KvExpire,
    KvItem,
    KvPut,
    NamespaceConfig,
    stamp,
)
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.query_dsl import Query, QueryError
from projections.records import NamespaceView, RecordsModel, check_schema_definition, schema_violation

_ids = itertools.count()
FAR = 10**15


def context(
    command: Command, *, at: int = 1_000, tenant: str = "t1", namespace: str = "ns", agent: str = "a1"
) -> ApplyContext:
    """The apply context of `command` stamped for `tenant`/`agent` in `namespace` at log time `at`."""
    envelope = stamp(command, Caller(tenant=tenant, agent_id=agent), namespace=namespace, command_id=f"c{next(_ids)}")
    return ApplyContext(envelope, partition=0, offset=next(_ids), log_time_ms=at)


def apply(model: RecordsModel, command: Command, **where: Any) -> dict[str, Any]:
    """Apply `command` and return its result."""
    return model.apply(context(command, **where))


def rejected(model: RecordsModel, command: Command, **where: Any) -> Rejected:
    """Apply `command`, expecting a rejection that leaves the digest unchanged."""
    before = model.digest()
    with pytest.raises(Rejected) as info:
        apply(model, command, **where)
    assert model.digest() == before
    return info.value


def put(model: RecordsModel, key: str, value: Any = 1, **fields: Any) -> dict[str, Any]:
    """Apply a kv.put of `value` at `key`; `fields` split between the command and its placement."""
    where = {name: fields.pop(name) for name in ("at", "tenant", "namespace", "agent") if name in fields}
    return apply(model, KvPut(key=key, value=value, **fields), **where)


@pytest.fixture
def model() -> RecordsModel:
    return RecordsModel()


# -- versions and conditions ----------------------------------------------------------------------


def test_put_creates_at_version_one_then_counts_up(model: RecordsModel) -> None:
    assert put(model, "k", {"a": 1}, at=10) == {"key": "k", "version": 1, "created": True, "expires_at_ms": None}
    assert put(model, "k", {"a": 2}, at=20, agent="a2") == {
        "key": "k",
        "version": 2,
        "created": False,
        "expires_at_ms": None,
    }
    view = model.get("t1", "ns", "k", 30)
    assert view is not None
    assert (view.value, view.version, view.key) == ({"a": 2}, 2, "k")
    assert (view.created_at_ms, view.updated_at_ms) == (10, 20)
    assert (view.created_by, view.updated_by) == ("a1", "a2")
    assert model.get("t1", "ns", "other", 30) is None
    assert model.get("t1", "other-ns", "k", 30) is None


def test_metadata_is_replaced_when_given_and_kept_when_not(model: RecordsModel) -> None:
    put(model, "k", 1)
    assert model.get("t1", "ns", "k", 0).metadata == {}  # type: ignore[union-attr]
    put(model, "k", 2, metadata={"tag": "x"})
    put(model, "k", 3)
    assert model.get("t1", "ns", "k", 0).metadata == {"tag": "x"}  # type: ignore[union-attr]
    put(model, "k", 4, metadata={})
    assert model.get("t1", "ns", "k", 0).metadata == {}  # type: ignore[union-attr]


def test_if_version_zero_means_must_not_exist(model: RecordsModel) -> None:
    assert put(model, "k", 1, if_version=0)["version"] == 1
    error = rejected(model, KvPut(key="k", value=2, if_version=0))
    assert error.reason == "version_conflict"
    assert error.extra == {"key": "k", "current_version": 1}


def test_if_version_mismatch_is_a_conflict_naming_the_current_version(model: RecordsModel) -> None:
    put(model, "k", 1)
    put(model, "k", 2)
    error = rejected(model, KvPut(key="k", value=3, if_version=1))
    assert (error.reason, error.extra["current_version"]) == ("version_conflict", 2)
    assert put(model, "k", 3, if_version=2)["version"] == 3
    assert rejected(model, KvPut(key="absent", value=1, if_version=4)).extra["current_version"] == 0


def test_delete_reports_what_it_removed(model: RecordsModel) -> None:
    put(model, "k", 1)
    put(model, "k", 2)
    assert apply(model, KvDelete(key="k")) == {"key": "k", "deleted": True, "version": 2}
    assert model.get("t1", "ns", "k", 0) is None
    assert apply(model, KvDelete(key="k")) == {"key": "k", "deleted": False, "version": 0}


def test_delete_with_if_version(model: RecordsModel) -> None:
    put(model, "k", 1)
    error = rejected(model, KvDelete(key="k", if_version=2))
    assert (error.reason, error.extra["current_version"]) == ("version_conflict", 1)
    assert apply(model, KvDelete(key="k", if_version=1))["deleted"] is True
    assert apply(model, KvDelete(key="k", if_version=0)) == {"key": "k", "deleted": False, "version": 0}


def test_a_recreated_key_starts_again_at_version_one(model: RecordsModel) -> None:
    put(model, "k", 1)
    put(model, "k", 2)
    apply(model, KvDelete(key="k"))
    assert put(model, "k", 3, if_version=0) == {"key": "k", "version": 1, "created": True, "expires_at_ms": None}


# -- TTL ------------------------------------------------------------------------------------------


def test_ttl_is_counted_from_log_time_and_reads_hide_by_the_reader_clock(model: RecordsModel) -> None:
    assert put(model, "k", 1, ttl_s=10, at=1_000)["expires_at_ms"] == 11_000
    assert model.get("t1", "ns", "k", 10_999) is not None
    assert model.get("t1", "ns", "k", 11_000) is None
    assert model.get("t1", "ns", "k", 0) is not None  # a reader clock behind the log still sees it


def test_an_expired_record_is_absent_for_writes_in_log_time(model: RecordsModel) -> None:
    put(model, "k", 1, ttl_s=10, at=1_000)
    put(model, "k", 2, ttl_s=10, at=2_000)
    assert model.current_version("t1", "ns", "k", 11_999) == 2
    assert model.current_version("t1", "ns", "k", 12_000) == 0
    error = rejected(model, KvPut(key="k", value=3, if_version=2), at=12_000)
    assert error.extra["current_version"] == 0
    result = put(model, "k", 3, if_version=0, at=12_000)
    assert result == {"key": "k", "version": 1, "created": True, "expires_at_ms": None}
    view = model.get("t1", "ns", "k", FAR)
    assert view is not None
    assert (view.created_at_ms, view.metadata) == (12_000, {})


def test_deleting_an_expired_record_reports_nothing_deleted(model: RecordsModel) -> None:
    put(model, "k", 1, ttl_s=1, at=0)
    assert apply(model, KvDelete(key="k"), at=1_000) == {"key": "k", "deleted": False, "version": 0}
    assert model.expired(FAR, 10) == []


def test_namespace_default_ttl_applies_unless_a_put_names_one(model: RecordsModel) -> None:
    apply(model, NamespaceConfig(default_ttl_s=60))
    assert put(model, "a", 1, at=0)["expires_at_ms"] == 60_000
    assert put(model, "b", 1, at=0, ttl_s=5)["expires_at_ms"] == 5_000
    assert model.namespace_config("t1", "ns") == NamespaceView(None, 60)
    apply(model, NamespaceConfig())
    assert model.namespace_config("t1", "ns") is None
    assert put(model, "a", 2, at=1)["expires_at_ms"] is None  # a put recomputes the expiry
    assert model.expired(FAR, 10) == [("t1", "ns", "b", 1)]


def test_expired_lists_for_the_sweeper_in_expiry_then_name_order(model: RecordsModel) -> None:
    put(model, "late", 1, ttl_s=20, at=0)
    put(model, "b", 1, ttl_s=10, at=0, tenant="t2")
    put(model, "a", 1, ttl_s=10, at=0, tenant="t2")
    put(model, "z", 1, ttl_s=10, at=0, namespace="aa")
    put(model, "a", 2, ttl_s=10, at=0, tenant="t2")
    put(model, "forever", 1)
    assert model.expired(9_999, 10) == []
    assert model.expired(10_000, 10) == [("t1", "aa", "z", 1), ("t2", "ns", "a", 2), ("t2", "ns", "b", 1)]
    assert model.expired(10_000, 2) == [("t1", "aa", "z", 1), ("t2", "ns", "a", 2)]
    assert model.expired(FAR, 10)[-1] == ("t1", "ns", "late", 1)


def test_kv_expire_purges_only_the_expected_expired_version(model: RecordsModel) -> None:
    put(model, "k", 1, ttl_s=10, at=0)
    put(model, "k", 2, ttl_s=10, at=0)
    assert apply(model, KvExpire(key="k", expected_version=2), at=9_999) == {"key": "k", "expired": False}
    assert apply(model, KvExpire(key="k", expected_version=1), at=10_000) == {"key": "k", "expired": False}
    assert apply(model, KvExpire(key="absent", expected_version=1), at=10_000)["expired"] is False
    assert model.current_version("t1", "ns", "k", 0) == 2
    assert apply(model, KvExpire(key="k", expected_version=2), at=10_000) == {
        "key": "k",
        "expired": True,
        "version": 2,
    }
    assert model.get("t1", "ns", "k", 0) is None
    assert model.expired(FAR, 10) == []


def test_kv_expire_spares_a_record_rewritten_since_the_sweep(model: RecordsModel) -> None:
    put(model, "k", 1, ttl_s=10, at=0)
    assert model.expired(10_000, 10) == [("t1", "ns", "k", 1)]
    put(model, "k", 2, at=10_000)  # re-created at version 1 without TTL after expiring
    assert apply(model, KvExpire(key="k", expected_version=1), at=10_001)["expired"] is False
    assert model.get("t1", "ns", "k", FAR) is not None


# -- schemas --------------------------------------------------------------------------------------

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "task",
    "type": "object",
    "required": ["status"],
    "additionalProperties": False,
    "properties": {
        "status": {"enum": ["open", "done"]},
        "priority": {"type": "integer", "minimum": 0, "maximum": 5},
        "score": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "title": {"type": "string", "minLength": 1, "maxLength": 5},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "owner": {"type": ["string", "null"]},
        "kind": {"const": {"a": [1, 2]}},
    },
}


def test_namespace_schema_accepts_conforming_values(model: RecordsModel) -> None:
    assert apply(model, NamespaceConfig(json_schema=SCHEMA))["json_schema"] == SCHEMA
    value = {"status": "open", "priority": 2.0, "score": 0.5, "title": "héllo", "tags": ["x"], "owner": None}
    assert put(model, "k", {**value, "kind": {"a": [1.0, 2]}})["version"] == 1


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("not an object", "$"),
        ({}, "$"),
        ({"status": "closed"}, "$.status"),
        ({"status": "open", "other": 1}, "$"),
        ({"status": "open", "priority": 6}, "$.priority"),
        ({"status": "open", "priority": 2.5}, "$.priority"),
        ({"status": "open", "priority": True}, "$.priority"),
        ({"status": "open", "score": 0}, "$.score"),
        ({"status": "open", "score": 1}, "$.score"),
        ({"status": "open", "title": ""}, "$.title"),
        ({"status": "open", "title": "toolong"}, "$.title"),
        ({"status": "open", "tags": []}, "$.tags"),
        ({"status": "open", "tags": ["a", "b", "c"]}, "$.tags"),
        ({"status": "open", "tags": ["a", 1]}, "$.tags[1]"),
        ({"status": "open", "owner": 1}, "$.owner"),
        ({"status": "open", "kind": {"a": [2, 1]}}, "$.kind"),
    ],
)
def test_namespace_schema_rejects_violations(model: RecordsModel, value: Any, path: str) -> None:
    apply(model, NamespaceConfig(json_schema=SCHEMA))
    put(model, "k", {"status": "done"})
    error = rejected(model, KvPut(key="k", value=value))
    assert error.reason == "schema_violation"
    assert error.extra["path"] == path
    assert path in error.detail


def test_boolean_and_nested_additional_property_schemas() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "integer"}, "properties": {"any": True}}
    check_schema_definition(schema)
    assert schema_violation(schema, {"any": "x", "n": 1}) is None
    assert schema_violation(schema, {"n": "x"}) == ("$.n", "expected integer")
    assert schema_violation(False, 1) == ("$", "no value is allowed here")
    assert schema_violation({"type": "null"}, None) is None


@pytest.mark.parametrize(
    "schema",
    [
        {"pattern": "^a"},
        {"$ref": "#/defs/x"},
        {"oneOf": [{"type": "string"}]},
        {"properties": {"a": {"format": "email"}}},
        {"type": "text"},
        {"type": []},
        {"required": "a"},
        {"minimum": "1"},
        {"minLength": -1},
        {"items": [{"type": "string"}]},
        {"properties": {"a": 1}},
        {"enum": "a"},
    ],
)
def test_schemas_outside_the_subset_are_refused_at_config_time(model: RecordsModel, schema: dict[str, Any]) -> None:
    error = rejected(model, NamespaceConfig(json_schema=schema))
    assert error.reason == "invalid"
    assert model.namespace_config("t1", "ns") is None


def test_too_deep_a_schema_is_refused(model: RecordsModel) -> None:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        schema = {"items": schema}
    assert rejected(model, NamespaceConfig(json_schema=schema)).reason == "invalid"


def test_schema_applies_to_later_writes_only_and_survives_clear(model: RecordsModel) -> None:
    put(model, "old", "a string")
    apply(model, NamespaceConfig(json_schema={"type": "integer"}))
    assert model.get("t1", "ns", "old", 0) is not None
    apply(model, KvClear())
    assert rejected(model, KvPut(key="k", value="x")).reason == "schema_violation"
    assert model.namespaces("t1", 0) == [("ns", 0)]


# -- batches and clear ----------------------------------------------------------------------------


def test_batch_put_applies_every_item(model: RecordsModel) -> None:
    put(model, "a", 1)
    items = [KvItem(key="a", value=2, if_version=1), KvItem(key="b", value=3, ttl_s=1, if_version=0)]
    result = apply(model, KvBatchPut(items=items), at=0)
    assert result == {
        "items": [
            {"key": "a", "version": 2, "created": False, "expires_at_ms": None},
            {"key": "b", "version": 1, "created": True, "expires_at_ms": 1_000},
        ]
    }


def test_batch_put_is_atomic_on_a_version_conflict(model: RecordsModel) -> None:
    put(model, "a", 1)
    items = [KvItem(key="new", value=1), KvItem(key="a", value=2, if_version=0)]
    error = rejected(model, KvBatchPut(items=items))
    assert error.extra == {"key": "a", "current_version": 1}
    assert model.get("t1", "ns", "new", 0) is None


def test_batch_put_is_atomic_on_a_schema_violation(model: RecordsModel) -> None:
    apply(model, NamespaceConfig(json_schema={"type": "integer"}))
    error = rejected(model, KvBatchPut(items=[KvItem(key="a", value=1), KvItem(key="b", value="x")]))
    assert error.reason == "schema_violation"
    assert model.get("t1", "ns", "a", 0) is None


def test_clear_removes_every_key_of_the_namespace_only(model: RecordsModel) -> None:
    for key in ("a", "b", "c"):
        put(model, key, 1, at=0)
    put(model, "gone", 1, ttl_s=1, at=0)
    put(model, "d", 1, ttl_s=100, at=0)
    put(model, "a", 1, namespace="other")
    assert apply(model, KvClear(), at=5_000) == {"deleted": 4}
    assert model.list_keys("t1", "ns", "", None, 100, 0) == ([], None)
    assert model.expired(FAR, 10) == []
    assert model.get("t1", "other", "a", 0) is not None
    assert apply(model, KvClear()) == {"deleted": 0}
    assert put(model, "a", 2)["version"] == 1


# -- isolation ------------------------------------------------------------------------------------


def test_nothing_crosses_tenants(model: RecordsModel) -> None:
    put(model, "k", "one", tenant="t1")
    put(model, "k", "one", tenant="t1")
    put(model, "k", "two", tenant="t2")
    apply(model, NamespaceConfig(json_schema={"type": "string"}, default_ttl_s=5), tenant="t2")
    assert model.current_version("t1", "ns", "k", 0) == 2
    assert model.current_version("t2", "ns", "k", 0) == 1
    assert model.get("t1", "ns", "k", 0).value == "one"  # type: ignore[union-attr]
    assert model.get("t2", "ns", "k", 0).value == "two"  # type: ignore[union-attr]
    assert model.namespace_config("t1", "ns") is None
    assert put(model, "n", 1, tenant="t1")["expires_at_ms"] is None
    assert rejected(model, KvPut(key="n", value=1), tenant="t2").reason == "schema_violation"
    assert model.get("t3", "ns", "k", 0) is None
    assert model.namespaces("t3", 0) == []
    apply(model, KvClear(), tenant="t2")
    assert model.get("t1", "ns", "k", 0) is not None
    apply(model, KvDelete(key="k"), tenant="t1")
    assert model.namespaces("t2", 0) == [("ns", 0)]
    assert model.query("t3", "ns", Query(), 0) == {"items": [], "next_cursor": None}


def test_reads_of_one_tenant_never_see_another(model: RecordsModel) -> None:
    put(model, "shared", 1, tenant="t2")
    assert model.list_keys("t1", "ns", "", None, 10, 0) == ([], None)
    assert model.get_many("t1", "ns", ["shared"], 0) == {}
    assert model.query("t1", "ns", Query(), 0)["items"] == []
    assert [view.key for view in model.list_keys("t2", "ns", "", None, 10, 0)[0]] == ["shared"]


# -- listing --------------------------------------------------------------------------------------


def test_list_keys_pages_with_cursors_in_sorted_order(model: RecordsModel) -> None:
    rng = random.Random(3)
    keys = [f"k{n:05d}" for n in range(2_500)]
    for key in rng.sample(keys, len(keys)):
        put(model, key, key)
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = model.list_keys("t1", "ns", "", cursor, 1_000, 0)
        seen.extend(view.key for view in page)
        if cursor is None:
            break
        assert cursor == seen[-1]
    assert seen == keys


def test_list_keys_with_a_prefix_stops_at_its_end(model: RecordsModel) -> None:
    for key in ("a", "b/1", "b/2", "b/3", "bz", "c"):
        put(model, key)
    page, cursor = model.list_keys("t1", "ns", "b/", None, 2, 0)
    assert ([view.key for view in page], cursor) == (["b/1", "b/2"], "b/2")
    page, cursor = model.list_keys("t1", "ns", "b/", cursor, 2, 0)
    assert ([view.key for view in page], cursor) == (["b/3"], None)
    assert model.list_keys("t1", "ns", "b/", "a", 10, 0)[0][0].key == "b/1"  # a cursor before the prefix
    assert model.list_keys("t1", "ns", "b/", "zz", 10, 0) == ([], None)
    page, cursor = model.list_keys("t1", "ns", "b/", None, 3, 0)
    assert cursor is None  # an exactly full last page needs no cursor


def test_list_keys_hides_expired_records_by_the_reader_clock(model: RecordsModel) -> None:
    put(model, "a", 1, at=0)
    put(model, "b", 1, ttl_s=1, at=0)
    put(model, "c", 1, at=0)
    page, cursor = model.list_keys("t1", "ns", "", None, 1, 1_000)
    assert ([view.key for view in page], cursor) == (["a"], "a")
    page, cursor = model.list_keys("t1", "ns", "", "a", 1, 1_000)
    assert ([view.key for view in page], cursor) == (["c"], None)
    assert [view.key for view in model.list_keys("t1", "ns", "", None, 5, 999)[0]] == ["a", "b", "c"]


@pytest.mark.parametrize("limit", [0, 1_001])
def test_list_keys_refuses_a_limit_out_of_range(model: RecordsModel, limit: int) -> None:
    with pytest.raises(QueryError):
        model.list_keys("t1", "ns", "", None, limit, 0)


def test_keys_stay_sorted_through_random_inserts_and_deletes(model: RecordsModel) -> None:
    rng = random.Random(11)
    alive: set[str] = set()
    for step in range(6_000):
        key = f"{rng.randrange(3_000):x}é"
        if key in alive and rng.random() < 0.5:
            apply(model, KvDelete(key=key))
            alive.discard(key)
        else:
            put(model, key, step)
            alive.add(key)
    listed: list[str] = []
    cursor: str | None = None
    while True:
        page, cursor = model.list_keys("t1", "ns", "", cursor, 1_000, 0)
        listed.extend(view.key for view in page)
        if cursor is None:
            break
    assert listed == sorted(alive)
    assert model.namespaces("t1", 0) == [("ns", len(alive))]


def test_namespaces_lists_live_counts_and_configured_namespaces(model: RecordsModel) -> None:
    put(model, "a", 1, namespace="beta", at=0)
    put(model, "b", 1, namespace="beta", at=0, ttl_s=1)
    put(model, "a", 1, namespace="alpha", at=0, ttl_s=1)
    apply(model, NamespaceConfig(default_ttl_s=9), namespace="empty")
    assert model.namespaces("t1", 0) == [("alpha", 1), ("beta", 2), ("empty", 0)]
    assert model.namespaces("t1", 1_000) == [("beta", 1), ("empty", 0)]


def test_get_many_answers_the_live_keys_in_the_order_asked(model: RecordsModel) -> None:
    put(model, "a", 1, at=0)
    put(model, "b", 2, at=0, ttl_s=1)
    put(model, "c", 3, at=0)
    found = model.get_many("t1", "ns", ["c", "missing", "b", "a"], 1_000)
    assert list(found) == ["c", "a"]
    assert found["c"].value == 3


def test_query_runs_over_live_records(model: RecordsModel) -> None:
    for n in range(10):
        put(model, f"k{n}", {"n": n, "odd": n % 2 == 1}, at=0, ttl_s=1 if n == 9 else None)
    query = Query(filter={"value.odd": True}, sort=[("value.n", "desc")], limit=2, projection=["value.n"])
    first = model.query("t1", "ns", query, 1_000)
    assert first["items"] == [{"key": "k7", "value": {"n": 7}}, {"key": "k5", "value": {"n": 5}}]
    second = model.query("t1", "ns", query.model_copy(update={"cursor": first["next_cursor"]}), 1_000)
    assert second == {
        "items": [{"key": "k3", "value": {"n": 3}}, {"key": "k1", "value": {"n": 1}}],
        "next_cursor": None,
    }
    in_key_order = model.query("t1", "ns", Query(filter={"key": {"$prefix": "k1"}}), 1_000)
    assert [item["key"] for item in in_key_order["items"]] == ["k1"]
    assert in_key_order["items"][0]["created_by"] == "a1"


# -- digests and snapshots ------------------------------------------------------------------------


def test_digest_ignores_insertion_order_but_not_content() -> None:
    left, right = RecordsModel(), RecordsModel()
    assert left.digest() == right.digest()
    for key in ("a", "b", "c"):
        put(left, key, key, at=0)
    for key in ("c", "a", "b"):
        put(right, key, key, at=0)
    assert left.digest() == right.digest()
    put(right, "c", "changed", at=0)
    assert left.digest() != right.digest()
    apply(left, KvDelete(key="a"))
    apply(left, KvDelete(key="b"))
    apply(left, KvDelete(key="c"))
    assert left.digest() == RecordsModel().digest()


def test_pickle_round_trip_keeps_digest_and_indexes(model: RecordsModel) -> None:
    for n in range(1_500):
        put(model, f"k{n:04d}", {"n": n}, at=n, ttl_s=10 if n % 4 == 0 else None, tenant=f"t{n % 2}")
    apply(model, NamespaceConfig(json_schema={"type": "object"}, default_ttl_s=30), tenant="t0")
    restored = pickle.loads(pickle.dumps(model))
    assert restored.digest() == model.digest()
    assert restored.expired(FAR, 2_000) == model.expired(FAR, 2_000)
    assert restored.list_keys("t1", "ns", "k01", None, 50, 0) == model.list_keys("t1", "ns", "k01", None, 50, 0)
    assert put(restored, "k0000", {}, tenant="t0", at=5)["expires_at_ms"] == 30_005
    assert rejected(restored, KvPut(key="x", value=1), tenant="t0").reason == "schema_violation"
    assert model.get("t0", "ns", "k0000", 0).value == {"n": 0}  # type: ignore[union-attr]
