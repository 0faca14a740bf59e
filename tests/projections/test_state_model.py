"""StateModel: CAS on versioned state records, locks with fencing tokens, reads, digest determinism."""

from __future__ import annotations

import pickle
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands import Caller, Command, LockAcquire, LockRelease, LockRenew, StateCas, partition_of, stamp
from projections.model import ApplyContext
from projections.outcome import Rejected
from projections.state import LockView, StateModel, StateView


def ctx(
    command: Command, *, at: int = 1_000, namespace: str = "ns", tenant: str = "t1", agent: str = "a1", offset: int = 0
) -> ApplyContext:
    """An apply context for `command` sent by `agent` of `tenant` at log time `at`."""
    envelope = stamp(command, Caller(tenant=tenant, agent_id=agent), namespace=namespace, command_id=f"c{offset}")
    return ApplyContext(envelope, partition=0, offset=offset, log_time_ms=at)


def cas(name: str, expected: int, value: Any = None) -> StateCas:
    return StateCas(name=name, expected_version=expected, value=value)


def acquire(name: str, holder: str, ttl_s: int = 10) -> LockAcquire:
    return LockAcquire(name=name, holder=holder, ttl_s=ttl_s)


def renew(name: str, holder: str, token: int, ttl_s: int = 10) -> LockRenew:
    return LockRenew(name=name, holder=holder, fencing_token=token, ttl_s=ttl_s)


def release(name: str, holder: str, token: int) -> LockRelease:
    return LockRelease(name=name, holder=holder, fencing_token=token)


def rejected(model: StateModel, context: ApplyContext) -> Rejected:
    """Apply `context` expecting a rejection; check the digest did not move; return the rejection."""
    before = model.digest()
    with pytest.raises(Rejected) as info:
        model.apply(context)
    assert model.digest() == before
    return info.value


# -- CAS ---------------------------------------------------------------------------------------------


def test_cas_creates_at_version_one_and_counts_up() -> None:
    model = StateModel()
    assert model.apply(ctx(cas("leader", 0, {"who": "a1"}), at=5)) == {"name": "leader", "version": 1}
    assert model.apply(ctx(cas("leader", 1, {"who": "a2"}), at=7, agent="a2")) == {"name": "leader", "version": 2}
    view = model.get("t1", "ns", "leader")
    assert view == StateView("ns", "leader", {"who": "a2"}, 2, created_at_ms=5, updated_at_ms=7, updated_by="a2")


def test_cas_with_a_stale_version_is_a_conflict_naming_the_current_version() -> None:
    model = StateModel()
    model.apply(ctx(cas("x", 0, 1)))
    model.apply(ctx(cas("x", 1, 2)))
    error = rejected(model, ctx(cas("x", 1, 3)))
    assert error.reason == "version_conflict"
    assert error.extra == {"current_version": 2}
    assert model.get("t1", "ns", "x") is not None
    assert model.get("t1", "ns", "x").value == 2  # type: ignore[union-attr]


def test_expected_version_zero_means_must_not_exist() -> None:
    model = StateModel()
    model.apply(ctx(cas("x", 0, "first")))
    error = rejected(model, ctx(cas("x", 0, "second")))
    assert (error.reason, error.extra) == ("version_conflict", {"current_version": 1})


def test_cas_on_an_absent_record_with_a_version_reports_zero() -> None:
    error = rejected(StateModel(), ctx(cas("x", 3, "v")))
    assert (error.reason, error.extra) == ("version_conflict", {"current_version": 0})


def test_tenants_and_namespaces_are_isolated() -> None:
    model = StateModel()
    model.apply(ctx(cas("x", 0, "t1"), tenant="t1"))
    assert model.get("t2", "ns", "x") is None
    assert model.get("t1", "other", "x") is None
    assert model.apply(ctx(cas("x", 0, "t2"), tenant="t2")) == {"name": "x", "version": 1}
    assert model.list("t2", "ns")[0].value == "t2"
    assert model.get("t1", "ns", "x").value == "t1"  # type: ignore[union-attr]
    assert model.current_version("t3", "ns", "x", 0) == 0


def test_list_is_sorted_with_prefix_cursor_and_limit() -> None:
    model = StateModel()
    for name in ["b/2", "a", "b/1", "c", "b/3", "b"]:
        model.apply(ctx(cas(name, 0, name)))
    assert [v.name for v in model.list("t1", "ns")] == ["a", "b", "b/1", "b/2", "b/3", "c"]
    assert [v.name for v in model.list("t1", "ns", prefix="b/")] == ["b/1", "b/2", "b/3"]
    assert [v.name for v in model.list("t1", "ns", prefix="b/", after="b/1", limit=1)] == ["b/2"]
    assert [v.name for v in model.list("t1", "ns", after="b/3")] == ["c"]
    assert model.list("t1", "ns", limit=0) == []
    assert model.list("t1", "missing") == []


