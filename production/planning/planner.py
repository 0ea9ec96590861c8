"""Plan an instance in the time limit: the best greedy rule, a local search, CP-SAT, a last local search.

Without shifts, when nothing is late, the local search is the assignment search (`balance`,
which prices a printer's end in constant time there) and CP-SAT works on the assignment model
(exact for the makespan there, and its proven bound joins the lower bound); otherwise the local
search is `search` and CP-SAT works on the full model with times, except on farms with so many
(job, printer) pairs that the model is too large for the time: there the local search gets it
all. The plan is the best schedule seen (weighted lateness, then makespan), so never worse
than the greedy one; `solver` says which step found it.
"""

import time

from production.planning.balance import AssignmentSearch
from production.planning.bounds import makespan_lower_bound
from production.planning.cpsat import AssignmentModel, FarmModel
from production.planning.exchange import Assignment, Instance, Plan
from production.planning.greedy import best_greedy_schedule, greedy_schedule
from production.planning.problem import DAY, Problem, Schedule
from production.planning.search import LocalSearch, improve

DEFAULT_TIME_LIMIT_S = 10.0
# Below this much time left, CP-SAT is not started and the greedy schedule is the plan.
MIN_SOLVE_S = 0.2
# Shares of the time left: the local search before CP-SAT (more when there are no shifts, where
# CP-SAT works on the assignment model and the search is the stronger of the two), and after it.
SEARCH_SHARE = 0.4
SEARCH_SHARE_ALWAYS_STAFFED = 0.5
POLISH_SHARE = 0.1
# Always staffed with nothing late: the share of the time left for the assignment search before
# CP-SAT's assignment model, larger where that model has more (job, printer) pairs than
# FLEXIBLE_PAIRS (there the search finds more in the time); otherwise, with that many pairs,
# the local search takes all the time and CP-SAT is not started.
BALANCE_SHARE = 0.4
BALANCE_SHARE_FLEXIBLE = 0.8
FLEXIBLE_PAIRS = 3000
# Stop this much before the limit: building the plan from the schedule takes a moment.
MARGIN_S = 0.05


def _flexible(problem: Problem) -> bool:
    """Do the jobs fit so many printers that CP-SAT's assignment model is too large to gain much?"""
    return sum(len(d) for d in problem.durations) > FLEXIBLE_PAIRS


def _balance(problem: Problem, schedule: Schedule, deadline: float) -> Schedule:
    """The assignment search from a schedule's printers, as a schedule (family blocks on each printer)."""
    printers = AssignmentSearch(problem, schedule.printer).run(deadline)
    return LocalSearch(problem, Schedule(printer=printers, start=schedule.start, end=schedule.end),
                       by_printer=True).schedule()


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

    def consider(schedule: Schedule, name: str) -> None:
        nonlocal chosen, chosen_metrics, solver
        candidate = _assignments(problem, schedule)
        candidate_metrics = _metrics(instance, candidate)
        if _not_worse(candidate_metrics, chosen_metrics) and candidate_metrics != chosen_metrics:
            chosen, chosen_metrics, solver = candidate, candidate_metrics, name

    # A short local search first: CP-SAT starts from a better hint.
    incumbent = greedy
    balanced = problem.calendar.always and problem.score(greedy)[0] == 0
    if balanced and deadline - time.monotonic() > MIN_SOLVE_S:
        # Always staffed and nothing late: the makespan is a matter of assignment alone, which
        # the assignment search prices quickly; its plan is kept only where nothing gets late.
        share = BALANCE_SHARE_FLEXIBLE if _flexible(problem) else BALANCE_SHARE
        found = _balance(problem, greedy, time.monotonic() + share * (deadline - time.monotonic()))
        if problem.score(found)[0] == 0:
            incumbent = found
            consider(found, "local-search")
    elif deadline - time.monotonic() > MIN_SOLVE_S:
        share = SEARCH_SHARE_ALWAYS_STAFFED if problem.calendar.always else SEARCH_SHARE
        if _flexible(problem):
            # CP-SAT's model with times is too large here to gain anything in the time (building
            # it alone can run past the limit): the local search gets all of it.
            share = 1.0
        incumbent = improve(problem, greedy, min(deadline - MARGIN_S,
                                                 time.monotonic() + share * (deadline - time.monotonic())))
        consider(incumbent, "local-search")

    remaining = deadline - time.monotonic()
    if remaining > MIN_SOLVE_S:
        # Time left at the end for a local search on what CP-SAT gives.
        solve_deadline = deadline - POLISH_SHARE * remaining
        lateness = problem.score(incumbent)[0]
        schedule = None
        if lateness == 0 and problem.calendar.always:
            # Nothing late and no shifts: the makespan is a matter of assignment alone.
            model = AssignmentModel(problem, incumbent)
            printers, proven = model.solve(deadline=solve_deadline, log=log)
            bound = max(bound, float(proven))
            if printers is not None:
                schedule = LocalSearch(problem, Schedule(printer=printers, start=incumbent.start,
                                                         end=incumbent.end), by_printer=True).schedule()
        else:
            # Room for plans that end later than the incumbent to be on time more often.
            horizon = max(incumbent.end) + max(max(incumbent.end) // 2, DAY)
            model = FarmModel(problem, incumbent, horizon)
            found, _facts = model.solve(deadline=solve_deadline, lateness_bound=0 if lateness == 0 else None, log=log)
            if found is not None:
                schedule = problem.left_shift(found)
        if schedule is not None:
            consider(schedule, "cp-sat")
            if deadline - time.monotonic() > MIN_SOLVE_S / 2:
                if balanced and problem.score(schedule)[0] == 0:
                    polished = _balance(problem, schedule, deadline - MARGIN_S)
                else:
                    polished = improve(problem, schedule, deadline - MARGIN_S)
                consider(polished, "cp-sat")

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
