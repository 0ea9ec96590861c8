"""Telling running simulated printers what to do, by hand: the control file of `simulate_printers --control`.

Write a JSON object (or a list of them) to the control file; `simulate_printers` reads it within a
second, carries it out, prints what it did and deletes the file:

    {"printer": "all", "fail_at_layer": 3}
    {"printer": "039SIM000000002", "cancel_at_layer": 10}
    {"printer": "prusa:8991", "clear_plate": true}
    [{"printer": "00MSIM000000001", "start": "hello-sign_0.3mm_15pct_PLA_X1Carbon.gcode.3mf"}]

`printer` is a Bambu printer's serial, `prusa:<port>` for a PrusaLink printer, or `all`. Actions:
`fail_at_layer` / `cancel_at_layer` (the job printing, or else the next one), `clear_plate` (a
finished or failed printer is idle again), `start` (a file on the printer's storage).
"""

from __future__ import annotations

import json
from pathlib import Path

ACTIONS = ("fail_at_layer", "cancel_at_layer", "clear_plate", "start")


class ControlError(ValueError):
    """A control entry that cannot be carried out; the message says why."""


def printer_name(printer) -> str:
    serial = getattr(printer, "serial", "")
    return serial if hasattr(printer, "client") else f"prusa:{printer.port}"


def _apply(printer, action: str, value) -> str:
    if action in ("fail_at_layer", "cancel_at_layer"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ControlError(f"{action} takes a layer number from 1, not {value!r}")
        getattr(printer, action)(value)
        return f"{action.replace('_', ' ')} {value}"
    if action == "clear_plate":
        cleared = printer.clear_plate()
        return "plate cleared" if cleared is not False else "nothing to clear"
    if not isinstance(value, str) or not value:
        raise ControlError("start takes the name of a file on the printer")
    if hasattr(printer, "client"):  # Bambu
        started = printer.start_job(value)
    else:
        found = printer.find_file(value)
        if found is None:
            raise ControlError(f"{value!r} is not on the printer")
        try:
            printer.start_print(found.sfn)
        except RuntimeError as exc:
            raise ControlError(str(exc)) from None
        started = True
    if not started:
        raise ControlError("the printer is busy")
    return f"started {value}"


def apply_entries(entries, printers: list) -> list[str]:
    """Carry out control entries on `printers` (Bambu and PrusaLink simulators); one line per action."""
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        raise ControlError("the control file holds a JSON object or a list of objects")
    by_name = {printer_name(printer): printer for printer in printers}
    lines = []
    for entry in entries:
        if not isinstance(entry, dict):
            lines.append(f"skipped {entry!r}: not an object")
            continue
        target = str(entry.get("printer", "all"))
        chosen = list(printers) if target == "all" else [by_name[target]] if target in by_name else []
        actions = [action for action in ACTIONS if action in entry]
        if not chosen:
            lines.append(f"{target}: no such printer ({', '.join(sorted(by_name)) or 'none running'})")
            continue
        if not actions:
            lines.append(f"{target}: nothing to do (one of {', '.join(ACTIONS)})")
            continue
        for printer in chosen:
            for action in actions:
                try:
                    lines.append(f"{printer_name(printer)}: {_apply(printer, action, entry[action])}")
                except ControlError as exc:
                    lines.append(f"{printer_name(printer)}: {action} refused: {exc}")
    return lines


def read_and_apply(path: Path, printers: list) -> list[str]:
    """If the control file exists: carry it out and delete it. Returns what was done (or why not)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    path.unlink(missing_ok=True)
    try:
        return apply_entries(json.loads(text), printers)
    except (ValueError, ControlError) as exc:
        return [f"control file {path}: {exc}"]
