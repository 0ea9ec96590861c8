"""Fragments and texts the admin pages of several apps share."""

import pytest

from fablab.html import colour_swatches, duration_text


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "—"), (0, "0 min"), (59, "0 min"), (2520, "42 min"), (3600, "1 h 00 min"), (11100, "3 h 05 min"),
    (11100.9, "3 h 05 min"),
])
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text


def test_colour_swatches_skip_empty_colours():
    html = colour_swatches(["#FF8000", "", "#000000"])
    assert html.count("<span") == 2 and 'title="#FF8000"' in html