def test_transaction_hooks_read_and_set_versions() -> None:
    model = StateModel()
    assert model.current_version("t1", "ns", "x", 10) == 0
    assert model.write_set("t1", "ns", "x", {"v": 1}, "a9", 10) == {"name": "x", "version": 1}
    assert model.write_set("t1", "ns", "x", {"v": 2}, None, 11) == {"name": "x", "version": 2}
    assert model.current_version("t1", "ns", "x", 12) == 2
    assert model.get("t1", "ns", "x") == StateView("ns", "x", {"v": 2}, 2, 10, 11, None)


# -- locks -------------------------------------------------------------------------------------------


def test_acquire_a_free_lock_returns_the_version_as_fencing_token() -> None:
    model = StateModel()
    result = model.apply(ctx(acquire("job", "w1", ttl_s=30), at=1_000))
    assert result == {"name": "job", "fencing_token": 1, "expires_at_ms": 31_000}
    assert model.get("t1", "ns", "job").value == {"holder": "w1", "expires_at_ms": 31_000}  # type: ignore[union-attr]
    assert model.lock("t1", "ns", "job", now_ms=2_000) == LockView("ns", "job", "w1", 1, 31_000, held=True)
    assert model.lock("t1", "ns", "job", now_ms=31_000) == LockView("ns", "job", "w1", 1, 31_000, held=False)
    assert model.lock("t1", "ns", "nothing", now_ms=0) is None


def test_a_held_lock_refuses_another_holder_until_it_expires_in_log_time() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1", ttl_s=10), at=1_000))
    error = rejected(model, ctx(acquire("job", "w2"), at=10_999))
    assert error.reason == "lock_held"
    assert error.extra == {"holder": "w1", "expires_at_ms": 11_000}
    # expires_at_ms <= log time: the lease has run out, another holder may take it
    result = model.apply(ctx(acquire("job", "w2", ttl_s=5), at=11_000))
    assert result == {"name": "job", "fencing_token": 2, "expires_at_ms": 16_000}


def test_reacquire_by_the_same_holder_gets_a_new_token_and_fences_the_old_one() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1"), at=0))
    assert model.apply(ctx(acquire("job", "w1", ttl_s=20), at=100))["fencing_token"] == 2
    error = rejected(model, ctx(renew("job", "w1", 1), at=200))
    assert (error.reason, error.extra) == ("version_conflict", {"current_version": 2})


def test_renew_extends_the_lease_and_keeps_the_token() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1", ttl_s=10), at=0))
    assert model.apply(ctx(renew("job", "w1", 1, ttl_s=10), at=9_000)) == {
        "name": "job",
        "fencing_token": 1,
        "expires_at_ms": 19_000,
    }
    assert rejected(model, ctx(acquire("job", "w2"), at=15_000)).reason == "lock_held"
    assert model.current_version("t1", "ns", "job", 15_000) == 1


@pytest.mark.parametrize(
    ("command", "at", "reason"),
    [
        (renew("job", "w2", 1), 1_000, "forbidden"),
        (renew("job", "w1", 7), 1_000, "version_conflict"),
        (renew("job", "w1", 1), 10_000, "forbidden"),
        (renew("nope", "w1", 1), 1_000, "not_found"),
        (release("job", "w2", 1), 1_000, "forbidden"),
        (release("job", "w1", 2), 1_000, "version_conflict"),
        (release("nope", "w1", 1), 1_000, "not_found"),
        (renew("plain", "w1", 1), 1_000, "invalid"),
        (release("plain", "w1", 1), 1_000, "invalid"),
        (acquire("plain", "w1"), 1_000, "invalid"),
    ],
)
def test_wrong_holder_token_name_or_expired_lease_is_refused(command: Command, at: int, reason: str) -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1", ttl_s=10), at=0))
    model.apply(ctx(cas("plain", 0, {"not": "a lock"})))
    assert rejected(model, ctx(command, at=at)).reason == reason


def test_release_frees_the_lock_and_tokens_keep_increasing() -> None:
    model = StateModel()
    tokens = []
    for round_, holder in enumerate(["w1", "w2", "w1", "w3"]):
        at = round_ * 100
        token = model.apply(ctx(acquire("job", holder), at=at))["fencing_token"]
        tokens.append(token)
        assert model.apply(ctx(release("job", holder, token), at=at + 1))["version"] == token + 1
        view = model.lock("t1", "ns", "job", now_ms=at + 2)
        assert view is not None
        assert (view.holder, view.held) == (None, False)
        assert rejected(model, ctx(release("job", holder, token + 1), at=at + 3)).reason == "forbidden"
    assert tokens == [1, 3, 5, 7]


def test_release_of_an_expired_lease_by_its_holder_is_allowed() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1", ttl_s=1), at=0))
    assert model.apply(ctx(release("job", "w1", 1), at=5_000)) == {"name": "job", "version": 2}


def test_expired_lease_taken_over_fences_the_old_holder() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1", ttl_s=1), at=0))
    assert model.apply(ctx(acquire("job", "w2", ttl_s=1), at=2_000))["fencing_token"] == 2
    assert rejected(model, ctx(renew("job", "w1", 1), at=2_100)).reason == "version_conflict"
    assert rejected(model, ctx(release("job", "w1", 1), at=2_100)).reason == "version_conflict"


