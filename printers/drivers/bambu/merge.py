"""Decode Bambu MQTT payloads and merge partial reports into one full `print` state (printers.md §1.4).

Rules:
1. objects merge recursively: an absent key leaves the old value;
2. `ams.ams[]` merges by unit `id`, and each unit's `tray[]` by tray `id`; a tray that
   carries nothing but its id (and maybe `state`) is an empty slot and replaces the old tray;
   a full report (`msg` 0) drops units it does not list;
3. every other list is a whole value and is replaced (`hms`, `lights_report`, `s_obj`, `stg`, ...);
4. scalars overwrite;
5. only `push_status` reports are merged; acks of our commands are returned separately.

A message that cannot be decoded, is not an object, or would leave a state that does not
normalise raises ReportError and leaves the merged state untouched.
"""

import copy
import json
from dataclasses import dataclass, field

from printers.exceptions import ReportError

from .codes import CANCEL_PRINT_ERROR

MAX_PAYLOAD_BYTES = 1024 * 1024
ACTIVE_GCODE_STATES = {"PREPARE", "SLICING", "RUNNING", "PAUSE"}
# Our own bookkeeping inside the merged state (never sent by printers).
MEMO_KEY = "_fablab"


def decode_message(payload: bytes | str) -> dict:
    """One MQTT payload → a dict with one category key. ReportError with a clear reason otherwise."""
    if isinstance(payload, bytes | bytearray):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ReportError(f"Report too large ({len(payload)} bytes).")
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ReportError(f"Report is not valid UTF-8 (byte {exc.start}: {exc.reason}).") from None
    try:
        message = json.loads(payload)
    except (json.JSONDecodeError, RecursionError) as exc:
        detail = f"line {exc.lineno} column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ReportError(f"Report is not valid JSON ({detail or 'nested too deeply'}).") from None
    if not isinstance(message, dict):
        raise ReportError(f"Report must be a JSON object, got {type(message).__name__}.")
    for category, body in message.items():
        if not isinstance(body, dict):
            raise ReportError(f"Report category {category!r} must be an object, got {type(body).__name__}.")
    return message


def _merge_dict(old: dict, new: dict) -> dict:
    result = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merge_dict(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def _is_empty_tray(tray: dict) -> bool:
    return set(tray) <= {"id", "state"}


def _merge_by_id(old_items: list, new_items: list, *, name: str, merge_item, drop_missing: bool) -> list:
    for item in new_items:
        if not isinstance(item, dict) or "id" not in item:
            raise ReportError(f"{name}: every entry must be an object with an id.")
    old_by_id = {str(item.get("id")): item for item in old_items if isinstance(item, dict)}
    merged = []
    seen = set()
    for item in new_items:
        key = str(item["id"])
        seen.add(key)
        merged.append(merge_item(old_by_id[key], item) if key in old_by_id else copy.deepcopy(item))
    if not drop_missing:
        merged = [old for key, old in old_by_id.items() if key not in seen] + merged
        merged.sort(key=lambda item: _sort_id(item.get("id")))
    return merged


def _sort_id(value) -> tuple:
    try:
        return (0, int(value))
    except (TypeError, ValueError):
        return (1, str(value))


def _merge_tray(old: dict, new: dict) -> dict:
    if _is_empty_tray(new):
        return copy.deepcopy(new)
    return _merge_dict(old, new)


def _merge_ams(old_ams: dict, new_ams: dict, *, full: bool) -> dict:
    units_new = new_ams.get("ams")
    result = _merge_dict(old_ams, {k: v for k, v in new_ams.items() if k != "ams"})
    if units_new is None:
        return result
    if not isinstance(units_new, list):
        raise ReportError(f"ams.ams: expected a list, got {type(units_new).__name__}.")

    def merge_unit(old_unit: dict, new_unit: dict) -> dict:
        trays_new = new_unit.get("tray")
        unit = _merge_dict(old_unit, {k: v for k, v in new_unit.items() if k != "tray"})
        if trays_new is not None:
            if not isinstance(trays_new, list):
                raise ReportError(f"ams unit {new_unit.get('id')}: tray must be a list.")
            unit["tray"] = _merge_by_id(
                old_unit.get("tray") or [], trays_new, name="ams tray", merge_item=_merge_tray, drop_missing=full
            )
        return unit

    old_units = old_ams.get("ams") if isinstance(old_ams.get("ams"), list) else []
    result["ams"] = _merge_by_id(old_units, units_new, name="ams.ams", merge_item=merge_unit, drop_missing=full)
    return result


def merge_print(old: dict, new: dict) -> dict:
    """Merge one `print` body into the merged state; returns a new dict, `old` is not modified."""
    full = new.get("msg") == 0
    result = _merge_dict(old, {k: v for k, v in new.items() if k != "ams"})
    if "ams" in new:
        if not isinstance(new["ams"], dict):
            raise ReportError(f"ams: expected an object, got {type(new['ams']).__name__}.")
        old_ams = old.get("ams") if isinstance(old.get("ams"), dict) else {}
        result["ams"] = _merge_ams(old_ams, new["ams"], full=full)

    # Remember a user cancel (print_error 0x0300400C) until the next job starts: the printer
    # clears print_error a few seconds after reporting FAILED.
    memo = dict(old.get(MEMO_KEY) or {})
    before, after = old.get("gcode_state"), result.get("gcode_state")
    if after in ACTIVE_GCODE_STATES and before not in ACTIVE_GCODE_STATES:
        memo["cancel_seen"] = False
    if new.get("print_error") == CANCEL_PRINT_ERROR:
        memo["cancel_seen"] = True
    result[MEMO_KEY] = memo
    return result


@dataclass
class ApplyResult:
    kind: str  # "status" (merged), "ack" (reply to a command), "version" (get_version), "other"
    message: dict = field(default_factory=dict)


def apply_message(merged: dict, message: dict) -> tuple[dict, ApplyResult]:
    """Apply one decoded message; returns (new merged `print` state, what it was)."""
    from .normalise import normalise

    body = message.get("print")
    if body is None:
        if "info" in message and message["info"].get("command") == "get_version":
            return merged, ApplyResult("version", message["info"])
        return merged, ApplyResult("other", message)
    if not isinstance(body, dict):
        raise ReportError(f"Report category 'print' must be an object, got {type(body).__name__}.")
    command = body.get("command", "push_status")
    if command != "push_status":
        return merged, ApplyResult("ack", body)
    candidate = merge_print(merged, body)
    normalise(candidate)  # raises ReportError when the merged state would not be readable
    return candidate, ApplyResult("status", body)


class BambuReport:
    """The merged report state of one printer; feed it raw payloads in arrival order."""

    def __init__(self) -> None:
        self.print: dict = {}
        self.version: dict = {}

    def feed(self, payload: bytes | str | dict) -> ApplyResult:
        message = payload if isinstance(payload, dict) else decode_message(payload)
        self.print, result = apply_message(self.print, message)
        if result.kind == "version":
            self.version = result.message
        return result

    def reset(self) -> None:
        """Forget the merged state (e.g. after a reconnect, before the next pushall)."""
        self.print = {}

    def normalised(self):
        from .normalise import normalise

        return normalise(self.print)
