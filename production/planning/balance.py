"""Makespan search on the assignment alone, for farms that are always staffed.

Without shifts a printer run family block by family block (the family it holds first) ends at

    ready + the durations of its jobs + one changeover per family it runs other than the one it
    holds (a printer holding none gets its first family free),

so a plan's makespan follows from which printer runs each job, and a move is priced in constant
time instead of by simulating the printer. `AssignmentSearch` works on that:

- descent: take a printer that ends last and look, cheapest first, for the best move of one of
  its jobs to another printer (where the job's family already runs, no changeover is added),
  else the best swap of one of its jobs with a job of another printer, else the best new split
  of its jobs and another printer's between the two (every split they fit, which covers moving
  two jobs for one), else the first chain found (one of its jobs to another printer while that
  one passes a job on to a third); a step is taken when every printer it touches then ends
  before the makespan, so the number of printers ending last falls and, with none left, the
  makespan; once no printer ending last can be relieved, moves and swaps that lower the sum of
  the squared ends without raising the makespan are taken down to a local optimum (they spread
  work so that the next step has room);
- then, while time is left, a perturbation (a few random moves of jobs off the printers ending
  last, seeded) and another descent, from the best assignment seen (an iterated local search).

The search ignores due dates: its result is one candidate for the planner, which compares
candidates on weighted lateness first.
"""

import random
import time

from production.planning.problem import Problem

# The perturbation: how many jobs it moves, at least and at most.
KICK_MIN = 2
KICK_MAX = 6
# The most jobs two printers may share for `_repartition` to try every split of them.
MAX_REPARTITION = 12
# After this many perturbations in a row without a better assignment, restart from the best one
# with a larger perturbation.
STALL = 30


