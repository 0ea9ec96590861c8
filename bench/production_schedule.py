"""The farm planner on generated instances: makespan against a lower bound, lateness against greedy.

Seeded instances of 50×10, 200×50 and 500×50 (jobs × printers), each with restricted eligibility
(a job fits ~4 printers) and flexible eligibility (~30, or all of them where there are fewer), and
in three kinds:

- loose: due dates four weeks away, so they never bind; the makespan is what counts (the target:
  within 5 % of the lower bound for 200×50 at the default 10 s);
- due: due dates spread over the expected makespan, weights 1, 2 or 5; some bind;
- open: as loose, but always staffed (no shifts): the lower bound ignores shifts, so this is where
  the gap measures the planner rather than the nights a printer waits for an operator;
- on-time: generated around a hidden plan in which every job is on time (each job's due date is
  its end in that plan plus up to 20 minutes), so the best weighted lateness is zero (the target:
  no late job).

Every instance has five families (a changeover of 15 minutes between them), printers of different
speeds (0.8 to 1.25 × a job's base time of 1 to 8 hours), a third of them busy for up to 4 hours,
and operator hours Monday to Friday 07:00-22:00 and Saturday 09:00-14:00 in Europe/Berlin (a print
starts only then and runs on overnight). Every plan is verified with the independent checker.

Prints per instance: the greedy baseline's makespan gap to the lower bound, weighted lateness and
late jobs; the same for the planner at each time limit (10 s and 30 s by default), with its solve
time and which schedule it kept; and whether it is worse than greedy anywhere (it must not be).

    python bench/production_schedule.py [--sizes 50x10,200x50,500x50] [--limits 10,30] [--kinds loose,open,due,on-time]
"""

import argparse
import random
import sys
from datetime import datetime, timedelta

import _setup

_setup.setup_django()

from production.planning import check_plan, parse_instance, plan, plan_greedy  # noqa: E402
from production.planning.problem import Problem  # noqa: E402

HOUR = 3600
FAMILIES = ["PLA black", "PLA white", "PETG grey", "ASA black", "TPU clear"]
FAMILY_WEIGHTS = [0.35, 0.25, 0.2, 0.12, 0.08]
CHANGEOVER_S = 900
NOW = "2025-03-03T07:00:00+01:00"  # a Monday morning in Berlin
SHIFTS = [{"weekday": day, "start": "07:00", "end": "22:00"} for day in range(5)] + [
    {"weekday": 5, "start": "09:00", "end": "14:00"}]


def generate(jobs: int, printers: int, eligibility: str, kind: str, seed: int) -> dict:
    rng = random.Random(f"{seed}-{jobs}-{printers}-{eligibility}-{kind}")
    now = datetime.fromisoformat(NOW)
    fits = 4 if eligibility == "restricted" else 30
    fits = min(fits, printers)
    printer_ids = [f"P{index:02d}" for index in range(printers)]
    speed = {pid: rng.uniform(0.8, 1.25) for pid in printer_ids}
    printer_rows = []
    for pid in printer_ids:
        busy = rng.random() < 1 / 3
        row = {"id": pid, "available_at": (now + timedelta(seconds=rng.randint(600, 4 * HOUR) if busy else 0))
               .isoformat(), "family": rng.choices(FAMILIES, FAMILY_WEIGHTS)[0]}
        printer_rows.append(row)

    def duration(base: float, pid: str) -> int:
        return max(300, round(base * speed[pid] * rng.uniform(0.95, 1.05) / 60) * 60)

    job_rows = []
    for index in range(jobs):
        base = rng.uniform(1, 8) * HOUR
        eligible = rng.sample(printer_ids, fits)
        job_rows.append({"id": f"J{index:03d}", "durations_s": {pid: duration(base, pid) for pid in sorted(eligible)},
                         "family": rng.choices(FAMILIES, FAMILY_WEIGHTS)[0], "due": None,
                         "weight": rng.choice([1, 2, 5]) if kind in ("due", "on-time") else 1})
    instance = {"now": NOW, "timezone": "Europe/Berlin", "changeover_s": CHANGEOVER_S, "shifts": SHIFTS,
                "printers": printer_rows, "jobs": job_rows}

    if kind == "open":
        instance["shifts"] = []
    if kind in ("loose", "open"):
        for row in job_rows:
            row["due"] = (now + timedelta(days=28)).isoformat()
    elif kind == "due":
        work = sum(min(row["durations_s"].values()) for row in job_rows) / printers
        for row in job_rows:
            row["due"] = (now + timedelta(seconds=rng.uniform(0.3, 1.3) * work)).isoformat()
    else:
        hide_on_time_plan(instance, rng)
    return instance


