"""Bambu Lab LAN protocol: pure functions over report payloads (no network here).

`decode_message` reads one MQTT payload, `apply_message` merges it into the merged
`print` state (printers.md §1.4), `normalise` maps the merged state to the unified state.
"""

from printers.drivers.bambu.codes import error_text, hms_code, print_error_code
from printers.drivers.bambu.merge import BambuReport, apply_message, decode_message
from printers.drivers.bambu.normalise import filament_slots, normalise

__all__ = [
    "BambuReport", "apply_message", "decode_message", "error_text", "filament_slots", "hms_code", "normalise",
    "print_error_code",
]
