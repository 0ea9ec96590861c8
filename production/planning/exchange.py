"""The planner's exchange format: an instance (JSON in) and a plan (JSON out).

Instance::

    {"now": "2025-03-03T08:00:00+01:00",
     "timezone": "Europe/Berlin",                    # optional, see below
     "changeover_s": 900,                            # optional, default 0
     "shifts": [{"weekday": 0, "start": "07:00", "end": "19:00"}],   # empty or absent: always staffed
     "holidays": ["2025-04-18"],                     # optional: dates without any shift
     "printers": [{"id": "x1c-1", "available_at": "2025-03-03T09:30:00+01:00", "family": "PLA black"}],
     "jobs": [{"id": "job-7", "durations_s": {"x1c-1": 5400}, "family": "PLA black",
               "due": "2025-03-04T12:00:00+01:00", "weight": 2}]}

- a job may run only on the printers named in its `durations_s`, for that many seconds there
  (a fraction of a second counts as a whole one);
- consecutive jobs of different `family` on one printer need `changeover_s` between them; a
  printer's first job needs a changeover only if the printer has a `family` and the job's differs;
- a job may only *start* inside a shift (weekday 0 = Monday; `start` <= start < `end`, local time;
  an `end` at or before `start` runs past midnight into the next day; `"24:00"` is midnight), once
  the printer is available and not before `now`; it may run on outside the shift;
- local time is the instance's `timezone` (an IANA name); without one, the UTC offset of `now`;
- optional fields: `changeover_s` 0, `shifts` [], `holidays` [], a printer's `available_at` now
  and `family` none, a job's `family` "" (all alike), `due` null (never late), `weight` 1.

Plan::

    {"assignments": [{"job": id, "printer": id, "start": iso8601, "end": iso8601}],
     "makespan_s": number, "weighted_lateness_s": number, "late_jobs": int,
     "lower_bound_makespan_s": number, "solver": "cp-sat" | "local-search" | "greedy", "seconds": number}

`makespan_s` counts from `now` to the last end; `weighted_lateness_s` is the sum over jobs of
weight × seconds past due. Times in a plan are UTC.

Every problem in an instance is reported at once, each with where it is
(`jobs[3].durations_s.p9: ...`), through `InstanceError`.
"""

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext as _

from fablab.exceptions import InvalidInput

MAX_DURATION_S = 30 * 24 * 3600
MAX_CHANGEOVER_S = 24 * 3600
MAX_WEIGHT = 1_000_000
MAX_JOBS = 5000
MAX_PRINTERS = 1000
MAX_ID_LENGTH = 200
MAX_ERRORS = 50
# Times further than this from `now` are refused (a typo in a year, not a plan).
MAX_TIME_OFFSET = timedelta(days=3 * 366)

_CLOCK = re.compile(r"^(\d{2}):(\d{2})$")


class InstanceError(InvalidInput):
    """The instance cannot be planned; `errors` lists every problem found, each with its place."""

    code = "planning-instance"
    title = "Invalid planning instance"

    def __init__(self, errors: list[str]):
        self.errors = errors
        shown = errors[:MAX_ERRORS]
        message = "\n".join(shown)
        if len(errors) > len(shown):
            message += "\n" + _("… and %(count)s more problems.") % {"count": len(errors) - len(shown)}
        super().__init__(message, extra={"errors": shown})


@dataclass(frozen=True)
class Shift:
    weekday: int
    start: time
    end: time | None  # None: midnight at the end of the day ("24:00")

    @property
    def start_text(self) -> str:
        return self.start.strftime("%H:%M")

    @property
    def end_text(self) -> str:
        return "24:00" if self.end is None else self.end.strftime("%H:%M")

    @property
    def overnight(self) -> bool:
        return self.end is not None and self.end <= self.start


@dataclass(frozen=True)
class Printer:
    id: str
    available_at: datetime
    family: str | None = None


@dataclass(frozen=True)
class Job:
    id: str
    durations_s: dict[str, float]
    family: str = ""
    due: datetime | None = None
    weight: float = 1.0


