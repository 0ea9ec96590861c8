"""The CP-SAT model of the farm schedule.

Variables and constraints:

- one start S[j] per job, its domain the shift windows (every allowed start second) up to the horizon;
- per eligible (job, printer) a literal x[j,p] and an optional fixed-size interval [S[j], S[j] + d[j,p])
  present iff x[j,p]; exactly one x[j,p] per job; x[j,p] => S[j] >= the printer's ready time (plus a
  changeover when the printer holds another family);
- add_no_overlap over each printer's intervals;
- changeovers by grouping: each printer has, per family it may run, up to K *family blocks*,
  optional intervals [start, end + changeover) in one more add_no_overlap per printer. A job on the
  printer lies inside one block of its family (literal z[j,p,k], sum_k z = x[j,p]). Two blocks on a
  printer are at least a changeover apart, jobs inside one block need none: exactly the rule "a
  changeover between consecutive jobs of different families", for every schedule whose printer
  runs each family in at most K stretches. K per (printer, family) is the number of stretches the
  greedy schedule has there (at least 2 where two jobs could be split, at most MAX_BLOCKS), so the
  greedy schedule itself is always in the model and is given as the complete hint. This scales with
  jobs × printers × K rather than with the jobs² arcs a circuit per printer needs;
- objective, lexicographic in two solves: first the weighted lateness sum_j w[j] max(0, E[j] - due[j])
  (weights scaled to integers), then, with it held at the best found, the makespan.

`solve` returns the best schedule found (as starts and printers) or None.
"""

import math
import os
import time

from ortools.sat.python import cp_model

from production.planning.problem import Problem, Schedule

MIN_BLOCKS = 2
ASSIGNMENT_WORKERS = 8
# The share of the solve time the weighted lateness gets before the makespan.
LATENESS_SHARE = 0.7
WEIGHT_SCALE = 1000


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _runs(problem: Problem, schedule: Schedule) -> dict[tuple[int, int], list[list[int]]]:
    """Per (printer, family), the greedy schedule's stretches of consecutive jobs of that family."""
    runs: dict[tuple[int, int], list[list[int]]] = {}
    for printer, jobs in enumerate(problem.sequences(schedule)):
        previous = None
        for job in jobs:
            family = problem.family[job]
            if family != previous:
                runs.setdefault((printer, family), []).append([])
            runs[(printer, family)][-1].append(job)
            previous = family
    return runs


