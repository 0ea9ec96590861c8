"""A lower bound on the makespan, to say how far a plan can be from the best one.

The larger of

- the LP relaxation of the assignment (GLOP): minimise C with each job split fractionally over its
  printers (x[j,p] >= 0, sum over p = 1) and each printer's load plus its start offset within C:
  sum_j d[j,p] x[j,p] + a[p] u[p] <= C, where u[p] >= x[j,p] says how much the printer is used (a
  printer no job uses does not hold C up to its availability, a printer used at all does);
- the longest job on its best printer: max over jobs of min over printers of (a[p] + changeover
  before it as the printer's first job + d[j,p]).

Shifts and changeovers between jobs are left out, so the bound holds whatever they are.
"""

from ortools.linear_solver import pywraplp

from production.planning.problem import Problem


def longest_job_bound(problem: Problem) -> int:
    return max(
        (min(problem.earliest_start(j, p) + d for p, d in problem.durations[j].items())
         for j in range(problem.n_jobs)),
        default=0,
    )


def lp_bound(problem: Problem) -> float:
    if not problem.n_jobs:
        return 0.0
    solver = pywraplp.Solver.CreateSolver("GLOP")
    # In hours: seconds put coefficients of 1e4 next to shares of 1e-3, which GLOP can give up on.
    scale = 3600.0
    horizon = (max(problem.ready) + sum(max(d.values()) for d in problem.durations)) / scale
    limit = solver.NumVar(0.0, horizon, "C")
    used = {p: solver.NumVar(0.0, 1.0, f"u{p}") for p in range(problem.n_printers) if problem.ready[p] > 0}
    loads = [[] for _ in range(problem.n_printers)]
    for durations in problem.durations:
        shares = []
        for printer, duration in durations.items():
            share = solver.NumVar(0.0, 1.0, "")
            shares.append(share)
            loads[printer].append(duration / scale * share)
            if printer in used:
                solver.Add(share <= used[printer])
        solver.Add(solver.Sum(shares) == 1)
    for printer, load in enumerate(loads):
        if load:
            offset = problem.ready[printer] / scale * used[printer] if printer in used else 0
            solver.Add(solver.Sum(load) + offset <= limit)
    solver.Minimize(limit)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return 0.0
    # The LP's optimum within its tolerance, never above what it proves.
    return max(0.0, limit.solution_value() * scale * (1 - 1e-7) - 1e-3)


def makespan_lower_bound(problem: Problem) -> float:
    return max(float(longest_job_bound(problem)), lp_bound(problem))