class AssignmentSearch:
    def __init__(self, problem: Problem, printers: list[int], *, seed: int = 1):
        self.problem = problem
        self.rng = random.Random(seed)
        self.printer = list(printers)
        n_printers = problem.n_printers
        self.jobs: list[set[int]] = [set() for _ in range(n_printers)]
        self.load = [0] * n_printers
        self.count: list[dict[int, int]] = [{} for _ in range(n_printers)]
        for job, p in enumerate(self.printer):
            self._add(job, p)
        self.end = [self._end(p) for p in range(n_printers)]

    # --- constant-time prices --------------------------------------------------------------------

    def _add(self, job: int, p: int) -> None:
        self.jobs[p].add(job)
        self.load[p] += self.problem.durations[job][p]
        family = self.problem.family[job]
        self.count[p][family] = self.count[p].get(family, 0) + 1

    def _remove(self, job: int, p: int) -> None:
        self.jobs[p].discard(job)
        self.load[p] -= self.problem.durations[job][p]
        family = self.problem.family[job]
        self.count[p][family] -= 1
        if not self.count[p][family]:
            del self.count[p][family]

    def _changeovers(self, p: int, families: int, held_runs: bool) -> int:
        """Changeover seconds on printer p running `families` families, the held one among them or not."""
        if not families:
            return 0
        held = self.problem.printer_family[p]
        if held is None:
            return self.problem.changeover * (families - 1)
        return self.problem.changeover * (families - (1 if held_runs else 0))

    def _end(self, p: int) -> int:
        if not self.jobs[p]:
            return 0
        held = self.problem.printer_family[p]
        return (self.problem.ready[p] + self.load[p]
                + self._changeovers(p, len(self.count[p]), held is not None and held in self.count[p]))

    def _end_after(self, p: int, out: int | None, into: int | None) -> int:
        """Printer p's end with job `out` taken off it and job `into` put on it (either may be None)."""
        problem = self.problem
        n_jobs = len(self.jobs[p]) - (out is not None) + (into is not None)
        if n_jobs == 0:
            return 0
        load = self.load[p]
        families = len(self.count[p])
        held = problem.printer_family[p]
        held_runs = held is not None and held in self.count[p]
        out_family = into_family = None
        if out is not None:
            load -= problem.durations[out][p]
            out_family = problem.family[out]
        if into is not None:
            load += problem.durations[into][p]
            into_family = problem.family[into]
        if out_family != into_family:
            if out_family is not None and self.count[p][out_family] == 1:
                families -= 1
                if out_family == held:
                    held_runs = False
            if into_family is not None and into_family not in self.count[p]:
                families += 1
                if into_family == held:
                    held_runs = True
        return problem.ready[p] + load + self._changeovers(p, families, held_runs)

    def _end_with(self, p: int, job: int) -> int:
        """Printer p's end with the job put on it: `_end_after(p, None, job)`, quicker."""
        problem = self.problem
        family, held = problem.family[job], problem.printer_family[p]
        if not self.jobs[p]:
            return problem.ready[p] + problem.durations[job][p] + (
                0 if held is None or held == family else problem.changeover)
        # A family new to the printer costs a changeover, unless it is the one the printer holds.
        extra = 0 if family in self.count[p] or family == held else problem.changeover
        return self.end[p] + problem.durations[job][p] + extra

    def _move(self, job: int, q: int) -> None:
        p = self.printer[job]
        self._remove(job, p)
        self._add(job, q)
        self.printer[job] = q
        self.end[p], self.end[q] = self._end(p), self._end(q)

    def makespan(self) -> int:
        return max(self.end)

    def key(self) -> tuple[int, int, int]:
        top = max(self.end)
        return top, self.end.count(top), sum(e * e for e in self.end)

    # --- descent ---------------------------------------------------------------------------------

    def _relieve(self, p: int, top: int) -> bool:
        """A step that ends printer p (ending at `top`) before `top` without another reaching it.

        The best single move if there is one, else the best swap, else the first chain found:
        the cheaper neighbourhoods first, as each larger one costs about thirty times more.
        """
        problem = self.problem
        end = self.end
        jobs = sorted(self.jobs[p])
        without = {job: self._end_after(p, job, None) for job in jobs}
        best = None  # ((largest new end, change of the squares), steps)
        for job in jobs:
            for q in problem.durations[job]:
                if q == p:
                    continue
                q_with = self._end_with(q, job)
                if q_with < top:
                    score = (max(without[job], q_with), without[job] ** 2 + q_with ** 2 - end[p] ** 2 - end[q] ** 2)
                    if best is None or score < best[0]:
                        best = (score, ((job, q),))
        if best is None:
            for job in jobs:
                for q in problem.durations[job]:
                    if q == p:
                        continue
                    for other in self.jobs[q]:
                        if p not in problem.durations[other]:
                            continue
                        q_swapped = self._end_after(q, other, job)
                        if q_swapped >= top:
                            continue
                        p_swapped = self._end_after(p, job, other)
                        if p_swapped < top:
                            score = (max(p_swapped, q_swapped),
                                     p_swapped ** 2 + q_swapped ** 2 - end[p] ** 2 - end[q] ** 2)
                            if best is None or score < best[0]:
                                best = (score, ((job, q), (other, p)))
        if best is None:
            return self._repartition(p, top)
        for job, q in best[1]:
            self._move(job, q)
        return True

    def _pair_end(self, p: int, jobs: list[int]) -> int:
        """Printer p's end running exactly these jobs."""
        if not jobs:
            return 0
        problem = self.problem
        families = {problem.family[j] for j in jobs}
        held = problem.printer_family[p]
        return (problem.ready[p] + sum(problem.durations[j][p] for j in jobs)
                + self._changeovers(p, len(families), held is not None and held in families))

    def _repartition(self, p: int, top: int) -> bool:
        """Share the jobs of p and one other printer anew between the two, all ways they fit; else a chain."""
        problem = self.problem
        end = self.end
        best = None
        partners = sorted({q for job in self.jobs[p] for q in problem.durations[job] if q != p})
        for q in partners:
            fixed_p = [j for j in self.jobs[p] if q not in problem.durations[j]]
            fixed_q = [j for j in self.jobs[q] if p not in problem.durations[j]]
            free = [j for j in (*self.jobs[p], *self.jobs[q]) if j not in fixed_p and j not in fixed_q]
            if len(free) > MAX_REPARTITION:
                continue
            for mask in range(1 << len(free)):
                on_p = fixed_p + [j for i, j in enumerate(free) if mask >> i & 1]
                p_end = self._pair_end(p, on_p)
                if p_end >= top:
                    continue
                q_end = self._pair_end(q, fixed_q + [j for i, j in enumerate(free) if not mask >> i & 1])
                if q_end >= top:
                    continue
                score = (max(p_end, q_end), p_end ** 2 + q_end ** 2 - end[p] ** 2 - end[q] ** 2)
                if best is None or score < best[0]:
                    best = (score, q, on_p)
        if best is not None:
            _score, q, on_p = best
            for job in [*self.jobs[p], *self.jobs[q]]:
                target = p if job in on_p else q
                if self.printer[job] != target:
                    self._move(job, target)
            return True
        return self._chain(p, top)

    def _chain(self, p: int, top: int) -> bool:
        """The first chain found: a job of p to q while a job of q goes on to a third printer r."""
        problem = self.problem
        end = self.end
        for job in sorted(self.jobs[p]):
            for q in problem.durations[job]:
                if q == p:
                    continue
                for other in self.jobs[q]:
                    if self._end_after(q, other, job) >= top:
                        continue
                    for r in problem.durations[other]:
                        if r != p and r != q and end[r] < top and self._end_with(r, other) < top:
                            self._move(job, q)
                            self._move(other, r)
                            return True
        return False

    def _spread(self, top: int) -> bool:
        """One move or swap anywhere that lowers the sum of the squared ends, no end reaching `top`."""
        problem = self.problem
        end = self.end
        for p in sorted(range(problem.n_printers), key=lambda x: -end[x]):
            for job in list(self.jobs[p]):
                p_without = self._end_after(p, job, None)
                for q in problem.durations[job]:
                    if q == p or end[q] >= end[p]:
                        continue
                    q_with = self._end_with(q, job)
                    if q_with < top and p_without ** 2 + q_with ** 2 < end[p] ** 2 + end[q] ** 2:
                        self._move(job, q)
                        return True
                    for other in self.jobs[q]:
                        if p not in problem.durations[other]:
                            continue
                        q_swapped = self._end_after(q, other, job)
                        p_swapped = self._end_after(p, job, other)
                        if (q_swapped < top and p_swapped < top
                                and p_swapped ** 2 + q_swapped ** 2 < end[p] ** 2 + end[q] ** 2):
                            self._move(job, q)
                            self._move(other, p)
                            return True
        return False

    def descend(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            top = max(self.end)
            critical = [p for p, e in enumerate(self.end) if e == top]
            if any(self._relieve(p, top) for p in critical):
                continue
            # Spread the work to a local optimum of the squares before relieving again: a printer
            # ending last cannot be relieved until others have room.
            spread = False
            while time.monotonic() < deadline and self._spread(top):
                spread = True
            if not spread:
                return

    # --- the iterated search ---------------------------------------------------------------------

    def _kick(self, size: int) -> None:
        problem, rng = self.problem, self.rng
        for _ in range(size):
            top = max(self.end)
            # Mostly from the printers ending last; now and then from anywhere.
            order = sorted(range(problem.n_printers), key=lambda p: -self.end[p])
            sources = [p for p in order[:max(3, problem.n_printers // 10)] if self.jobs[p]]
            if not sources or rng.random() < 0.2:
                sources = [p for p in range(problem.n_printers) if self.jobs[p]]
            p = rng.choice(sources)
            job = rng.choice(sorted(self.jobs[p]))
            targets = [q for q in problem.durations[job] if q != p and self._end_with(q, job) <= top]
            if not targets:
                targets = [q for q in problem.durations[job] if q != p]
            if targets:
                self._move(job, rng.choice(targets))

    def run(self, deadline: float) -> list[int]:
        """The best assignment found before the deadline (time.monotonic()): each job's printer."""
        self.descend(deadline)
        best_key, best = self.key(), list(self.printer)
        stall = 0
        while time.monotonic() < deadline:
            self._kick(self.rng.randint(KICK_MIN, KICK_MAX + min(stall // STALL, KICK_MAX)))
            self.descend(deadline)
            key = self.key()
            if key < best_key:
                best_key, best, stall = key, list(self.printer), 0
            else:
                stall += 1
                if key[0] > best_key[0] or stall % STALL == 0:
                    self._reset(best)
        return best

    def _reset(self, printers: list[int]) -> None:
        for job, q in enumerate(printers):
            if self.printer[job] != q:
                self._move(job, q)
