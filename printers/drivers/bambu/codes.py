"""Readable texts for Bambu HMS and print_error codes (printers.md §1.4–1.6, §1.8).

Only the codes the reference documents get a sentence; any other code keeps its hex
form and gets a generic text naming its module and severity.
"""

CANCEL_PRINT_ERROR = 0x0300400C  # 50348044, "The task was canceled"

# Keyed by the 8-hex-digit short form XXXX_XXXX (print_error, or the last half of an HMS code
# combined with its module), and by full HMS codes.
KNOWN_TEXTS = {
    "0300_400C": "The task was canceled.",
    "0500_400E": "The print was canceled (echo of a user cancel).",
    "0500_4004": "Device is busy: a new job was refused while another is running.",
    "0700_8006": "The AMS cannot feed filament.",
    "HMS_0500_0500_0001_0007": (
        "MQTT command verification failed: the printer requires signed commands. "
        "Enable LAN Only mode and Developer Mode on the printer."
    ),
}

# HMS codes that a user action (a cancel) raises; they are not faults.
USER_ACTION_HMS = {"0300_400C", "0500_400E"}

MODULES = {
    0x03: "Motion controller",
    0x05: "Mainboard",
    0x07: "AMS",
    0x08: "Toolhead",
    0x0C: "Camera (xcam)",
}

SEVERITIES = {1: "fatal", 2: "serious", 3: "common", 4: "info"}


def print_error_code(value: int) -> str:
    """50348044 → '0300_400C'."""
    hexed = f"{value & 0xFFFFFFFF:08X}"
    return f"{hexed[:4]}_{hexed[4:]}"


def hms_code(attr: int, code: int) -> str:
    """attr 201327360, code 196615 → 'HMS_0C00_0300_0003_0007'."""
    return f"HMS_{attr >> 16 & 0xFFFF:04X}_{attr & 0xFFFF:04X}_{code >> 16 & 0xFFFF:04X}_{code & 0xFFFF:04X}"


def hms_severity(code: int) -> str:
    return SEVERITIES.get(code >> 16 & 0xFFFF, "unknown")


def hms_short(attr: int, code: int) -> str:
    """The module + error half, comparable with print_error codes ('0300_400C')."""
    return f"{attr >> 16 & 0xFFFF:04X}_{code & 0xFFFF:04X}"


def error_text(code: str, *, module: int | None = None, severity: str = "") -> str:
    if code in KNOWN_TEXTS:
        return KNOWN_TEXTS[code]
    if code.startswith("HMS_"):
        parts = code.split("_")
        short = f"{parts[1]}_{parts[4]}"
        if short in KNOWN_TEXTS:
            return KNOWN_TEXTS[short]
    where = MODULES.get(module, f"Module 0x{module:02X}") if module is not None else "Printer"
    level = f" ({severity})" if severity and severity != "unknown" else ""
    return f"{where} reported error {code}{level}; see the Bambu Lab wiki for this code."