class FarmModel:
    def __init__(self, problem: Problem, hint: Schedule, horizon: int):
        self.problem = problem
        self.horizon = horizon
        model = self.model = cp_model.CpModel()
        n = problem.n_jobs
        self.start = []
        self.end = []
        self.assign: list[dict[int, cp_model.IntVar]] = []
        intervals = [[] for _ in range(problem.n_printers)]
        max_duration = self.max_duration = max(max(d.values()) for d in problem.durations)
        for job in range(n):
            lo = min(problem.earliest_start(job, p) for p in problem.eligible[job])
            windows = problem.calendar.windows(lo, horizon)
            start = model.new_int_var_from_domain(cp_model.Domain.from_intervals([list(w) for w in windows]), f"s{job}")
            end = model.new_int_var(0, horizon + max_duration, f"e{job}")
            literals = {}
            for printer, duration in problem.durations[job].items():
                literal = model.new_bool_var(f"x{job}_{printer}")
                literals[printer] = literal
                intervals[printer].append(model.new_optional_fixed_size_interval_var(start, duration, literal, ""))
                earliest = problem.earliest_start(job, printer)
                if earliest > lo:
                    model.add(start >= earliest).only_enforce_if(literal)
            model.add_exactly_one(literals.values())
            model.add(end == start + sum(d * literals[p] for p, d in problem.durations[job].items()))
            self.start.append(start)
            self.end.append(end)
            self.assign.append(literals)
        for printer_intervals in intervals:
            if len(printer_intervals) > 1:
                model.add_no_overlap(printer_intervals)
        # Redundant: no printer works longer than the makespan.
        self.makespan = model.new_int_var(0, horizon + max_duration, "makespan")
        model.add_max_equality(self.makespan, self.end)
        for printer in range(problem.n_printers):
            load = [problem.durations[j][printer] * self.assign[j][printer] for j in range(n)
                    if printer in self.assign[j]]
            if load:
                model.add(sum(load) <= self.makespan)

        self.block_hints: dict = {}
        if problem.changeover > 0 and len(problem.families) > 1:
            self._family_blocks(hint)

        self.weights = self._integer_weights()
        self.tardiness = {}
        for job in range(n):
            if problem.due[job] is not None and self.weights[job] > 0:
                late = model.new_int_var(0, horizon + max_duration, f"t{job}")
                model.add(late >= self.end[job] - problem.due[job])
                self.tardiness[job] = late
        self.lateness = sum(self.weights[j] * t for j, t in self.tardiness.items())
        self._hint(hint)

    def _integer_weights(self) -> list[int]:
        weights = self.problem.weight
        top = max(weights, default=0)
        if top <= 0:
            return [0] * len(weights)
        return [max(1, round(w / top * WEIGHT_SCALE)) if w > 0 else 0 for w in weights]

    def _family_blocks(self, hint: Schedule) -> None:
        problem, model = self.problem, self.model
        runs = _runs(problem, hint)
        changeover = problem.changeover
        for printer in range(problem.n_printers):
            by_family: dict[int, list[int]] = {}
            for job in range(problem.n_jobs):
                if printer in self.assign[job]:
                    by_family.setdefault(problem.family[job], []).append(job)
            blocks = []
            for family, jobs in by_family.items():
                hinted = runs.get((printer, family), [])
                # Enough blocks for the greedy stretches (the hint stays feasible), two at least.
                count = max(len(hinted), min(len(jobs), MIN_BLOCKS))
                ready = problem.ready[printer] + problem.changeover_between(problem.printer_family[printer], family)
                previous = None
                family_blocks = []
                for k in range(count):
                    present = model.new_bool_var("")
                    lo = model.new_int_var(ready, self.horizon, "")
                    hi = model.new_int_var(ready, self.horizon + self.max_duration, "")
                    model.add(hi >= lo)
                    size = model.new_int_var(changeover, self.horizon + self.max_duration + changeover, "")
                    model.add(size == hi + changeover - lo)
                    blocks.append(model.new_optional_interval_var(lo, size, hi + changeover, present, ""))
                    if previous is not None:
                        # Symmetry: blocks of one family are used in order.
                        model.add_implication(present, previous[0])
                        model.add(lo >= previous[2] + changeover).only_enforce_if(present)
                    previous = (present, lo, hi)
                    family_blocks.append(previous)
                    if k < len(hinted):
                        run = hinted[k]
                        first, last = hint.start[run[0]], hint.end[run[-1]]
                    else:  # left out; placed after the last one so that the order holds
                        first = last = max([ready] + [hint.end[run[-1]] + changeover for run in hinted])
                    self.block_hints.update({present: int(k < len(hinted)), lo: first, hi: last,
                                             size: last + changeover - first})
                run_of = {job: k for k, run in enumerate(hinted) for job in run}
                for job in jobs:
                    literal = self.assign[job][printer]
                    duration = problem.durations[job][printer]
                    if count == 1:
                        choices = [literal]
                    else:
                        choices = [model.new_bool_var("") for _ in family_blocks]
                        model.add(sum(choices) == literal)
                        for k, choice in enumerate(choices):
                            self.block_hints[choice] = int(run_of.get(job) == k)
                    for choice, (present, lo, hi) in zip(choices, family_blocks, strict=True):
                        model.add_implication(choice, present)
                        model.add(self.start[job] >= lo).only_enforce_if(choice)
                        model.add(self.start[job] + duration <= hi).only_enforce_if(choice)
                for present, _lo, _hi in family_blocks:
                    # A block holds a job of its family on this printer or is left out.
                    model.add_bool_or([self.assign[j][printer] for j in jobs] + [~present])
            if len(blocks) > 1:
                model.add_no_overlap(blocks)

    def _hint(self, hint: Schedule) -> None:
        model = self.model
        for job in range(self.problem.n_jobs):
            model.add_hint(self.start[job], hint.start[job])
            model.add_hint(self.end[job], hint.end[job])
            for printer, literal in self.assign[job].items():
                model.add_hint(literal, int(printer == hint.printer[job]))
        for job, late in self.tardiness.items():
            model.add_hint(late, max(0, hint.end[job] - self.problem.due[job]))
        model.add_hint(self.makespan, max(hint.end))
        for var, value in self.block_hints.items():
            model.add_hint(var, value)

    def _schedule(self, solver: cp_model.CpSolver) -> Schedule:
        printers, starts, ends = [], [], []
        for job in range(self.problem.n_jobs):
            printers.append(next(p for p, lit in self.assign[job].items() if solver.boolean_value(lit)))
            starts.append(solver.value(self.start[job]))
            ends.append(solver.value(self.end[job]))
        return Schedule(printer=printers, start=starts, end=ends)

    def _solve(self, seconds: float, log: bool) -> tuple[int, cp_model.CpSolver]:
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, seconds)
        solver.parameters.num_workers = _workers()
        solver.parameters.random_seed = 1
        solver.parameters.log_search_progress = log
        # Presolve's probing and symmetry search take seconds on the larger farms and find little here.
        solver.parameters.cp_model_probing_level = 0
        solver.parameters.symmetry_level = 0
        status = solver.solve(self.model)
        return status, solver

    def _rehint(self, solver: cp_model.CpSolver) -> None:
        self.model.clear_hints()
        proto = self.model.proto
        for index in range(len(proto.variables)):
            self.model.add_hint(self.model.get_int_var_from_proto_index(index), solver.value(
                self.model.get_int_var_from_proto_index(index)))

    def solve(self, *, deadline: float, lateness_bound: int | None, log: bool = False) -> tuple[Schedule | None, dict]:
        """Lateness first, then makespan, within `deadline` (time.monotonic()); the schedule and solve facts."""
        model = self.model
        facts = {"phases": []}
        best = None
        if self.tardiness and lateness_bound != 0:
            model.minimize(self.lateness)
            remaining = deadline - time.monotonic()
            status, solver = self._solve(remaining * LATENESS_SHARE, log)
            facts["phases"].append(("lateness", solver.status_name(status), solver.objective_value
                                    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None))
            if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
                return None, facts
            best = self._schedule(solver)
            found = round(solver.objective_value)
            model.add(self.lateness <= found)
            self._rehint(solver)
        else:
            # Nothing late in the hint: keep every due date.
            for late in self.tardiness.values():
                model.add(late == 0)
        model.minimize(self.makespan)
        status, solver = self._solve(deadline - time.monotonic(), log)
        facts["phases"].append(("makespan", solver.status_name(status), solver.objective_value
                                if status in (cp_model.OPTIMAL, cp_model.FEASIBLE) else None))
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            best = self._schedule(solver)
        return best, facts



