"""An independent check of a plan against its instance, used by the tests and the benchmark.

It reads the plan as JSON gives it (times as ISO 8601 strings) and shares no code with the
schedulers: shift membership is decided from the local clock of each start, not from the
unrolled windows the schedulers use.
"""

import math
from datetime import datetime, timedelta

from production.planning.exchange import Instance


def _in_shift(instance: Instance, moment: datetime) -> bool:
    if not instance.shifts:
        return True
    local = moment.astimezone(instance.tzinfo)
    clock = local.time().replace(tzinfo=None)
    today, yesterday = local.date(), local.date() - timedelta(days=1)
    for shift in instance.shifts:
        if shift.overnight or shift.end is None:
            # Open from `start` today to `end` tomorrow (midnight for 24:00).
            if shift.weekday == today.weekday() and today not in instance.holidays and clock >= shift.start:
                return True
            if (shift.end is not None and shift.weekday == yesterday.weekday()
                    and yesterday not in instance.holidays and clock < shift.end):
                return True
        elif (shift.weekday == today.weekday() and today not in instance.holidays
              and shift.start <= clock < shift.end):
            return True
    return False


def plan_metrics(instance: Instance, assignments: list[tuple[str, str, datetime, datetime]]) -> dict:
    """makespan_s, weighted_lateness_s and late_jobs of (job, printer, start, end) rows."""
    jobs = {job.id: job for job in instance.jobs}
    lateness, late = 0.0, 0
    for job_id, _printer, _start, end in assignments:
        due = jobs[job_id].due
        if due is not None and end > due:
            lateness += jobs[job_id].weight * (end - due).total_seconds()
            late += 1
    makespan = max(((end - instance.now).total_seconds() for *_, end in assignments), default=0.0)
    return {"makespan_s": max(0.0, makespan), "weighted_lateness_s": lateness, "late_jobs": late}


def check_plan(instance: Instance, plan: dict) -> list[str]:
    """Every way the plan breaks the instance's rules; an empty list for a feasible plan."""
    problems = []
    jobs = {job.id: job for job in instance.jobs}
    printers = {printer.id: printer for printer in instance.printers}
    rows = []
    seen = set()
    for index, item in enumerate(plan.get("assignments", [])):
        try:
            job_id, printer_id = item["job"], item["printer"]
            start, end = datetime.fromisoformat(item["start"]), datetime.fromisoformat(item["end"])
        except (KeyError, TypeError, ValueError) as exc:
            problems.append(f"assignment {index} cannot be read: {exc!r}")
            continue
        if start.tzinfo is None or end.tzinfo is None:
            problems.append(f"{job_id}: times without a UTC offset")
            continue
        job = jobs.get(job_id)
        if job is None:
            problems.append(f"{job_id}: not a job of the instance")
            continue
        if job_id in seen:
            problems.append(f"{job_id}: planned more than once")
            continue
        seen.add(job_id)
        if printer_id not in job.durations_s:
            problems.append(f"{job_id}: planned on {printer_id}, which it cannot run on")
            continue
        length = (end - start).total_seconds()
        needed = job.durations_s[printer_id]
        if not needed <= length <= math.ceil(needed):
            problems.append(f"{job_id}: runs {length} s on {printer_id}, needs {needed} s")
        if start < instance.now:
            problems.append(f"{job_id}: starts {start.isoformat()}, before now")
        if start < printers[printer_id].available_at:
            problems.append(f"{job_id}: starts before {printer_id} is available")
        if not _in_shift(instance, start):
            problems.append(f"{job_id}: starts {start.astimezone(instance.tzinfo).isoformat()} outside every shift")
        rows.append((job_id, printer_id, start, end))
    for job_id in jobs.keys() - seen:
        problems.append(f"{job_id}: not planned")

    changeover = timedelta(seconds=instance.changeover_s)
    for printer_id, printer in printers.items():
        mine = sorted((row for row in rows if row[1] == printer_id), key=lambda row: row[2])
        previous_end, previous_family = printer.available_at, printer.family
        for job_id, _printer, start, end in mine:
            family = jobs[job_id].family
            gap = changeover if previous_family is not None and previous_family != family else timedelta(0)
            if start < previous_end + gap:
                what = "a changeover" if gap else "no overlap"
                problems.append(f"{job_id}: starts {start.isoformat()} on {printer_id}, {what} needs "
                                f"{(previous_end + gap).isoformat()} or later")
            previous_end, previous_family = max(previous_end, end), family

    if not problems:
        metrics = plan_metrics(instance, rows)
        for key, value in metrics.items():
            stated = plan.get(key)
            if not isinstance(stated, int | float) or abs(stated - value) > 1e-6 * max(1.0, abs(value)) + 1e-6:
                problems.append(f"{key} is {stated}, the assignments give {value}")
        bound = plan.get("lower_bound_makespan_s")
        if not isinstance(bound, int | float) or bound > metrics["makespan_s"] + 1:
            problems.append(f"lower_bound_makespan_s {bound} is above the makespan {metrics['makespan_s']}")
    return problems
