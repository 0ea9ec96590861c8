"""Merged Bambu `print` state → the unified NormalisedState (printers.md §1.4–1.6, §3)."""

import logging
import re
from pathlib import PurePosixPath

from printers.choices import PrinterState
from printers.exceptions import ReportError
from printers.state import NormalisedState, ams_is_wet, integer, mapping, number, sequence, text, unified_state

from .codes import CANCEL_PRINT_ERROR, USER_ACTION_HMS, error_text, hms_code, hms_severity, hms_short, print_error_code
from .merge import MEMO_KEY

logger = logging.getLogger(__name__)

GCODE_STATES = {
    "IDLE": PrinterState.IDLE,
    "PREPARE": PrinterState.PREPARING,
    "SLICING": PrinterState.PREPARING,
    "RUNNING": PrinterState.PRINTING,
    "PAUSE": PrinterState.PAUSED,
    "FINISH": PrinterState.FINISHED,
    "FAILED": PrinterState.FAILED,
    "INIT": PrinterState.BUSY,
    "OFFLINE": PrinterState.OFFLINE,
}
# stg_cur values of a PAUSE that the printer decided on and an operator must resolve (ha-bambulab
# CURRENT_STAGE_IDS): filament runout, front cover falling, nozzle/bed temperature malfunction,
# skipped step, AMS lost, first layer error, nozzle clog, and the other "paused due to" stages.
PAUSE_REASON_STAGES = frozenset({6, 17, 20, 21, 23, 24, 26, 27, 30, 34, 35, 36, 37, 38, 39, 40})
STAGE_NAMES = {
    6: "filament runout", 16: "paused by user", 17: "front cover falling", 20: "nozzle temperature malfunction",
    21: "heat bed temperature malfunction", 23: "skipped step", 26: "AMS lost", 34: "first layer error",
    35: "nozzle clog", 77: "preparing AMS",
}
ATTENTION_HMS_STATES = {"IDLE", "PREPARE", "SLICING", "RUNNING", "PAUSE"}
NO_CHAMBER_SENSOR = 5.0
HEX_COLOUR = re.compile(r"^[0-9A-Fa-f]{6}([0-9A-Fa-f]{2})?$")
RFID = re.compile(r"^[0-9A-F]{8,64}$")
EXTERNAL_TRAY = 254
NO_TRAY = 255
# device.nozzle.info[].type codes of newer firmware (e.g. "HX01"): the 2nd letter is the flow
# (U: TPU high flow; H/E: high flow), the last two digits the material (ha-bambulab's reading).
NOZZLE_MATERIALS = {"00": "stainless_steel", "01": "hardened_steel", "05": "tungsten_carbide"}


def _colour(value) -> str:
    value = text(value, "tray_color")
    return f"#{value[:6].upper()}" if HEX_COLOUR.match(value) else ""


