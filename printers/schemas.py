from datetime import datetime
from typing import Literal

from ninja import Field, Schema
from pydantic import ConfigDict, model_validator

from printers.state import nozzle_takes_abrasive


class AmsUnitOut(Schema):
    """One AMS unit of a Bambu printer as it last reported."""

    id: int | None
    humidity_level: int | None = Field(
        None, description="1 (dry) to 5 (wet), as Bambu Studio shows it; null when unknown.")
    humidity_percent: int | None = Field(None, description="Relative humidity in %, where the AMS measures it.")
    temp_c: float | None = Field(None, description="Temperature inside the AMS; null without a sensor.")
    wet: bool = Field(False, description="Humidity level 4 or 5: the spools need drying.")


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
    state: str
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

    @staticmethod
    def resolve_state(obj) -> str:
        live = getattr(obj, "live", None)
        return live.state if live else "offline"

    @staticmethod
    def resolve_online(obj) -> bool:
        live = getattr(obj, "live", None)
        return bool(live and live.online)

    @staticmethod
    def resolve_progress_percent(obj):
        live = getattr(obj, "live", None)
        return live.progress_percent if live else None

    @staticmethod
    def resolve_remaining_seconds(obj):
        live = getattr(obj, "live", None)
        return live.remaining_seconds if live else None

    @staticmethod
    def resolve_current_file(obj) -> str:
        live = getattr(obj, "live", None)
        return live.current_file if live else ""

    @staticmethod
    def resolve_last_report_at(obj):
        live = getattr(obj, "live", None)
        return live.last_report_at if live else None

    @staticmethod
    def resolve_nozzle_type(obj) -> str:
        live = getattr(obj, "live", None)
        return live.nozzle_type if live else ""

    @staticmethod
    def resolve_reported_nozzle_diameter_mm(obj):
        live = getattr(obj, "live", None)
        return live.nozzle_diameter_mm if live else None

    @staticmethod
    def resolve_nozzle_takes_abrasive(obj):
        live = getattr(obj, "live", None)
        return nozzle_takes_abrasive(live.nozzle_type) if live else None

    @staticmethod
    def resolve_ams(obj) -> list[dict]:
        live = getattr(obj, "live", None)
        return [unit for unit in (live.ams_units if live else []) or [] if isinstance(unit, dict)]


class PrinterJobOut(Schema):
    id: int
    file_name: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str
    progress_reached: float
    duration_seconds: int | None


class StateTransitionOut(Schema):
    id: int
    from_state: str
    to_state: str
    at: datetime
    reason: str


class PrinterCommandIn(Schema):
    """`light` needs `on` (true: on, false: off); the other actions take nothing else."""

    action: Literal["pause", "resume", "stop", "light"]
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
    action: str
    light_on: bool | None
    status: str
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
