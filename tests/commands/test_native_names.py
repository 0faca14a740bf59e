"""The native (pydantic-core) checks of ids and namespaces accept exactly what the Python reference does."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from commands import CommandError
from commands.fields import Id, Namespace
from commands.limits import MAX_ID_BYTES, check_id, check_namespace

NAME_TEXT = st.one_of(
    st.text(alphabet="ab.:@-_Z9", max_size=8),
    st.text(max_size=12),
    st.sampled_from([".", "..", "...", ".a", "..a", "a" * MAX_ID_BYTES, "a" * (MAX_ID_BYTES + 1), ""]),
)


def accepts(adapter: TypeAdapter[str], value: str) -> bool:
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


def reference(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except CommandError:
        return False
    return True


@given(NAME_TEXT)
def test_ids_match_the_reference(value: str) -> None:
    assert accepts(TypeAdapter(Id), value) == reference(check_id, value)


@given(NAME_TEXT)
def test_namespaces_match_the_reference(value: str) -> None:
    assert accepts(TypeAdapter(Namespace), value) == reference(check_namespace, value)
