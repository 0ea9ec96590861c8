"""Plan an instance: the best of a few greedy rules, CP-SAT improving on it within the time limit, the better."""

import time

from production.planning.bounds import makespan_lower_bound
from production.planning.cpsat import FarmModel
from production.planning.exchange import Assignment, Instance, Plan
from production.planning.greedy import best_greedy_schedule, greedy_schedule
from production.planning.problem import DAY, Problem, Schedule

DEFAULT_TIME_LIMIT_S = 10.0
# Below this much time left, CP-SAT is not started and the greedy schedule is the plan.
MIN_SOLVE_S = 0.2


def _assignments(problem: Problem, schedule: Schedule) -> list[Assignment]:
    rows = [
        Assignment(job=problem.job_ids[j], printer=problem.printer_ids[schedule.printer[j]],
                   start=problem.at(schedule.start[j]), end=problem.at(schedule.end[j]))
        for j in range(problem.n_jobs)
    ]
    order = {pid: i for i, pid in enumerate(problem.printer_ids)}
    return sorted(rows, key=lambda a: (a.start, order[a.printer], a.job))


def _metrics(instance: Instance, assignments: list[Assignment]) -> tuple[float, float, int]:
    """(weighted lateness s, makespan s from now, late jobs), from the times as the plan states them."""
    jobs = {job.id: job for job in instance.jobs}
    lateness, late, last = 0.0, 0, instance.now
    for row in assignments:
        due = jobs[row.job].due
        if due is not None and row.end > due:
            lateness += jobs[row.job].weight * (row.end - due).total_seconds()
            late += 1
        last = max(last, row.end)
    return lateness, (last - instance.now).total_seconds(), late


def _not_worse(first: tuple[float, float, int], second: tuple[float, float, int]) -> bool:
    """Is `first` at least as good as `second`: weighted lateness, then makespan."""
    tolerance = 1e-6 * max(1.0, second[0])
    if first[0] < second[0] - tolerance:
        return True
    return first[0] <= second[0] + tolerance and first[1] <= second[1]


def plan(instance: Instance, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, log: bool = False) -> Plan:
    """The plan for an instance. CP-SAT's plan when it is not worse than the greedy one, else the greedy."""
    started = time.monotonic()
    deadline = started + time_limit_s
    if not instance.jobs:
        return Plan(assignments=[], makespan_s=0.0, weighted_lateness_s=0.0, late_jobs=0,
                    lower_bound_makespan_s=0.0, solver="greedy", seconds=round(time.monotonic() - started, 3))
    problem = Problem(instance)
    greedy = best_greedy_schedule(problem)
    bound = makespan_lower_bound(problem)
    chosen = _assignments(problem, greedy)
    chosen_metrics = _metrics(instance, chosen)
    solver = "greedy"

    if deadline - time.monotonic() > MIN_SOLVE_S:
        greedy_lateness = problem.score(greedy)[0]
        # Room for plans that end later than the greedy one to be on time more often.
        horizon = max(greedy.end) + max(max(greedy.end) // 2, DAY)
        model = FarmModel(problem, greedy, horizon)
        schedule, _facts = model.solve(deadline=deadline, lateness_bound=0 if greedy_lateness == 0 else None,
                                       log=log)
        if schedule is not None:
            candidate = _assignments(problem, problem.left_shift(schedule))
            candidate_metrics = _metrics(instance, candidate)
            if _not_worse(candidate_metrics, chosen_metrics):
                chosen, chosen_metrics, solver = candidate, candidate_metrics, "cp-sat"

    lateness, makespan, late = chosen_metrics
    return Plan(assignments=chosen, makespan_s=makespan, weighted_lateness_s=lateness, late_jobs=late,
                lower_bound_makespan_s=round(bound, 3), solver=solver,
                seconds=round(time.monotonic() - started, 3))


def plan_greedy(instance: Instance) -> Plan:
    """The greedy plan alone (the benchmark's baseline)."""
    started = time.monotonic()
    if not instance.jobs:
        return plan(instance)
    problem = Problem(instance)
    rows = _assignments(problem, greedy_schedule(problem))
    lateness, makespan, late = _metrics(instance, rows)
    return Plan(assignments=rows, makespan_s=makespan, weighted_lateness_s=lateness, late_jobs=late,
                lower_bound_makespan_s=round(makespan_lower_bound(problem), 3), solver="greedy",
                seconds=round(time.monotonic() - started, 3))
