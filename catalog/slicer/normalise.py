"""Small parsing helpers shared by the readers: numbers, lists, durations, percentages.

They never raise on odd input: a value that cannot be read gives None (numbers,
durations) or is kept as the string the file wrote (list elements).
"""

from __future__ import annotations

import math
import re

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)\b", re.IGNORECASE)
_HMS = re.compile(r"^(\d+):(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


def clean(value: str | None) -> str | None:
    """Strip whitespace (including a CR left by CRLF files); an empty value is None."""
    if value is None:
        return None
    value = value.strip()
    return value or None


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def parse_number(value) -> int | float | None:
    """'0.4' -> 0.4, '225' -> 225, '60.00' -> 60.0, '7%' -> None, 'abc' -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if not (isinstance(value, float) and not math.isfinite(value)) else None
    text = str(value).strip()
    if not text or not _NUMBER.fullmatch(text):
        return None
    try:
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        number = float(text)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def parse_element(value: str) -> int | float | str:
    """A list element: a number when it reads as one, else the text as written ('porkchop')."""
    text = unquote(value.strip())
    number = parse_number(text)
    return text if number is None else number


def split_list(value: str | None) -> list[str]:
    """Split a per-extruder/per-filament value on ';' (string lists) or ',' (numeric lists)."""
    if value is None:
        return []
    text = value.strip()
    if not text or text == '""':
        return []
    separator = ";" if ";" in text else ","
    return [unquote(part.strip()) for part in text.split(separator)]


def value_list(value: str | None) -> list | None:
    """'0.4,0.4' -> [0.4, 0.4]; 'PLA;PETG' -> ['PLA', 'PETG']; '' -> None."""
    if value is None:
        return None
    if isinstance(value, list):
        items = [parse_element(str(item)) for item in value]
    else:
        items = [parse_element(item) for item in split_list(value)]
    return items or None


def number_list(value: str | None) -> list | None:
    """A numeric list ('0.4,0.4' -> [0.4, 0.4]), with value_list's rule for elements that are not numbers.

    An element a slicer wrote as a word ('porkchop') is kept as written; one that holds anything
    but ASCII was never a number nor a setting's word, it is bytes that are not text (a file that is
    not UTF-8, read as Latin-1: '1.\xff23'), so the whole value cannot be read: None.
    """
    items = value_list(value)
    if items and any(isinstance(item, str) and not item.isascii() for item in items):
        return None
    return items


def string_list(value) -> list[str] | None:
    if value is None:
        return None
    items = [str(item).strip() for item in value] if isinstance(value, list) else split_list(value)
    return items or None


def parse_duration(value: str | None) -> int | float | None:
    """'1h 31m 17s' -> 5477, '1d 2h' -> 93600, '806s' -> 806, '01:02:03' -> 3723, '451' -> 451."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    plain = parse_number(text)
    if plain is not None:
        return plain if plain >= 0 else None
    match = _HMS.match(text)
    if match:
        hours, minutes, seconds = match.groups()
        return _tidy(int(hours) * 3600 + int(minutes) * 60 + float(seconds))
    factors = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    parts = _DURATION_PART.findall(text)
    if not parts:
        return None
    leftover = _DURATION_PART.sub("", text).strip()
    if leftover:
        return None
    return _tidy(sum(float(amount) * factors[unit.lower()] for amount, unit in parts))


def minutes_to_seconds(value: str | None) -> int | float | None:
    number = parse_number(value)
    return None if number is None else _tidy(round(number * 60, 3))


def _tidy(number: float) -> int | float:
    return int(number) if float(number).is_integer() else number


def resolve_percent(value: str | None, base: float | None) -> int | float | None:
    """'75%' of `base` (None when there is no base); a plain number is returned as is."""
    if value is None:
        return None
    text = value.strip()
    if text.endswith("%"):
        percent = parse_number(text[:-1])
        if percent is None or base is None:
            return None
        return round(base * percent / 100, 6)
    return parse_number(text)


def first_number(text: str | None) -> int | float | None:
    if not text:
        return None
    match = _NUMBER.search(text)
    return parse_number(match.group(0)) if match else None