@dataclass(frozen=True)
class Instance:
    now: datetime
    printers: list[Printer]
    jobs: list[Job]
    changeover_s: float = 0
    shifts: list[Shift] = field(default_factory=list)
    holidays: list[date] = field(default_factory=list)
    timezone: str | None = None

    @property
    def tzinfo(self):
        """The time zone shift times are read in."""
        if self.timezone:
            return ZoneInfo(self.timezone)
        return timezone(self.now.utcoffset())

    def to_dict(self) -> dict:
        data = {
            "now": self.now.isoformat(),
            "changeover_s": self.changeover_s,
            "shifts": [{"weekday": s.weekday, "start": s.start_text, "end": s.end_text} for s in self.shifts],
            "printers": [],
            "jobs": [],
        }
        if self.timezone:
            data["timezone"] = self.timezone
        if self.holidays:
            data["holidays"] = [day.isoformat() for day in self.holidays]
        for printer in self.printers:
            item = {"id": printer.id, "available_at": printer.available_at.isoformat()}
            if printer.family is not None:
                item["family"] = printer.family
            data["printers"].append(item)
        for job in self.jobs:
            data["jobs"].append({
                "id": job.id, "durations_s": dict(job.durations_s), "family": job.family,
                "due": job.due.isoformat() if job.due else None, "weight": job.weight,
            })
        return data


@dataclass(frozen=True)
class Assignment:
    job: str
    printer: str
    start: datetime
    end: datetime


@dataclass
class Plan:
    assignments: list[Assignment]
    makespan_s: float
    weighted_lateness_s: float
    late_jobs: int
    lower_bound_makespan_s: float
    solver: str
    seconds: float

    def to_dict(self) -> dict:
        return {
            "assignments": [
                {"job": a.job, "printer": a.printer, "start": format_time(a.start), "end": format_time(a.end)}
                for a in self.assignments
            ],
            "makespan_s": self.makespan_s,
            "weighted_lateness_s": self.weighted_lateness_s,
            "late_jobs": self.late_jobs,
            "lower_bound_makespan_s": self.lower_bound_makespan_s,
            "solver": self.solver,
            "seconds": self.seconds,
        }


def format_time(moment: datetime) -> str:
    """UTC, whole seconds where the time has no fraction, with a Z."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- reading JSON ----------------------------------------------------------------------------------


def _refuse_constant(name: str):
    raise ValueError(_("%(name)s is not a number JSON allows") % {"name": name})


def _unique_keys(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(_("the key %(key)s appears twice in one object") % {"key": json.dumps(key)})
        seen[key] = value
    return seen


def loads_json(text: str | bytes):
    """JSON as the exchange format takes it: no NaN or Infinity, no key twice in one object."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
        raise InstanceError([_("Not valid JSON: %(error)s") % {"error": exc}]) from None


def load_instance(text: str | bytes) -> Instance:
    return parse_instance(loads_json(text))


# --- validating an instance -----------------------------------------------------------------------