class AssignmentModel:
    """Which printer runs each job, for the makespan alone: no times, no intervals.

    A printer used at all finishes no earlier than its ready time plus the durations of its jobs
    plus one changeover per family it runs other than the one it holds (a printer holding none
    needs one fewer). The model minimises the largest such finish (C) over the assignments:

        x[j,p] in {0,1}, sum_p x[j,p] = 1;  u[p] >= x[j,p];  y[p,f] >= x[j,p] for j of family f;
        r[p] u[p] + sum_j d[j,p] x[j,p] + c (sum_f y[p,f] - [p holds no family] u[p]) <= C.

    Every schedule satisfies these with C its makespan, so the model's optimum, and any bound
    CP-SAT proves on it, is a lower bound on the makespan; without shifts a solution run family
    block by family block reaches exactly its C, so it is also an optimal plan there (for the
    makespan, due dates aside).
    """

    def __init__(self, problem: Problem, hint: Schedule):
        self.problem = problem
        model = self.model = cp_model.CpModel()
        n, printers = problem.n_jobs, problem.n_printers
        changeover = problem.changeover
        top = max(problem.ready) + sum(max(d.values()) for d in problem.durations) + changeover * n
        self.makespan = model.new_int_var(0, top, "C")
        self.assign: list[dict[int, cp_model.IntVar]] = []
        loads = [[] for _ in range(printers)]
        used = [model.new_bool_var(f"u{p}") for p in range(printers)]
        family_used: dict[tuple[int, int], cp_model.IntVar] = {}
        for job in range(n):
            literals = {}
            for printer, duration in problem.durations[job].items():
                literal = model.new_bool_var(f"x{job}_{printer}")
                literals[printer] = literal
                loads[printer].append(duration * literal)
                model.add_implication(literal, used[printer])
                if changeover > 0:
                    key = (printer, problem.family[job])
                    if key not in family_used:
                        family_used[key] = model.new_bool_var("")
                    model.add_implication(literal, family_used[key])
            model.add_exactly_one(literals.values())
            self.assign.append(literals)
        for printer in range(printers):
            if not loads[printer]:
                continue
            terms = [problem.ready[printer] * used[printer], *loads[printer]]
            held = problem.printer_family[printer]
            for (p, family), literal in family_used.items():
                if p == printer and family != held:
                    terms.append(changeover * literal)
            if held is None and changeover > 0:
                terms.append(-changeover * used[printer])
            model.add(sum(terms) <= self.makespan)
        model.minimize(self.makespan)
        for job in range(n):
            for printer, literal in self.assign[job].items():
                model.add_hint(literal, int(printer == hint.printer[job]))

    def solve(self, *, deadline: float, log: bool = False) -> tuple[list[int] | None, int]:
        """The printer of each job in the best assignment found (or None), and the proven lower bound."""
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = max(0.05, deadline - time.monotonic())
        # More workers than cores: the portfolio's LNS and LP workers find better assignments here
        # than two workers do in the same time, even sharing two cores.
        solver.parameters.num_workers = max(ASSIGNMENT_WORKERS, _workers())
        solver.parameters.random_seed = 1
        solver.parameters.log_search_progress = log
        status = solver.solve(self.model)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return None, 0
        printers = [next(p for p, lit in literals.items() if solver.boolean_value(lit)) for literals in self.assign]
        return printers, math.floor(solver.best_objective_bound + 1e-6)
