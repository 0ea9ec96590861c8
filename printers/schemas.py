from datetime import datetime

from ninja import Schema


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
