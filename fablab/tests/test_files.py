import pytest

from fablab.files import format_mib


@pytest.mark.parametrize(("size", "up", "text"), [
    (200 << 20, False, "200 MiB"),
    ((200 << 20) + 1, True, "200.1 MiB"),
    ((200 << 20) + 1, False, "200 MiB"),
    (3 << 19, False, "1.5 MiB"),
    (0, False, "0 MiB"),
    (2000 << 20, False, "2000 MiB"),
])
def test_format_mib(size, up, text):
    assert format_mib(size, up=up) == text
