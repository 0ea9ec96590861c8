import pytest

from fablab.exceptions import InvalidInput
from fablab.models import Organization
from fablab.validation import nul_location, validate


@pytest.mark.parametrize(("value", "where"), [
    ("plain", None),
    ("a\x00b", ()),
    ({"ok": ["x", {"deep": "y\x00"}]}, ("ok", 1, "deep")),
    ({"a\x00": 1}, ("a\x00",)),
    ([1, 2.5, None, True], None),
])
def test_nul_location(value, where):
    assert nul_location(value) == where


def test_validate_refuses_nul_in_any_text_field():
    """Whatever door a value came through (admin, portal, API, task), no text column is asked to hold NUL."""
    with pytest.raises(InvalidInput, match="name: Null characters are not allowed") as refused:
        validate(Organization(name="Acme\x00", slug="acme"))
    assert refused.value.extra == {"fields": {"name": ["Null characters are not allowed."]}}
