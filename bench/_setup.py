"""What the benchmark scripts share: Django set up, a throw-away database, timings in milliseconds.

A script runs with its own folder on the path, so it starts with

    import _setup

    _setup.setup_django()

and imports the project after that. `make bench` runs every script here except this one.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setup_django() -> None:
    """The project importable and Django set up (with fablab.settings unless DJANGO_SETTINGS_MODULE says else)."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fablab.settings")
    import django

    django.setup()


@contextmanager
def throwaway_database() -> Iterator[None]:
    """A test database made for the run, as the test runner makes one, and dropped afterwards."""
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


def timed_ms(call: Callable[[], object], runs: int, *, check: Callable[[object], None] | None = None) -> list[float]:
    """How many milliseconds each of `runs` calls took; `check` sees each call's result, outside the timing."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
        if check is not None:
            check(result)
    return samples


def percentile(samples: list[float], point: int) -> float:
    """The `point`th percentile (1 to 99) of the samples, e.g. `percentile(samples, 95)`."""
    return statistics.quantiles(samples, n=100)[point - 1]
