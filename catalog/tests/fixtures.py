import pytest

from catalog import services
from catalog.tests.factories import FakeInfo, metadata


@pytest.fixture
def fake_reader(monkeypatch):
    """Replace the slicer reader with one returning `reader.info` (or raising `reader.error`)."""

    class Reader:
        info = FakeInfo(fields=metadata())
        error: Exception | None = None
        detected = "gcode"
        calls = 0

    def read(source, *, name):
        Reader.calls += 1
        if Reader.error is not None:
            raise Reader.error
        return Reader.info

    monkeypatch.setattr(services, "_read", read)
    monkeypatch.setattr(services, "_detect_format", lambda upload, name: Reader.detected)
    return Reader