def test_cas_on_a_lock_record_bumps_the_token() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1"), at=0))
    model.apply(ctx(cas("job", 1, {"holder": "w9", "expires_at_ms": 50_000})))
    assert rejected(model, ctx(renew("job", "w1", 1), at=100)).reason == "version_conflict"
    assert model.lock("t1", "ns", "job", now_ms=100) == LockView("ns", "job", "w9", 2, 50_000, held=True)


def test_locks_are_isolated_by_tenant() -> None:
    model = StateModel()
    model.apply(ctx(acquire("job", "w1"), tenant="t1"))
    assert model.apply(ctx(acquire("job", "w2"), tenant="t2"))["fencing_token"] == 1
    assert model.lock("t2", "ns", "job", 0).holder == "w2"  # type: ignore[union-attr]


# -- determinism -------------------------------------------------------------------------------------


def _workload() -> list[ApplyContext]:
    """A mixed workload over several tenants and namespaces, each record with its own log time."""
    commands: list[tuple[Command, str, str]] = []
    for i in range(60):
        tenant, namespace = f"t{i % 2}", f"ns{i % 5}"
        commands.append((cas(f"k{i % 7}", i // 35, {"i": i}), tenant, namespace))
        commands.append((acquire(f"lock{i % 3}", f"w{i % 4}", ttl_s=1), tenant, namespace))
        commands.append((renew(f"lock{i % 3}", f"w{i % 4}", 1 + i % 3), tenant, namespace))
        commands.append((release(f"lock{i % 3}", f"w{(i + 1) % 4}", 1 + i % 5), tenant, namespace))
    return [
        ctx(command, tenant=tenant, namespace=namespace, at=offset * 300, offset=offset)
        for offset, (command, tenant, namespace) in enumerate(commands)
    ]


def _by_partition(contexts: list[ApplyContext], partitions: int) -> list[list[ApplyContext]]:
    """The contexts split by the partition their envelope routes to, each in log order."""
    split: dict[int, list[ApplyContext]] = defaultdict(list)
    for context in contexts:
        split[partition_of(context.envelope, partitions)].append(context)
    return [split[p] for p in sorted(split)]


def _apply_all(model: StateModel, contexts: list[ApplyContext]) -> tuple[int, int]:
    applied = refused = 0
    for context in contexts:
        try:
            model.apply(context)
            applied += 1
        except Rejected:
            refused += 1
    return applied, refused


def test_digest_is_independent_of_partition_interleaving_and_survives_pickle() -> None:
    parts = _by_partition(_workload(), 4)
    assert len(parts) > 1
    one_after_another = StateModel()
    counts = _apply_all(one_after_another, [c for part in reversed(parts) for c in part])
    round_robin = StateModel()
    longest = max(len(part) for part in parts)
    interleaved = [part[i] for i in range(longest) for part in parts if i < len(part)]
    assert _apply_all(round_robin, interleaved) == counts
    assert counts[0] > 0
    assert counts[1] > 0
    assert one_after_another.digest() == round_robin.digest()
    restored = pickle.loads(pickle.dumps(round_robin))
    assert restored.digest() == round_robin.digest()
    assert restored.list("t0", "ns0") == round_robin.list("t0", "ns0")


def test_digest_changes_with_state() -> None:
    model = StateModel()
    empty = model.digest()
    model.apply(ctx(cas("x", 0, 1)))
    assert model.digest() != empty


# -- CAS against a reference model -------------------------------------------------------------------

_steps = st.lists(
    st.tuples(
        st.integers(0, 3),  # agent
        st.sampled_from(["a", "b", "c"]),  # name
        st.booleans(),  # use the right expected version?
        st.integers(-3, 3).filter(lambda d: d != 0),  # how wrong a wrong version is
    ),
    max_size=60,
)


def _outcome(model: StateModel, context: ApplyContext) -> dict[str, Any] | Rejected:
    """The result of applying `context`, or the rejection it raised."""
    try:
        return model.apply(context)
    except Rejected as error:
        return error


@settings(max_examples=200, deadline=None)
@given(_steps)
def test_cas_matches_a_reference_model(steps: list[tuple[int, str, bool, int]]) -> None:
    model = StateModel()
    reference: dict[str, int] = {}
    successes: dict[str, list[int]] = defaultdict(list)
    for offset, (agent, name, right, delta) in enumerate(steps):
        current = reference.get(name, 0)
        expected = current if right else max(current + delta, 0)
        if not right and expected == current:
            expected = current + 1
        context = ctx(cas(name, expected, [agent, offset]), agent=f"a{agent}", at=offset, offset=offset)
        result = _outcome(model, context)
        if isinstance(result, Rejected):
            assert not right
            assert (result.reason, result.extra) == ("version_conflict", {"current_version": current})
            continue
        assert right
        reference[name] = current + 1
        assert result == {"name": name, "version": current + 1}
        successes[name].append(result["version"])
    for name, versions in successes.items():
        assert versions == list(range(1, len(versions) + 1))  # never reused, never skipped
        view = model.get("t1", "ns", name)
        assert view is not None
        assert view.version == len(versions) == reference[name]
    assert {v.name for v in model.list("t1", "ns")} == set(successes)
