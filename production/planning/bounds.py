"""A lower bound on the makespan, to say how far a plan can be from the best one.

The larger of

- the LP relaxation of the assignment (GLOP): minimise C with each job split fractionally over its
  printers (x[j,p] >= 0, sum over p = 1) and each used printer's finish within C:

      a[p] u[p] + sum_j d[j,p] x[j,p] + c (sum_f y[p,f] - h[p] u[p]) <= C,
      u[p] >= x[j,p],  y[p,f] >= x[j,p] for every job j of family f that is not the one p holds,

  where a[p] is the printer's ready time, c the changeover, and h[p] is 1 when the printer holds
  no family (its first job then needs no changeover), else 0; such a printer also has
  u[p] <= sum_f y[p,f] (a printer that is used runs some family). Why it holds: in any plan a printer
  that runs a job cannot finish before it is ready plus the durations of its jobs; each family it
  runs other than the one it holds must be changed into at least once (the first job into it
  follows a job of another family, or the held family), each change costing c; a printer that
  holds nothing gets its first family for free. With x, u, y whole numbers those are true of every
  plan, with C its makespan; letting them be fractions only lowers the optimum. A printer no job
  uses has u = 0 and does not hold C up to its ready time;
- the longest job on its best printer: max over jobs of min over printers of (a[p] + changeover
  before it as the printer's first job + d[j,p]).

Shifts are left out (they only add waiting), so the bound holds whatever they are. Where GLOP
does not solve the LP with the changeover terms within CHANGEOVER_LP_LIMIT_S (large flexible
farms), the LP without them (c = 0) is used.
"""

from ortools.linear_solver import pywraplp

from production.planning.problem import Problem

# Seconds GLOP may spend on the LP with changeovers before the one without them is used.
CHANGEOVER_LP_LIMIT_S = 1.0


def longest_job_bound(problem: Problem) -> int:
    return max(
        (min(problem.earliest_start(j, p) + d for p, d in problem.durations[j].items())
         for j in range(problem.n_jobs)),
        default=0,
    )


def lp_bound(problem: Problem, *, changeovers: bool = True, time_limit_s: float | None = None) -> float:
    """The LP's optimum; 0 where GLOP does not reach it (within `time_limit_s`, if given)."""
    if not problem.n_jobs:
        return 0.0
    solver = pywraplp.Solver.CreateSolver("GLOP")
    if time_limit_s is not None:
        solver.SetTimeLimit(max(1, round(time_limit_s * 1000)))
    # In hours: seconds put coefficients of 1e4 next to shares of 1e-3, which GLOP can give up on.
    scale = 3600.0
    changeover = problem.changeover / scale if changeovers else 0.0
    horizon = (max(problem.ready) + sum(max(d.values()) for d in problem.durations)) / scale + (
        changeover * problem.n_jobs)
    limit = solver.NumVar(0.0, horizon, "C")
    # u[p] only where it counts: a printer that is not ready at once, or one that holds no family.
    used = {p: solver.NumVar(0.0, 1.0, f"u{p}") for p in range(problem.n_printers)
            if problem.ready[p] > 0 or (changeover > 0 and problem.printer_family[p] is None)}
    family_used: dict[tuple[int, int], pywraplp.Variable] = {}
    loads = [[] for _ in range(problem.n_printers)]
    for job, durations in enumerate(problem.durations):
        family = problem.family[job]
        shares = []
        for printer, duration in durations.items():
            share = solver.NumVar(0.0, 1.0, "")
            shares.append(share)
            loads[printer].append(duration / scale * share)
            if printer in used:
                solver.Add(share <= used[printer])
            if changeover > 0 and family != problem.printer_family[printer]:
                key = (printer, family)
                if key not in family_used:
                    family_used[key] = solver.NumVar(0.0, 1.0, "")
                    loads[printer].append(changeover * family_used[key])
                solver.Add(share <= family_used[key])
        solver.Add(solver.Sum(shares) == 1)
    # A used printer that holds no family runs at least one: its free first family never exceeds
    # the families it runs (else u, with its negative changeover term, would lower the load).
    for printer, u in used.items():
        if changeover > 0 and problem.printer_family[printer] is None:
            families = [y for (p, _f), y in family_used.items() if p == printer]
            solver.Add(u <= solver.Sum(families) if families else u <= 0)
    for printer, load in enumerate(loads):
        if load:
            terms = list(load)
            if printer in used:
                terms.append(problem.ready[printer] / scale * used[printer])
                if changeover > 0 and problem.printer_family[printer] is None:
                    terms.append(-changeover * used[printer])
            solver.Add(solver.Sum(terms) <= limit)
    solver.Minimize(limit)
    if solver.Solve() != pywraplp.Solver.OPTIMAL:
        return 0.0
    # The LP's optimum within its tolerance, never above what it proves.
    return max(0.0, limit.solution_value() * scale * (1 - 1e-7) - 1e-3)


def makespan_lower_bound(problem: Problem) -> float:
    # The changeover terms make the LP several times slower on large flexible farms: within a
    # limit, else the LP without them (still a valid bound, only weaker).
    bound = lp_bound(problem, time_limit_s=CHANGEOVER_LP_LIMIT_S) if problem.changeover > 0 else 0.0
    if bound == 0.0:
        bound = lp_bound(problem, changeovers=False)
    return max(float(longest_job_bound(problem)), bound)
