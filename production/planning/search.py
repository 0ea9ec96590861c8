"""Improvement local search: move and swap jobs between printers, re-sequence each printer.

A schedule is held as the order of jobs on each printer; times follow from it (every job started
as early as its printer, any changeover and the shifts allow), so every schedule the search
looks at is feasible by construction.

Each printer's order is chosen from its set of jobs: the better (weighted lateness, then end) of
earliest due date first, the families in blocks (the loaded family first, then each family in
order of its earliest due date, by due date inside a block), and, while some job is late,
earliest due date improved by swapping neighbours. Blocks need the fewest changeovers, so without
due dates they give the shortest printer.

The search takes the first improving step of

- moving one job to another printer it fits;
- swapping two jobs between two printers each fits;
- while some job is late, a chain: a late job to another printer while one of that printer's jobs
  goes on to a third;

for jobs on the printers that matter most first (late jobs, then the last printer to finish),
down to a local optimum; then, while time is left, it kicks the schedule (moves a few jobs off
the worst printers at random, seeded) and descends again, keeping the best schedule seen.
A schedule is better when its weighted lateness is lower, then its makespan, then the sum of
squared printer finishes (which lets the makespan fall when several printers finish last
together).
"""

import random
import time

from production.planning.problem import Problem, Schedule

EPSILON = 1e-6
# The iterated search: how many kicks at most, each moving this many jobs off these many printers.
KICKS = 200
KICK_MOVES = 3
KICK_PRINTERS = 5


