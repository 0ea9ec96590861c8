"""Greedy list scheduling: the baseline, the CP-SAT model's warm start and its fallback.

`greedy_schedule` is what "first idle matching printer" dispatch does, looking ahead: jobs are
taken by due date (jobs without one last), then weight (heavier first), then their shortest
duration (longer first); each goes after the last job of the eligible printer on which it
finishes earliest, started at the first shift moment after the printer is free and any
changeover is done.

`best_greedy_schedule` tries a few more rules and keeps the best (weighted lateness, then
makespan): the same order placing a job, among the printers where it is still on time, on the
one where it uses the least printer time (its duration plus any changeover and wait), which
leaves the fast printers to jobs that need them; the order by slack (due date minus shortest
duration); and longest job first for the makespan.
"""

from production.planning.problem import Problem, Schedule

INFINITY = float("inf")


def _due(problem: Problem, job: int) -> float:
    return problem.due[job] if problem.due[job] is not None else INFINITY


def job_order(problem: Problem, rule: str = "due") -> list[int]:
    def shortest(j):
        return min(problem.durations[j].values())

    keys = {
        "due": lambda j: (_due(problem, j), -problem.weight[j], -shortest(j), j),
        "slack": lambda j: (_due(problem, j) - shortest(j), -problem.weight[j], j),
        "longest": lambda j: (-shortest(j), _due(problem, j), j),
    }
    return sorted(range(problem.n_jobs), key=keys[rule])


def greedy_schedule(problem: Problem, *, rule: str = "due", fit: str = "earliest") -> Schedule:
    n = problem.n_jobs
    schedule = Schedule(printer=[0] * n, start=[0] * n, end=[0] * n)
    free = list(problem.ready)
    family = list(problem.printer_family)
    for job in job_order(problem, rule):
        due = _due(problem, job)
        best = None
        for printer, duration in problem.durations[job].items():
            ready = free[printer] + problem.changeover_between(family[printer], problem.family[job])
            start = problem.calendar.next_start(ready)
            end = start + duration
            if fit == "earliest":
                candidate = (end, start, printer)
            else:  # on time using the least printer time, else earliest
                candidate = (0, end - free[printer], end, printer) if end <= due else (1, end, 0, printer)
            if best is None or candidate < best:
                best = candidate
        printer = best[-1]
        duration = problem.durations[job][printer]
        start = problem.calendar.next_start(
            free[printer] + problem.changeover_between(family[printer], problem.family[job]))
        schedule.printer[job], schedule.start[job], schedule.end[job] = printer, start, start + duration
        free[printer], family[printer] = start + duration, problem.family[job]
    return schedule


def best_greedy_schedule(problem: Problem) -> Schedule:
    best, best_key = None, None
    for rule, fit in (("due", "earliest"), ("due", "least"), ("slack", "least"), ("slack", "earliest"),
                      ("longest", "earliest")):
        schedule = greedy_schedule(problem, rule=rule, fit=fit)
        lateness, makespan, _late = problem.score(schedule)
        key = (lateness, makespan)
        if best_key is None or key < best_key:
            best, best_key = schedule, key
    return best
