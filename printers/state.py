"""The unified, normalised state of one printer, produced by every driver (printers.md §3)."""

import logging
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from django.utils.translation import gettext as _

from printers.choices import ACTIVE_STATES, TERMINAL_STATES, PrinterState
from printers.exceptions import ReportError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NormalisedState:
    state: str
    raw_state: str = ""
    online: bool = True
    progress_percent: float | None = None
    remaining_seconds: int | None = None
    layer: int | None = None
    total_layers: int | None = None
    nozzle_temp_c: float | None = None
    nozzle_target_c: float | None = None
    bed_temp_c: float | None = None
    bed_target_c: float | None = None
    chamber_temp_c: float | None = None
    chamber_target_c: float | None = None
    current_file: str = ""
    # The printer's own id of the current job where it has one (PrusaLink job id, Bambu task_id);
    # empty otherwise. A change of job_key between two active states means a new job.
    job_key: str = ""
    # One entry per slot that holds filament: "slot" (the printer's number; Bambu: AMS unit × 4 + tray, 254 the
    # external spool), "type", "name", "colour" (#RRGGBB, "" unknown), "remaining_percent" (None: unknown),
    # "loaded", and where the driver reads RFID tags "tag": the spool's id in upper-case hex ("" without one).
    filament_slots: list[dict] = field(default_factory=list)
    # The nozzle the printer reports it has (Bambu: "stainless_steel", "hardened_steel",
    # "tungsten_carbide", "high_flow_hardened_steel", ...; "" when it does not say) and its diameter.
    nozzle_type: str = ""
    nozzle_diameter_mm: float | None = None
    # One entry per AMS unit: {"id", "humidity_level" (1 dry … 5 wet), "humidity_percent", "temp_c", "wet"}.
    ams_units: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    reason: str = ""

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    def as_fields(self) -> dict:
        """The values for PrinterLiveState's columns."""
        data = asdict(self)
        data.pop("reason")
        return data


def offline_state(reason: str = "") -> NormalisedState:
    return NormalisedState(state=PrinterState.OFFLINE, online=False, reason=reason)


_unknown_states_logged: set[tuple[str, str, str]] = set()


def unified_state(raw: str, states: Mapping[str, str], *, printer: str, field: str) -> str:
    """The unified state a printer's own state name stands for (`states` maps the names a driver knows).

    A name the driver does not know yet (newer firmware) is shown as busy, and logged once per process.
    """
    state = states.get(raw)
    if state is None:
        if (printer, field, raw) not in _unknown_states_logged:
            _unknown_states_logged.add((printer, field, raw))
            logger.warning("%s printer reported an unknown %s %r; shown as busy.", printer, field, raw)
        state = PrinterState.BUSY
    return state


# --- what the live state means for the filament a printer may take ----------------------------

# Bambu's AMS humidity level, as Bambu Studio and Handy show it: 1 (dry) to 5 (wet); the printer
# sends the index the other way round. Levels 4 and 5 are the two wettest of the five, where
# hygroscopic filament (PA, PETG, TPU, PVA, PC) takes up water within hours and prints stringy or
# brittle: time to dry the spools and change the desiccant. At 3 and below the AMS is fine.
AMS_WET_LEVEL = 4
# Nozzles hard enough for abrasive filament (carbon or glass fibre); stainless steel and brass wear out.
ABRASION_RESISTANT_NOZZLES = ("hardened_steel", "tungsten_carbide")
_ABRASIVE_FILAMENT = re.compile(r"(?<![A-Z])(CF|GF)(?![A-Z])")


def ams_is_wet(humidity_level: int | None) -> bool:
    """True when an AMS's humidity level (1 dry … 5 wet) is AMS_WET_LEVEL or more."""
    return humidity_level is not None and humidity_level >= AMS_WET_LEVEL


def nozzle_takes_abrasive(nozzle_type: str) -> bool | None:
    """Whether a nozzle of this type may print carbon- or glass-fibre filament; None when unknown."""
    if not nozzle_type:
        return None
    return any(kind in nozzle_type for kind in ABRASION_RESISTANT_NOZZLES)


def is_abrasive_filament(filament_type: str) -> bool:
    """Carbon- or glass-fibre filled filament (PA-CF, PETG-CF, PAHT-CF, PA6-GF, "PLA CF", ...)."""
    return bool(_ABRASIVE_FILAMENT.search((filament_type or "").upper()))


def live_warnings(*, nozzle_type: str, filament_slots: list, ams_units: list,
                  configured_nozzle_mm: float | None = None, nozzle_diameter_mm: float | None = None) -> list[str]:
    """What an operator should know about a printer's reported hardware, as sentences (may be empty)."""
    warnings = []
    for unit in ams_units or []:
        if isinstance(unit, dict) and unit.get("wet"):
            percent = f" ({unit['humidity_percent']} %)" if unit.get("humidity_percent") is not None else ""
            warnings.append(_("AMS %(id)s is wet: humidity level %(level)s of 5%(percent)s. Dry the spools and "
                              "change the desiccant.") % {"id": unit.get("id"), "level": unit.get("humidity_level"),
                                                          "percent": percent})
    if nozzle_takes_abrasive(nozzle_type) is False:
        for slot in filament_slots or []:
            if isinstance(slot, dict) and is_abrasive_filament(slot.get("type", "")):
                warnings.append(_("Slot %(slot)s holds abrasive %(type)s, but the nozzle is %(nozzle)s: it needs a "
                                  "hardened steel nozzle.") % {"slot": slot.get("slot"), "type": slot.get("type"),
                                                               "nozzle": nozzle_type.replace("_", " ")})
    if configured_nozzle_mm and nozzle_diameter_mm and abs(float(configured_nozzle_mm) - nozzle_diameter_mm) > 0.001:
        warnings.append(_("The printer reports a %(reported)s mm nozzle; its settings say %(configured)s mm.")
                        % {"reported": f"{nozzle_diameter_mm:g}", "configured": f"{float(configured_nozzle_mm):g}"})
    return warnings


# --- coercion helpers shared by the drivers ------------------------------------------------


def number(value, name: str) -> float | None:
    """A float from an int/float/numeric string; None for None/""; ReportError for anything else."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ReportError(f"{name}: expected a number, got {value!r}.")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ReportError(f"{name}: expected a number, got {value!r}.") from None
    else:
        raise ReportError(f"{name}: expected a number, got {type(value).__name__}.")
    if not math.isfinite(result):
        raise ReportError(f"{name}: expected a finite number, got {value!r}.")
    return result


def integer(value, name: str) -> int | None:
    result = number(value, name)
    return None if result is None else int(result)


def text(value, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise ReportError(f"{name}: expected text, got {type(value).__name__}.")


def mapping(value, name: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ReportError(f"{name}: expected an object, got {type(value).__name__}.")
    return value


def sequence(value, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ReportError(f"{name}: expected a list, got {type(value).__name__}.")
    return value