def _bits(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    try:
        return int(text(value, name), 16)
    except ValueError:
        raise ReportError(f"{name}: expected a hex bitmask, got {value!r}.") from None


def _presence_bit(ams_id: int, tray_id: int) -> int:
    # AMS 0–3 own bits 0–15 (4 trays each); AMS HT units (ids 128+) own bits 16+ (one tray each).
    return 16 + (ams_id - 128) + tray_id if ams_id >= 128 else ams_id * 4 + tray_id


def _tag(tray: dict) -> str:
    """The RFID identity of the tray's spool: its `tray_uuid` (the spool's own id, the same on both of
    a Bambu spool's tags), else the `tag_uid` of the tag the AMS read; "" for a spool without a tag (all
    zeros) or a value that is no hex id."""
    for key in ("tray_uuid", "tag_uid"):
        value = tray.get(key)
        value = value.strip().upper() if isinstance(value, str) else ""
        if RFID.match(value) and value.strip("0"):
            return value
    return ""


def _slot(tray: dict, *, ams: int | None, tray_id: int, global_id: int, loaded: int | None) -> dict:
    # The printer measures what is left only on AMS trays with a Bambu RFID spool: -1 is unknown, and
    # the external spool reports 0 because nothing measures it there: unknown too, not empty.
    remain = integer(tray.get("remain"), "tray remain")
    if global_id == EXTERNAL_TRAY and remain == 0:
        remain = None
    return {
        "ams": ams,
        "tray": tray_id,
        "slot": global_id,
        "type": text(tray.get("tray_type"), "tray_type"),
        "name": text(tray.get("tray_sub_brands"), "tray_sub_brands"),
        "colour": _colour(tray.get("tray_color")),
        "remaining_percent": remain if remain is not None and 0 <= remain <= 100 else None,
        "loaded": loaded == global_id,
        "tag": _tag(tray),
    }


def filament_slots(print_state: dict) -> list[dict]:
    """AMS trays and the external spool → filament slots (only slots that hold filament)."""
    ams_block = mapping(print_state.get("ams"), "ams")
    loaded = integer(ams_block.get("tray_now"), "ams.tray_now")
    exist_bits = _bits(ams_block.get("tray_exist_bits"), "ams.tray_exist_bits")
    slots = []
    for unit in sequence(ams_block.get("ams"), "ams.ams"):
        unit = mapping(unit, "ams unit")
        ams_id = integer(unit.get("id"), "ams unit id")
        if ams_id is None:
            raise ReportError("ams unit without an id.")
        for tray in sequence(unit.get("tray"), f"ams {ams_id} tray"):
            tray = mapping(tray, "ams tray")
            tray_id = integer(tray.get("id"), "ams tray id")
            if tray_id is None:
                raise ReportError(f"ams {ams_id}: tray without an id.")
            present = bool(text(tray.get("tray_type"), "tray_type"))
            if exist_bits is not None:
                present = present and bool(exist_bits >> _presence_bit(ams_id, tray_id) & 1)
            if present:
                global_id = ams_id + tray_id if ams_id >= 128 else ams_id * 4 + tray_id
                slots.append(_slot(tray, ams=ams_id, tray_id=tray_id, global_id=global_id, loaded=loaded))
    external = print_state.get("vt_tray")
    if external is not None:
        external = mapping(external, "vt_tray")
        if text(external.get("tray_type"), "vt_tray.tray_type"):
            slots.append(_slot(external, ams=None, tray_id=EXTERNAL_TRAY, global_id=EXTERNAL_TRAY, loaded=loaded))
    return slots


def ams_units(print_state: dict) -> list[dict]:
    """Each AMS unit's humidity and temperature (printers.md §1.4 rule 6).

    The printer's `humidity` is an index from 1 (wettest) to 5 (driest); Bambu Studio and Handy
    show it the other way round, as a level from 1 (dry) to 5 (wet), and so does `humidity_level`
    here. `humidity_raw` (newer firmware) is the relative humidity in %. `temp` "0.0" means no
    sensor (AMS Lite, older AMS firmware). Values outside a sensible range (an AMS powering up
    sends some) are unknown (None). `wet`: see `printers.state.ams_is_wet`.
    """
    ams_block = mapping(print_state.get("ams"), "ams")
    units = []
    for unit in sequence(ams_block.get("ams"), "ams.ams"):
        unit = mapping(unit, "ams unit")
        ams_id = integer(unit.get("id"), "ams unit id")
        index = integer(unit.get("humidity"), "ams humidity")
        percent = integer(unit.get("humidity_raw"), "ams humidity_raw")
        temperature = number(unit.get("temp"), "ams temp")
        level = 6 - index if index is not None and 1 <= index <= 5 else None
        percent = percent if percent is not None and 1 <= percent <= 100 else None
        units.append({
            "id": ams_id,
            "humidity_level": level,
            "humidity_percent": percent,
            "temp_c": temperature if temperature is not None and 0 < temperature <= 100 else None,
            "wet": ams_is_wet(level),
        })
    return units


def _nozzle_from_code(code: str) -> str:
    code = code.strip().upper()
    if len(code) < 4:
        return ""
    if code[1] == "U":
        return "tpu_high_flow"
    material = NOZZLE_MATERIALS.get(code[2:4])
    if material is None:
        return ""
    return f"high_flow_{material}" if code[1] in ("H", "E") else material


def nozzle(print_state: dict) -> tuple[str, float | None]:
    """(nozzle type, nozzle diameter in mm) of the printer's (first) nozzle; ("", None) when unknown.

    Newer firmware describes each nozzle in `device.nozzle.info[]` (type code and diameter) and
    keeps the older top-level `nozzle_type` / `nozzle_diameter` only for compatibility (an H2D
    reports "stainless_steel" there while its nozzles are hardened steel); read the new block
    first, like ha-bambulab.
    """
    device = mapping(print_state.get("device"), "device")
    nozzle_block = device.get("nozzle")
    entries = nozzle_block.get("info") if isinstance(nozzle_block, dict) else None
    kind, diameter = "", None
    if isinstance(entries, list):
        first = next((entry for entry in entries if isinstance(entry, dict) and entry.get("id") in (0, "0")), None)
        if first is not None:
            kind = _nozzle_from_code(text(first.get("type"), "device.nozzle.info.type"))
            diameter = number(first.get("diameter"), "device.nozzle.info.diameter")
    kind = kind or text(print_state.get("nozzle_type"), "nozzle_type").strip().lower()
    if diameter is None:
        diameter = number(print_state.get("nozzle_diameter"), "nozzle_diameter")
    if kind in ("", "unknown", "undefine", "none"):
        kind = ""
    return kind[:40], diameter if diameter is not None and 0 < diameter <= 2 else None


def _errors(print_state: dict) -> tuple[list[dict], bool]:
    """Readable errors, and whether one of them is serious enough to need an operator."""
    errors, serious = [], False
    for entry in sequence(print_state.get("hms"), "hms"):
        entry = mapping(entry, "hms entry")
        attr, code = integer(entry.get("attr"), "hms attr"), integer(entry.get("code"), "hms code")
        if attr is None or code is None:
            raise ReportError("hms entry: attr and code are required.")
        if hms_short(attr, code) in USER_ACTION_HMS:
            continue
        full, severity = hms_code(attr, code), hms_severity(code)
        serious = serious or severity in ("fatal", "serious")
        errors.append({"source": "hms", "code": full, "severity": severity,
                       "text": error_text(full, module=attr >> 24, severity=severity)})
    print_error = integer(print_state.get("print_error"), "print_error") or 0
    if print_error:
        code = print_error_code(print_error)
        errors.append({"source": "print_error", "code": code, "severity": "",
                       "text": error_text(code, module=print_error >> 24)})
    return errors, serious


def _file_name(print_state: dict) -> str:
    name = text(print_state.get("subtask_name"), "subtask_name").strip()
    if name:
        return name
    return PurePosixPath(text(print_state.get("gcode_file"), "gcode_file")).name


def normalise(print_state: dict) -> NormalisedState | None:
    """The unified state; None while no report has said which gcode_state the printer is in."""
    raw = text(print_state.get("gcode_state"), "gcode_state").strip().upper()
    if not raw:
        return None
    state = unified_state(raw, GCODE_STATES, printer="Bambu", field="gcode_state")
    stage = integer(print_state.get("stg_cur"), "stg_cur")
    errors, serious = _errors(print_state)
    reason = STAGE_NAMES.get(stage, "") if stage is not None else ""
    print_error = integer(print_state.get("print_error"), "print_error") or 0
    memo = print_state.get(MEMO_KEY) or {}

    if raw == "PAUSE" and stage in PAUSE_REASON_STAGES:
        state = PrinterState.NEEDS_ATTENTION
    elif serious and raw in ATTENTION_HMS_STATES:
        state = PrinterState.NEEDS_ATTENTION
        reason = next(e["text"] for e in errors if e["severity"] in ("fatal", "serious"))
    elif raw == "FAILED" and (memo.get("cancel_seen") or print_error == CANCEL_PRINT_ERROR):
        state = PrinterState.CANCELLED
        reason = "cancelled by the user"

    remaining_minutes = number(print_state.get("mc_remaining_time"), "mc_remaining_time")
    chamber = number(print_state.get("chamber_temper"), "chamber_temper")
    if chamber == NO_CHAMBER_SENSOR:
        chamber = None
    if chamber is None:
        device = mapping(print_state.get("device"), "device")
        ctc = mapping(device.get("ctc"), "device.ctc")
        chamber = number(mapping(ctc.get("info"), "device.ctc.info").get("temp"), "device.ctc.info.temp")
    task_id = text(print_state.get("task_id"), "task_id").strip()
    with_job = raw not in ("IDLE", "")
    nozzle_type, nozzle_diameter = nozzle(print_state)
    return NormalisedState(
        state=state,
        raw_state=raw,
        progress_percent=number(print_state.get("mc_percent"), "mc_percent"),
        remaining_seconds=None if remaining_minutes is None else max(0, int(remaining_minutes * 60)),
        layer=integer(print_state.get("layer_num"), "layer_num"),
        total_layers=integer(print_state.get("total_layer_num"), "total_layer_num"),
        nozzle_temp_c=number(print_state.get("nozzle_temper"), "nozzle_temper"),
        nozzle_target_c=number(print_state.get("nozzle_target_temper"), "nozzle_target_temper"),
        bed_temp_c=number(print_state.get("bed_temper"), "bed_temper"),
        bed_target_c=number(print_state.get("bed_target_temper"), "bed_target_temper"),
        chamber_temp_c=chamber,
        current_file=_file_name(print_state) if with_job else "",
        job_key=task_id if with_job and task_id not in ("", "0") else "",
        filament_slots=filament_slots(print_state),
        nozzle_type=nozzle_type,
        nozzle_diameter_mm=nozzle_diameter,
        ams_units=ams_units(print_state),
        errors=errors,
        reason=reason,
    )