class _Reader:
    """Collects problems with their place instead of stopping at the first."""

    def __init__(self):
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}" if where else message)

    def obj(self, value, where: str, *, required: tuple, optional: tuple) -> dict | None:
        if not isinstance(value, dict):
            self.error(where, _("must be an object"))
            return None
        for key in value:
            if key not in required and key not in optional:
                self.error(_join(where, key), _("unknown field (expected one of: %(fields)s)")
                           % {"fields": ", ".join(required + optional)})
        for key in required:
            if key not in value:
                self.error(where, _("the field %(field)s is missing") % {"field": key})
        return value

    def number(self, value, where: str, *, minimum: float, maximum: float, strict_minimum: bool = False):
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(where, _("must be a number"))
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(where, _("must be a finite number"))
            return None
        too_small = value <= minimum if strict_minimum else value < minimum
        if too_small or value > maximum:
            comparison = _("more than") if strict_minimum else _("at least")
            self.error(where, _("must be %(comparison)s %(minimum)s and at most %(maximum)s (got %(value)s)")
                       % {"comparison": comparison, "minimum": _plain(minimum), "maximum": _plain(maximum),
                          "value": _plain(value)})
            return None
        return value

    def text(self, value, where: str, *, allow_empty: bool = False) -> str | None:
        if not isinstance(value, str):
            self.error(where, _("must be a string"))
            return None
        if (not value.strip() and not allow_empty) or len(value) > MAX_ID_LENGTH:
            self.error(where, _("must be a non-empty string of at most %(max)s characters") % {"max": MAX_ID_LENGTH})
            return None
        return value

    def moment(self, value, where: str, *, now: datetime | None) -> datetime | None:
        if not isinstance(value, str):
            self.error(where, _("must be an ISO 8601 date and time as a string"))
            return None
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            self.error(where, _("%(value)s is not an ISO 8601 date and time") % {"value": json.dumps(value)})
            return None
        if moment.tzinfo is None or moment.utcoffset() is None:
            self.error(where, _("%(value)s has no UTC offset (write e.g. 2025-03-03T08:00:00+01:00 or …Z)")
                       % {"value": json.dumps(value)})
            return None
        if now is not None and abs(moment - now) > MAX_TIME_OFFSET:
            self.error(where, _("%(value)s is more than three years away from now") % {"value": json.dumps(value)})
            return None
        return moment

    def clock(self, value, where: str, *, end: bool) -> tuple[bool, time | None]:
        """(ok, time); "24:00" is allowed only as an end and comes back as None."""
        match = _CLOCK.match(value) if isinstance(value, str) else None
        if match:
            hours, minutes = int(match[1]), int(match[2])
            if end and (hours, minutes) == (24, 0):
                return True, None
            if hours < 24 and minutes < 60:
                return True, time(hours, minutes)
        self.error(where, _("must be a time of day as \"HH:MM\" (00:00 to 23:59, or 24:00 as an end)"))
        return False, None


