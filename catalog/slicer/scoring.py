"""Compare extracted values with the corpus ground truth (expected.json) the way its schema says.

Strings match exactly after stripping (the slicer name case-insensitively), numbers
within 1 % relative or 0.011 absolute, lists element by element with the same length.
Used by the corpus tests and bench/slicer_metadata.py.
"""

from __future__ import annotations

import math

REL_TOL = 0.01
ABS_TOL = 0.011


def values_match(expected, actual, *, field: str = "") -> bool:
    if expected is None:
        return actual is None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(expected) != len(actual):
            return False
        return all(values_match(e, a, field=field) for e, a in zip(expected, actual, strict=True))
    if isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, int | float):
        if isinstance(actual, bool) or not isinstance(actual, int | float):
            return False
        if not math.isfinite(actual):
            return False
        return abs(expected - actual) <= max(ABS_TOL, REL_TOL * abs(expected))
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return False
        if field == "slicer":
            return expected.strip().lower() == actual.strip().lower()
        return expected.strip() == actual.strip()
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(values_match(value, actual.get(key), field=key) for key, value in expected.items())
    return expected == actual
