"""Greedy list scheduling: the baseline, the CP-SAT model's warm start and its fallback.

Jobs are taken by due date (jobs without one last), then by weight (heavier first), then by
their shortest duration (longer first); each goes after the last job of the eligible printer on
which it finishes earliest, started at the first shift moment after the printer is free and any
changeover is done. This is what "first idle matching printer" dispatch does, looking ahead.
"""

from production.planning.problem import Problem, Schedule


def job_order(problem: Problem) -> list[int]:
    infinity = float("inf")
    return sorted(
        range(problem.n_jobs),
        key=lambda j: (problem.due[j] if problem.due[j] is not None else infinity, -problem.weight[j],
                       -min(problem.durations[j].values()), j),
    )


def greedy_schedule(problem: Problem) -> Schedule:
    n = problem.n_jobs
    schedule = Schedule(printer=[0] * n, start=[0] * n, end=[0] * n)
    free = list(problem.ready)
    family = list(problem.printer_family)
    for job in job_order(problem):
        best = None
        for printer, duration in problem.durations[job].items():
            ready = free[printer] + problem.changeover_between(family[printer], problem.family[job])
            start = problem.calendar.next_start(ready)
            candidate = (start + duration, start, printer)
            if best is None or candidate < best:
                best = candidate
        end, start, printer = best
        schedule.printer[job], schedule.start[job], schedule.end[job] = printer, start, end
        free[printer], family[printer] = end, problem.family[job]
    return schedule
