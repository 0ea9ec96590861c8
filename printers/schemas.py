from collections.abc import Callable
from datetime import datetime
from operator import attrgetter

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from fablab.api_types import choice
from printers.choices import CommandAction, CommandStatus, JobOutcome, PrinterState
from printers.state import nozzle_takes_abrasive


class AmsUnitOut(Schema):
    """One AMS unit of a Bambu printer as it last reported."""

    id: int | None
    humidity_level: int | None = Field(
        None, description="1 (dry) to 5 (wet), as Bambu Studio shows it; null when unknown.")
    humidity_percent: int | None = Field(None, description="Relative humidity in %, where the AMS measures it.")
    temp_c: float | None = Field(None, description="Temperature inside the AMS; null without a sensor.")
    wet: bool = Field(False, description="Humidity level 4 or 5: the spools need drying.")


def _from_live(read: Callable, default=None) -> staticmethod:
    """A resolver of a value from the printer's live state (`read(live)`); `default` until it has reported."""

    def resolve(obj):
        live = getattr(obj, "live", None)
        return read(live) if live else default

    return staticmethod(resolve)


class PrinterOut(Schema):
    """What a partner may see of a shared printer: never its address, serial or credentials."""

    id: int
    name: str
    driver: str
    model: str
    location: str
    nozzle_diameter_mm: float
    bed_x_mm: int
    bed_y_mm: int
    bed_z_mm: int
    state: choice(PrinterState)
    online: bool
    progress_percent: float | None
    remaining_seconds: int | None
    current_file: str
    last_report_at: datetime | None
    nozzle_type: str = Field(description="The nozzle the printer reports (e.g. hardened_steel, stainless_steel); "
                                         "empty when it does not say.")
    reported_nozzle_diameter_mm: float | None = Field(description="The nozzle diameter the printer reports.")
    nozzle_takes_abrasive: bool | None = Field(
        description="Whether carbon- or glass-fibre filament may go to this nozzle; null when unknown.")
    ams: list[AmsUnitOut]

    resolve_state = _from_live(attrgetter("state"), "offline")
    resolve_online = _from_live(lambda live: bool(live.online), False)
    resolve_progress_percent = _from_live(attrgetter("progress_percent"))
    resolve_remaining_seconds = _from_live(attrgetter("remaining_seconds"))
    resolve_current_file = _from_live(attrgetter("current_file"), "")
    resolve_last_report_at = _from_live(attrgetter("last_report_at"))
    resolve_nozzle_type = _from_live(attrgetter("nozzle_type"), "")
    resolve_reported_nozzle_diameter_mm = _from_live(attrgetter("nozzle_diameter_mm"))
    resolve_nozzle_takes_abrasive = _from_live(lambda live: nozzle_takes_abrasive(live.nozzle_type))
    resolve_ams = _from_live(lambda live: [unit for unit in live.ams_units or [] if isinstance(unit, dict)], ())


class PrinterJobOut(Schema):
    id: int
    file_name: str
    started_at: datetime
    ended_at: datetime | None
    outcome: choice(JobOutcome)
    progress_reached: float
    duration_seconds: int | None


class StateTransitionOut(Schema):
    id: int
    from_state: choice(PrinterState)
    to_state: choice(PrinterState)
    at: datetime
    reason: str


class PrinterCommandIn(Schema):
    """`light` needs `on` (true: on, false: off); the other actions take nothing else."""

    action: choice(CommandAction, CommandAction.PAUSE, CommandAction.RESUME, CommandAction.STOP, CommandAction.LIGHT)
    on: bool | None = None

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="after")
    def _light_needs_on(self):
        if self.action == "light" and self.on is None:
            raise ValueError("light needs on: true or false")
        if self.action != "light" and self.on is not None:
            raise ValueError("only light takes on")
        return self


class PrinterCommandOut(Schema):
    """A command and how far it got: pending → sent → succeeded / failed, or expired when nobody took it."""

    id: int
    printer_id: int
    action: choice(CommandAction)
    light_on: bool | None
    status: choice(CommandStatus)
    error: str
    created_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_light_on(obj):
        mode = (obj.params or {}).get("mode")
        return None if mode is None else mode == "on"

    @staticmethod
    def resolve_error(obj) -> str:
        host = obj.printer.host
        return obj.error.replace(host, obj.printer.name) if host else obj.error
