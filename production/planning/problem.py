"""An instance in whole seconds from `now`, as the schedulers work on it, and its shift calendar.

Times are integer offsets in seconds from the origin (`now`, rounded up to a whole second). A
printer's `ready` is when it may start its first job; a job's `due` is rounded down (so a plan
on time in seconds is on time). Durations and the changeover are rounded up.
"""

import bisect
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from production.planning.exchange import Instance

DAY = 86400


@dataclass
class Schedule:
    """One (printer index, start, end) per job index, in seconds from the origin."""

    printer: list[int]
    start: list[int]
    end: list[int]


class Calendar:
    """The moments a job may start: the instance's shift windows, unrolled day by day on demand.

    Windows are half-open [start, end) in seconds from the origin, merged where they touch.
    Without shifts every moment is allowed.
    """

    def __init__(self, instance: Instance, origin: datetime):
        self.origin = origin
        self.always = not instance.shifts
        self.zone = instance.tzinfo
        self.shifts_by_day = {day: [] for day in range(7)}
        for shift in instance.shifts:
            self.shifts_by_day[shift.weekday].append(shift)
        self.holidays = set(instance.holidays)
        # Start one day early: an overnight shift from yesterday may still be open now.
        self._next_day = origin.astimezone(self.zone).date() - timedelta(days=1)
        self.starts: list[int] = []
        self.ends: list[int] = []

    def _unroll_day(self) -> None:
        day = self._next_day
        self._next_day = day + timedelta(days=1)
        if day in self.holidays:
            return
        for shift in sorted(self.shifts_by_day[day.weekday()], key=lambda s: s.start):
            begin = datetime.combine(day, shift.start, tzinfo=self.zone)
            if shift.end is None or shift.overnight:
                end_day = day + timedelta(days=1)
                finish = datetime.combine(end_day, shift.end or shift.start.replace(hour=0, minute=0),
                                          tzinfo=self.zone)
            else:
                finish = datetime.combine(day, shift.end, tzinfo=self.zone)
            lo = math.ceil((begin - self.origin).total_seconds())
            hi = math.ceil((finish - self.origin).total_seconds())
            lo = max(lo, 0)
            if hi <= lo:
                continue
            self._add(lo, hi)

    def _add(self, lo: int, hi: int) -> None:
        # Days are unrolled in order and shifts by their start, so a window comes after the last one
        # or overlaps it (an overnight shift running into the next day's first one).
        if self.starts and lo < self.starts[-1]:  # only around a change of the clocks
            pairs = sorted([*zip(self.starts, self.ends, strict=True), (lo, hi)])
            self.starts, self.ends = [], []
            for a, b in pairs:
                self._add(a, b)
            return
        if self.starts and lo <= self.ends[-1]:
            self.ends[-1] = max(self.ends[-1], hi)
            return
        self.starts.append(lo)
        self.ends.append(hi)

    def _covered_until(self) -> int:
        """Offsets below this are final: every day that could open a window before it is unrolled."""
        first = datetime.combine(self._next_day, datetime.min.time(), tzinfo=self.zone)
        return math.floor((first - self.origin).total_seconds())

    def _unroll_until(self, moment: int) -> None:
        while self._covered_until() <= moment:
            self._unroll_day()

    def next_start(self, moment: int) -> int:
        """The first allowed start at or after `moment` (>= 0)."""
        if self.always:
            return moment
        for _ in range(400):
            self._unroll_until(moment)
            index = bisect.bisect_right(self.starts, moment) - 1
            if index >= 0 and moment < self.ends[index]:
                return moment
            if index + 1 < len(self.starts):
                return self.starts[index + 1]
            moment = max(moment, self._covered_until())
        raise ValueError("no shift window in more than a year")

    def windows(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """Closed ranges [a, b] of allowed integer starts between lo and hi."""
        if self.always:
            return [(lo, hi)] if lo <= hi else []
        self._unroll_until(hi)
        result = []
        index = max(bisect.bisect_right(self.starts, lo) - 1, 0)
        while index < len(self.starts) and self.starts[index] <= hi:
            a, b = max(self.starts[index], lo), min(self.ends[index] - 1, hi)
            if a <= b:
                result.append((a, b))
            index += 1
        return result


class Problem:
    """The instance as indices and whole seconds."""

    def __init__(self, instance: Instance):
        self.instance = instance
        now = instance.now.astimezone(UTC)
        self.origin = now if now.microsecond == 0 else now.replace(microsecond=0) + timedelta(seconds=1)
        self.calendar = Calendar(instance, self.origin)
        self.printer_ids = [p.id for p in instance.printers]
        index = {pid: i for i, pid in enumerate(self.printer_ids)}
        self.job_ids = [j.id for j in instance.jobs]
        self.changeover = math.ceil(instance.changeover_s)
        families = sorted({j.family for j in instance.jobs} | {p.family for p in instance.printers
                                                               if p.family is not None})
        family_index = {f: i for i, f in enumerate(families)}
        self.families = families
        self.printer_family = [family_index[p.family] if p.family is not None else None
                               for p in instance.printers]
        self.ready = [max(0, math.ceil((p.available_at - self.origin).total_seconds())) for p in instance.printers]
        self.durations: list[dict[int, int]] = [
            {index[pid]: max(1, math.ceil(seconds)) for pid, seconds in j.durations_s.items()} for j in instance.jobs
        ]
        self.family = [family_index[j.family] for j in instance.jobs]
        self.due = [math.floor((j.due - self.origin).total_seconds()) if j.due is not None else None
                    for j in instance.jobs]
        self.weight = [float(j.weight) for j in instance.jobs]
        self.eligible = [[i for i in range(len(self.printer_ids)) if i in d] for d in self.durations]

    @property
    def n_jobs(self) -> int:
        return len(self.job_ids)

    @property
    def n_printers(self) -> int:
        return len(self.printer_ids)

    def changeover_between(self, previous_family: int | None, family: int) -> int:
        """Seconds needed before a job of `family` after one of `previous_family` (None: nothing known)."""
        if previous_family is None or previous_family == family:
            return 0
        return self.changeover

    def earliest_start(self, job: int, printer: int) -> int:
        """The job's earliest start on the printer as its first job there."""
        return self.ready[printer] + self.changeover_between(self.printer_family[printer], self.family[job])

    def score(self, schedule: Schedule) -> tuple[float, int, int]:
        """(weighted lateness in seconds, makespan in seconds, late jobs) of a schedule."""
        lateness = 0.0
        late = 0
        for job, end in enumerate(schedule.end):
            due = self.due[job]
            if due is not None and end > due:
                lateness += self.weight[job] * (end - due)
                late += 1
        return lateness, max(schedule.end, default=0), late

    def sequences(self, schedule: Schedule) -> list[list[int]]:
        """Per printer, its jobs in order of start."""
        per = [[] for _ in self.printer_ids]
        for job in sorted(range(self.n_jobs), key=lambda j: (schedule.start[j], j)):
            per[schedule.printer[job]].append(job)
        return per

    def left_shift(self, schedule: Schedule) -> Schedule:
        """The same printers and order on each, every job started as early as shifts allow: no end gets later."""
        result = Schedule(printer=list(schedule.printer), start=list(schedule.start), end=list(schedule.end))
        for printer, jobs in enumerate(self.sequences(schedule)):
            free, family = self.ready[printer], self.printer_family[printer]
            for job in jobs:
                start = self.calendar.next_start(free + self.changeover_between(family, self.family[job]))
                result.start[job] = start
                result.end[job] = start + self.durations[job][printer]
                free, family = result.end[job], self.family[job]
        return result

    def at(self, offset: int) -> datetime:
        return self.origin + timedelta(seconds=offset)