def _join(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def _plain(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def parse_instance(data) -> Instance:
    """An Instance from decoded JSON; InstanceError lists every problem."""
    read = _Reader()
    top = read.obj(data, "", required=("now", "printers", "jobs"),
                   optional=("changeover_s", "shifts", "holidays", "timezone"))
    if top is None:
        raise InstanceError(read.errors)

    now = read.moment(top.get("now"), "now", now=None) if "now" in top else None
    zone = None
    if top.get("timezone") is not None:
        zone = read.text(top["timezone"], "timezone")
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                read.error("timezone", _("%(zone)s is not a known IANA time zone") % {"zone": json.dumps(zone)})
                zone = None
    changeover = read.number(top.get("changeover_s", 0), "changeover_s", minimum=0, maximum=MAX_CHANGEOVER_S)

    shifts = []
    raw_shifts = top.get("shifts", [])
    if not isinstance(raw_shifts, list):
        read.error("shifts", _("must be a list (empty: always staffed)"))
        raw_shifts = []
    for index, raw in enumerate(raw_shifts):
        where = f"shifts[{index}]"
        item = read.obj(raw, where, required=("weekday", "start", "end"), optional=())
        if item is None or any(key not in item for key in ("weekday", "start", "end")):
            continue
        weekday = item["weekday"]
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            read.error(f"{where}.weekday", _("must be a whole number from 0 (Monday) to 6 (Sunday)"))
            weekday = None
        ok_start, start = read.clock(item["start"], f"{where}.start", end=False)
        ok_end, end = read.clock(item["end"], f"{where}.end", end=True)
        if weekday is None or not ok_start or not ok_end:
            continue
        if end == start:
            read.error(where, _("a shift that starts and ends at %(time)s is empty") % {"time": item["start"]})
            continue
        shifts.append(Shift(weekday=weekday, start=start, end=end))

    holidays = []
    raw_holidays = top.get("holidays", [])
    if not isinstance(raw_holidays, list):
        read.error("holidays", _("must be a list of dates"))
        raw_holidays = []
    for index, raw in enumerate(raw_holidays):
        try:
            holidays.append(date.fromisoformat(raw) if isinstance(raw, str) else None)
        except ValueError:
            holidays.append(None)
        if holidays[-1] is None:
            holidays.pop()
            read.error(f"holidays[{index}]", _("must be a date as \"YYYY-MM-DD\""))

    printers = []
    printer_ids = set()
    raw_printers = top.get("printers", [])
    if not isinstance(raw_printers, list) or not raw_printers:
        if "printers" in top:
            read.error("printers", _("must be a non-empty list"))
        raw_printers = []
    if len(raw_printers) > MAX_PRINTERS:
        read.error("printers", _("at most %(max)s printers") % {"max": MAX_PRINTERS})
        raw_printers = []
    for index, raw in enumerate(raw_printers):
        where = f"printers[{index}]"
        item = read.obj(raw, where, required=("id",), optional=("available_at", "family"))
        if item is None or "id" not in item:
            continue
        printer_id = read.text(item["id"], f"{where}.id")
        if printer_id is None:
            continue
        if printer_id in printer_ids:
            read.error(f"{where}.id", _("the printer id %(id)s appears twice") % {"id": json.dumps(printer_id)})
            continue
        printer_ids.add(printer_id)
        available = now
        if item.get("available_at") is not None:
            available = read.moment(item["available_at"], f"{where}.available_at", now=now)
        family = None
        if item.get("family") is not None:
            family = read.text(item["family"], f"{where}.family", allow_empty=True)
        printers.append(Printer(id=printer_id, available_at=available, family=family))

    jobs = []
    job_ids = set()
    raw_jobs = top.get("jobs", [])
    if not isinstance(raw_jobs, list):
        read.error("jobs", _("must be a list"))
        raw_jobs = []
    if len(raw_jobs) > MAX_JOBS:
        read.error("jobs", _("at most %(max)s jobs") % {"max": MAX_JOBS})
        raw_jobs = []
    for index, raw in enumerate(raw_jobs):
        where = f"jobs[{index}]"
        item = read.obj(raw, where, required=("id", "durations_s"), optional=("family", "due", "weight"))
        if item is None or "id" not in item or "durations_s" not in item:
            continue
        job_id = read.text(item["id"], f"{where}.id")
        if job_id is not None and job_id in job_ids:
            read.error(f"{where}.id", _("the job id %(id)s appears twice") % {"id": json.dumps(job_id)})
            job_id = None
        if job_id is not None:
            job_ids.add(job_id)
        durations = {}
        raw_durations = item["durations_s"]
        if not isinstance(raw_durations, dict):
            read.error(f"{where}.durations_s", _("must be an object of printer id to seconds"))
        elif not raw_durations:
            read.error(f"{where}.durations_s", _("names no printer: the job could never run"))
        else:
            for printer_id, seconds in raw_durations.items():
                place = f"{where}.durations_s.{printer_id}"
                if printer_id not in printer_ids:
                    read.error(place, _("there is no printer %(id)s in printers") % {"id": json.dumps(printer_id)})
                    continue
                seconds = read.number(seconds, place, minimum=0, maximum=MAX_DURATION_S, strict_minimum=True)
                if seconds is not None:
                    durations[printer_id] = seconds
        family = ""
        if item.get("family") is not None:
            family = read.text(item["family"], f"{where}.family", allow_empty=True)
        due = None
        if item.get("due") is not None:
            due = read.moment(item["due"], f"{where}.due", now=now)
        weight = read.number(item.get("weight", 1), f"{where}.weight", minimum=0, maximum=MAX_WEIGHT)
        if job_id is not None and durations and family is not None and weight is not None:
            jobs.append(Job(id=job_id, durations_s=durations, family=family, due=due, weight=weight))

    if read.errors or now is None or changeover is None:
        raise InstanceError(read.errors or [_("The instance cannot be read.")])
    return Instance(now=now, printers=printers, jobs=jobs, changeover_s=changeover, shifts=shifts,
                    holidays=holidays, timezone=zone)


# --- reading a plan back ---------------------------------------------------------------------------


def parse_plan(data) -> Plan:
    """A Plan from decoded JSON (as `Plan.to_dict` writes it); ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("a plan must be an object")
    try:
        assignments = [
            Assignment(job=a["job"], printer=a["printer"], start=datetime.fromisoformat(a["start"]),
                       end=datetime.fromisoformat(a["end"]))
            for a in data["assignments"]
        ]
        return Plan(assignments=assignments, makespan_s=data["makespan_s"],
                    weighted_lateness_s=data["weighted_lateness_s"], late_jobs=data["late_jobs"],
                    lower_bound_makespan_s=data["lower_bound_makespan_s"], solver=data["solver"],
                    seconds=data["seconds"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a plan: {exc!r}") from None
