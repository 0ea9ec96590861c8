"""The unified, normalised state of one printer, produced by every driver (printers.md §3)."""

import math
from dataclasses import asdict, dataclass, field

from printers.choices import ACTIVE_STATES, TERMINAL_STATES, PrinterState
from printers.exceptions import ReportError


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
    filament_slots: list[dict] = field(default_factory=list)
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