def hide_on_time_plan(instance: dict, rng: random.Random) -> None:
    """Give each job a due date it meets in a plan made here and thrown away (the best lateness is zero)."""
    problem = Problem(parse_instance(instance))
    printers = {row["id"]: index for index, row in enumerate(instance["printers"])}
    per_printer: dict[str, list[dict]] = {}
    for row in instance["jobs"]:
        per_printer.setdefault(rng.choice(sorted(row["durations_s"])), []).append(row)
    families = {name: index for index, name in enumerate(problem.families)}
    for pid, rows in per_printer.items():
        p = printers[pid]
        # The hidden plan runs a printer's jobs family by family, the loaded family first.
        loaded = instance["printers"][p]["family"]
        rows.sort(key=lambda row: (row["family"] != loaded, row["family"], rng.random()))
        free, family = problem.ready[p], problem.printer_family[p]
        for row in rows:
            job_family = families[row["family"]]
            start = problem.calendar.next_start(free + problem.changeover_between(family, job_family))
            end = start + row["durations_s"][pid]
            slack = rng.randint(0, 20 * 60)
            row["due"] = problem.at(end + slack).isoformat()
            free, family = end, job_family


def summary(instance, result) -> tuple[str, tuple]:
    problems = check_plan(instance, result.to_dict() | {})
    if problems:
        print(f"    INFEASIBLE PLAN: {problems[:3]}")
    bound = result.lower_bound_makespan_s
    gap = (result.makespan_s - bound) / bound * 100 if bound else 0.0
    text = (f"gap {gap:5.1f} %  makespan {result.makespan_s / HOUR:6.1f} h  "
            f"lateness {result.weighted_lateness_s / HOUR:9.1f} wh  late {result.late_jobs:3d}")
    return text, (result.weighted_lateness_s, result.makespan_s)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50x10,200x50,500x50")
    parser.add_argument("--limits", default="10,30")
    parser.add_argument("--kinds", default="loose,open,due,on-time")
    parser.add_argument("--eligibility", default="restricted,flexible")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args()
    limits = [float(x) for x in options.limits.split(",")]
    worse = 0
    print(f"{'instance':<34} {'planner':<14} result (gap to the makespan's lower bound; lateness in weight × hours)")
    for size in options.sizes.split(","):
        jobs, printers = (int(x) for x in size.split("x"))
        for eligibility in options.eligibility.split(","):
            for kind in options.kinds.split(","):
                data = generate(jobs, printers, eligibility, kind, options.seed)
                instance = parse_instance(data)
                name = f"{jobs}x{printers} {eligibility} {kind}"
                baseline = plan_greedy(instance)
                text, greedy_key = summary(instance, baseline)
                print(f"{name:<34} {'greedy':<14} {text}  ({baseline.seconds:.1f} s)")
                for limit in limits:
                    result = plan(instance, time_limit_s=limit)
                    text, key = summary(instance, result)
                    lost = key[0] > greedy_key[0] + 1e-6 or (
                        abs(key[0] - greedy_key[0]) <= 1e-6 and key[1] > greedy_key[1])
                    worse += lost
                    print(f"{'':<34} {f'{limit:g} s limit':<14} {text}  ({result.seconds:.1f} s, "
                          f"{result.solver}){'  WORSE THAN GREEDY' if lost else ''}", flush=True)
    print(f"plans worse than greedy: {worse}")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