class LocalSearch:
    def __init__(self, problem: Problem, schedule: Schedule, *, by_printer: bool = False):
        """Start from a schedule; `by_printer`: from its printers alone (its times are ignored)."""
        self.problem = problem
        self.lateness_only = False
        if by_printer:
            self.sequence = [[] for _ in range(problem.n_printers)]
            for job, printer in enumerate(schedule.printer):
                self.sequence[printer].append(job)
        else:
            self.sequence = problem.sequences(schedule)
        self.cost = [self._evaluate(p, jobs) for p, jobs in enumerate(self.sequence)]
        # Keep the orders as evaluated (the given one may have been worse).
        for p, (_lateness, _end, order) in enumerate(self.cost):
            self.sequence[p] = order
        self.where = [0] * problem.n_jobs
        for p, jobs in enumerate(self.sequence):
            for job in jobs:
                self.where[job] = p

    # --- one printer -----------------------------------------------------------------------------

    def _simulate(self, printer: int, order: list[int]) -> tuple[float, int]:
        problem = self.problem
        calendar, durations, families, due, weight = (problem.calendar, problem.durations, problem.family,
                                                       problem.due, problem.weight)
        free, family = problem.ready[printer], problem.printer_family[printer]
        lateness = 0.0
        for job in order:
            moment = free
            if family is not None and family != families[job]:
                moment += problem.changeover
            start = calendar.next_start(moment)
            free = start + durations[job][printer]
            family = families[job]
            if due[job] is not None and free > due[job]:
                lateness += weight[job] * (free - due[job])
        return lateness, free

    def _evaluate(self, printer: int, jobs: list[int]) -> tuple[float, int, list[int]]:
        """(weighted lateness, end, order) of the best order found for these jobs on the printer."""
        if not jobs:
            return 0.0, self.problem.ready[printer], []
        problem = self.problem
        infinity = float("inf")

        def due(job):
            return problem.due[job] if problem.due[job] is not None else infinity

        by_due = sorted(jobs, key=lambda j: (due(j), problem.family[j], j))
        first = {}
        for job in by_due:
            first.setdefault(problem.family[job], due(job))
        loaded = problem.printer_family[printer]
        blocks = sorted(jobs, key=lambda j: (problem.family[j] != loaded, first[problem.family[j]],
                                             problem.family[j], due(j), j))
        best = None
        for order in (blocks, by_due) if blocks != by_due else (blocks,):
            lateness, end = self._simulate(printer, order)
            if best is None or (lateness, end) < (best[0] - EPSILON, best[1]) or (
                    abs(lateness - best[0]) <= EPSILON and end < best[1]):
                best = (lateness, end, order)
        if best[0] > EPSILON and len(jobs) > 1:
            best = self._adjacent_swaps(printer, best)
        return best

    def _adjacent_swaps(self, printer, best):
        lateness, end, order = best
        order = list(order)
        improved = True
        while improved:
            improved = False
            for i in range(len(order) - 1):
                order[i], order[i + 1] = order[i + 1], order[i]
                candidate = self._simulate(printer, order)
                if candidate[0] < lateness - EPSILON or (
                        abs(candidate[0] - lateness) <= EPSILON and candidate[1] < end):
                    lateness, end = candidate
                    improved = True
                else:
                    order[i], order[i + 1] = order[i + 1], order[i]
        return lateness, end, order

    # --- the whole schedule ----------------------------------------------------------------------

    def key(self) -> tuple[float, int, int]:
        lateness = sum(c[0] for c in self.cost)
        ends = [c[1] for c in self.cost]
        return lateness, max(ends), sum(e * e for e in ends)

    def _better(self, changes: dict, current: tuple[float, int, int]) -> tuple | None:
        """The key after replacing the costs of some printers, if it is better than `current`."""
        lateness = current[0] + sum(c[0] - self.cost[p][0] for p, c in changes.items())
        if lateness > current[0] + EPSILON or (self.lateness_only and lateness >= current[0] - EPSILON):
            return None
        ends = [changes[p][1] if p in changes else c[1] for p, c in enumerate(self.cost)]
        candidate = (lateness, max(ends), sum(e * e for e in ends))
        if lateness < current[0] - EPSILON or candidate[1:] < current[1:]:
            return candidate
        return None

    def _apply(self, changes, moved: dict[int, int]) -> None:
        for p, cost in changes.items():
            self.cost[p] = cost
            self.sequence[p] = cost[2]
        for job, printer in moved.items():
            self.where[job] = printer

    def _priority(self) -> list[int]:
        """Printers to take jobs from, those with late jobs and the latest finishes first."""
        return sorted(range(self.problem.n_printers), key=lambda p: (-self.cost[p][0], -self.cost[p][1], p))

    def _improve_once(self, deadline: float, swaps: bool) -> bool:
        problem = self.problem
        current = self.key()
        for p in self._priority():
            if time.monotonic() > deadline:
                return False
            if not self.sequence[p]:
                continue
            if self.cost[p][0] <= EPSILON and self.cost[p][1] < current[1] and current[0] > EPSILON:
                continue  # lateness first: this printer is neither late nor last
            for job in list(self.sequence[p]):
                rest = [j for j in self.sequence[p] if j != job]
                without = self._evaluate(p, rest)
                for q in problem.durations[job]:
                    if q == p:
                        continue
                    changes = {p: without, q: self._evaluate(q, [*self.sequence[q], job])}
                    if self._better(changes, current) is not None:
                        self._apply(changes, {job: q})
                        return True
                if not swaps:
                    continue
                for q in problem.durations[job]:
                    if q == p or time.monotonic() > deadline:
                        continue
                    for other in self.sequence[q]:
                        if p not in problem.durations[other]:
                            continue
                        changes = {p: self._evaluate(p, [*rest, other]),
                                   q: self._evaluate(q, [j if j != other else job for j in self.sequence[q]])}
                        if self._better(changes, current) is not None:
                            self._apply(changes, {job: q, other: p})
                            return True
        return False

    def _late_jobs(self) -> list[int]:
        """The late jobs, the most weighted lateness first."""
        problem = self.problem
        schedule = self.schedule()
        late = [(problem.weight[j] * (schedule.end[j] - problem.due[j]), j) for j in range(problem.n_jobs)
                if problem.due[j] is not None and schedule.end[j] > problem.due[j]]
        return [j for _lateness, j in sorted(late, reverse=True)]

    def _chain_late(self, deadline: float) -> bool:
        """A late job to another printer q while one of q's jobs makes room by going on to a third.

        Neither step need help alone: q may be full until one of its jobs leaves, and that job
        may fit nowhere better than where the late job leaves room. The first improving chain found.
        """
        problem = self.problem
        current = self.key()
        for job in self._late_jobs():
            p = self.where[job]
            without = self._evaluate(p, [j for j in self.sequence[p] if j != job])
            for q in problem.durations[job]:
                if q == p:
                    continue
                for other in self.sequence[q]:
                    if time.monotonic() > deadline:
                        return False
                    q_cost = self._evaluate(q, [job if j == other else j for j in self.sequence[q]])
                    if q_cost[0] - self.cost[q][0] > self.cost[p][0] - without[0] + EPSILON:
                        continue  # q gets later by more than p gains: no chain through `other` pays
                    for r in problem.durations[other]:
                        if r in (p, q):
                            continue
                        changes = {p: without, q: q_cost, r: self._evaluate(r, [*self.sequence[r], other])}
                        if self._better(changes, current) is not None:
                            self._apply(changes, {job: q, other: r})
                            return True
        return False

    def _descend(self, deadline: float) -> None:
        # While jobs are late, first only steps that make them less late (quicker: no time goes
        # to the makespan of a plan whose lateness is still to fall), then every improving step.
        for lateness_only in (True, False):
            self.lateness_only = lateness_only
            while time.monotonic() < deadline:
                if self._improve_once(deadline, swaps=False):
                    continue
                if self._improve_once(deadline, swaps=True):
                    continue
                if self.key()[0] <= EPSILON or not self._chain_late(deadline):
                    break
        self.lateness_only = False

    def _kick(self, rng: random.Random) -> None:
        """Move a few jobs from the printers that matter most to random printers they fit."""
        problem = self.problem
        sources = [p for p in self._priority()[:KICK_PRINTERS] if self.sequence[p]]
        for _ in range(KICK_MOVES):
            if not sources:
                return
            p = rng.choice(sources)
            if not self.sequence[p]:
                continue
            job = rng.choice(self.sequence[p])
            targets = [q for q in problem.durations[job] if q != p]
            if not targets:
                continue
            q = rng.choice(targets)
            self._apply({p: self._evaluate(p, [j for j in self.sequence[p] if j != job]),
                         q: self._evaluate(q, [*self.sequence[q], job])}, {job: q})

    def run(self, deadline: float) -> Schedule:
        """Improve until the deadline (time.monotonic()) passes or nothing more is found.

        After the first local optimum: kick (move a few jobs off the worst printers) and descend
        again, keeping the best schedule seen (an iterated local search), up to KICKS times.
        """
        rng = random.Random(1)
        self._descend(deadline)
        best = (self.key(), [list(s) for s in self.sequence], list(self.cost), list(self.where))
        for _ in range(KICKS):
            if time.monotonic() >= deadline:
                break
            self._kick(rng)
            self._descend(deadline)
            key = self.key()
            if key[0] < best[0][0] - EPSILON or (key[0] <= best[0][0] + EPSILON and key[1:] < best[0][1:]):
                best = (key, [list(s) for s in self.sequence], list(self.cost), list(self.where))
            else:
                self.sequence, self.cost, self.where = ([list(s) for s in best[1]], list(best[2]),
                                                        list(best[3]))
        return self.schedule()

    def schedule(self) -> Schedule:
        problem = self.problem
        n = problem.n_jobs
        result = Schedule(printer=[0] * n, start=[0] * n, end=[0] * n)
        for p, order in enumerate(self.sequence):
            for job in order:
                result.printer[job] = p
        # Times from the orders: each job as early as its printer allows.
        for p, order in enumerate(self.sequence):
            free, family = problem.ready[p], problem.printer_family[p]
            for job in order:
                start = problem.calendar.next_start(free + problem.changeover_between(family, problem.family[job]))
                result.start[job], result.end[job] = start, start + problem.durations[job][p]
                free, family = result.end[job], problem.family[job]
        return result


def improve(problem: Problem, schedule: Schedule, deadline: float) -> Schedule:
    """A schedule at least as good as `schedule` (weighted lateness, then makespan), found by local search."""
    found = LocalSearch(problem, schedule).run(deadline)
    before, after = problem.score(schedule), problem.score(found)
    if after[0] < before[0] - EPSILON or (after[0] <= before[0] + EPSILON and after[1] <= before[1]):
        return found
    return schedule
